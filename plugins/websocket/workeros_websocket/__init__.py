"""WebSocket realtime at ``GET /api/realtime``, with Directus-shaped messages.

Client → server::

    {"type": "auth", "access_token": "..."}            (optional; or Bearer/cookie on the upgrade)
    {"type": "subscribe", "collection": "posts", "query": {"filter": {...}, "fields": [...], "limit": 100}, "uid": "a"}
    {"type": "unsubscribe", "uid": "a"}
    {"type": "ping"}  /  {"type": "pong"}

Server → client::

    {"type": "auth", "status": "ok"}
    {"type": "subscription", "event": "init", "data": [rows], "uid": "a"}
    {"type": "subscription", "event": "create|update|delete", "data": [rows], "uid": "a"}
    {"type": "subscription", "event": "closed", "reason": "...", "uid": "a"}
    {"type": "ping"}  /  {"type": "pong"}
    {"type": "<request type>", "status": "error", "error": {"code": "...", "message": "..."}, "uid": "a"}

The socket is also served at ``/websocket`` (where Directus's SDK looks by
default), and the upgrade may carry ``?access_token=`` (the SDK's ``strict``
mode). ``subscribe`` may name one ``event`` (``create``, ``update`` or
``delete``) to receive only those; delete events carry the deleted keys
(``"data": [21]``).

A credential that expires while connected is answered with
``{"type": "auth", "status": "error", "error": {"code": "TOKEN_EXPIRED"}}``;
events are held while the client has ``realtime.auth_grace_s`` seconds to send
a fresh ``auth`` message, which resumes them in place. Without one the
connection ends (close code 4401) after an ``{"type": "auth", "status":
"expired"}`` message. One that is revoked (logout, API
key revoked, user suspended or deleted) ends it the same way after
``{"type": "auth", "status": "revoked"}``; a role change re-applies the new
role's rules to every subscription. Shutdown closes with 1001.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiohttp import WSMsgType, web

from workeros.api import (
    Accountability,
    Credential,
    InvalidPayload,
    Query,
    Stream,
    WorkerosError,
    accountability,
    authenticate_token,
    dumps_str,
    loads,
    services,
)
from workeros.hookspecs import hookimpl
from workeros.hookspecs.realtime import RealtimeTransport

MAX_MESSAGE = 64 * 1024
MAX_SUBSCRIPTIONS = 100
INIT_LIMIT = 1000
CLOSE_EXPIRED = 4401
EVENTS = ("create", "update", "delete")


def _error(kind: str, error: Exception, uid: Any = None) -> dict[str, Any]:
    if isinstance(error, WorkerosError):
        body = error.to_error()
        err = {"code": body["extensions"]["code"], "message": body["message"]}
    else:
        err = {"code": "INTERNAL", "message": "Internal error"}
    out: dict[str, Any] = {"type": kind, "status": "error", "error": err}
    if uid is not None:
        out["uid"] = uid
    return out


class Connection:
    def __init__(self, request: web.Request, ws: web.WebSocketResponse, stream: Stream) -> None:
        self.request = request
        self.ws = ws
        self.svc = services(request)
        self.hub = self.svc.realtime
        #: The hub's record of this connection: who it runs as, and when it ends.
        self.stream = stream
        self.subscriptions: dict[Any, tuple[Any, asyncio.Task[None]]] = {}
        self.send_lock = asyncio.Lock()
        #: Cleared while the credential has expired and no fresh one came yet:
        #: events wait in their queues.
        self.live = asyncio.Event()
        self.live.set()
        self.notices: set[asyncio.Task[None]] = set()
        #: The task closing the socket (started by expiry or shutdown), awaited
        #: by the handler so the close handshake completes.
        self.closer: asyncio.Task[Any] | None = None

    @property
    def acc(self) -> Accountability:
        return self.stream.acc

    def expiring(self) -> None:
        """The credential expired: hold events, and ask for a fresh token."""
        self.live.clear()
        task = asyncio.create_task(self.send({
            "type": "auth", "status": "error",
            "error": {"code": "TOKEN_EXPIRED", "message": "The access token expired; send a new one in an auth message"}}))
        self.notices.add(task)
        task.add_done_callback(self.notices.discard)

    def begin_close(self, code: int, message: bytes) -> None:
        if self.closer is None:
            self.closer = asyncio.create_task(self.ws.close(code=code, message=message))

    async def send(self, message: dict[str, Any]) -> None:
        await self.send_text(dumps_str(message))

    async def send_text(self, text: str) -> None:
        async with self.send_lock:
            if not self.ws.closed:
                await self.ws.send_str(text)

    async def handle(self, raw: str) -> None:
        if len(raw) > MAX_MESSAGE:
            await self.send(_error("error", InvalidPayload("Message too large")))
            return
        try:
            message = loads(raw)
        except ValueError:
            await self.send(_error("error", InvalidPayload("Messages are JSON objects")))
            return
        if not isinstance(message, dict):
            await self.send(_error("error", InvalidPayload("Messages are JSON objects")))
            return
        kind = message.get("type")
        uid = message.get("uid")
        try:
            if kind == "ping":
                await self.send({"type": "pong"})
            elif kind == "pong":
                pass
            elif kind == "auth":
                await self.auth(message)
            elif kind == "subscribe":
                await self.subscribe(message)
            elif kind == "unsubscribe":
                self.unsubscribe(uid)
            else:
                raise InvalidPayload(f"Unknown message type {str(kind)[:40]!r}")
        except WorkerosError as error:
            await self.send(_error(kind if isinstance(kind, str) else "error", error, uid))

    async def auth(self, message: dict[str, Any]) -> None:
        token = message.get("access_token")
        if not isinstance(token, str) or not token:
            raise InvalidPayload("auth needs access_token")
        acc = await authenticate_token(self.svc, token, ip=self.acc.ip, user_agent=self.acc.user_agent)
        other = (acc.user, acc.role) != (self.acc.user, self.acc.role)
        self.stream.renew(acc, Credential(authorization=f"Bearer {token}"))
        if other:
            # a different identity: existing subscriptions were checked for the old one
            for uid in list(self.subscriptions):
                self.unsubscribe(uid)
        await self.send({"type": "auth", "status": "ok"})
        self.live.set()

    async def subscribe(self, message: dict[str, Any]) -> None:
        uid = message.get("uid")
        collection = message.get("collection")
        if not isinstance(collection, str):
            raise InvalidPayload("subscribe needs collection")
        if uid in self.subscriptions:
            self.unsubscribe(uid)
        if len(self.subscriptions) >= MAX_SUBSCRIPTIONS:
            raise InvalidPayload(f"At most {MAX_SUBSCRIPTIONS} subscriptions per connection")
        query = message.get("query") or {}
        if not isinstance(query, dict):
            raise InvalidPayload("query must be an object")
        fields = query.get("fields")
        if isinstance(fields, str):
            fields = fields.split(",")
        if fields is not None and not (isinstance(fields, list) and all(isinstance(f, str) for f in fields)):
            raise InvalidPayload("query.fields must be a list of field names")
        event = message.get("event")
        if event is not None and event not in EVENTS:
            raise InvalidPayload("event must be one of create, update, delete")
        limit = query.get("limit", 100)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 0 <= limit <= INIT_LIMIT:
            raise InvalidPayload(f"query.limit must be an integer from 0 to {INIT_LIMIT}")
        sub = await self.hub.subscribe(self.acc, collection, filter=query.get("filter"), fields=fields,
                                       stream=self.stream)
        try:
            rows: list[Any] = []
            if limit:
                rows, _ = await self.svc.items.query(self.acc, collection, Query(
                    fields=tuple(fields) if fields else None, filter=query.get("filter") or None, limit=limit))
        except Exception:
            self.hub.unsubscribe(sub)
            raise
        task = asyncio.create_task(self.pump(uid, sub, event))
        self.subscriptions[uid] = (sub, task)
        await self.send({"type": "subscription", "event": "init", "data": rows, "uid": uid})

    def unsubscribe(self, uid: Any) -> None:
        found = self.subscriptions.pop(uid, None)
        if found is not None:
            sub, task = found
            self.hub.unsubscribe(sub)
            task.cancel()

    async def pump(self, uid: Any, sub: Any, only: str | None = None) -> None:
        while True:
            message = await sub.queue.get()
            await self.live.wait()
            if message.event == "closed":
                self.subscriptions.pop(uid, None)
                if (message.reason or "").partition(":")[0] in ("expired", "revoked"):
                    return  # the connection ends: watch_stream tells the client why
                await self.send({"type": "subscription", "event": "closed", "reason": message.reason, "uid": uid})
                if message.reason == "shutdown":
                    self.begin_close(1001, b"server shutdown")
                return
            if only is not None and message.event != only:
                continue
            if message.event == "delete":
                # Directus's shape: the deleted keys, not objects
                keys = [next(iter(row.values())) for row in message.data]
                await self.send({"type": "subscription", "event": "delete", "data": keys, "uid": uid})
                continue
            # the rows are encoded once per group (message.data_json), not per socket
            await self.send_text(f'{{"type":"subscription","event":{dumps_str(message.event)},'
                                 f'"data":{message.data_json},"uid":{dumps_str(uid)}}}')

    async def watch_stream(self) -> None:
        """Close the socket when the hub ends the stream: the credential expired
        or was revoked (4401), or the server is shutting down (1001)."""
        reason = await self.stream.wait()
        kind, _, detail = reason.partition(": ")
        if kind == "expired":
            await self.send({"type": "auth", "status": "expired",
                             "error": {"code": "TOKEN_EXPIRED", "message": "The access token expired"}})
            self.begin_close(CLOSE_EXPIRED, b"token expired")
        elif kind == "revoked":
            await self.send({"type": "auth", "status": "revoked",
                             "error": {"code": "INVALID_CREDENTIALS", "message": detail or "Signed out"}})
            self.begin_close(CLOSE_EXPIRED, b"credential revoked")
        elif kind == "shutdown":
            self.begin_close(1001, b"server shutdown")

    async def heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.hub.heartbeat_s)
            await self.send({"type": "ping"})

    def close(self) -> None:
        for uid in list(self.subscriptions):
            self.unsubscribe(uid)


async def realtime(request: web.Request) -> web.StreamResponse:
    svc = services(request)
    hub = svc.realtime
    if hub is None:
        raise web.HTTPServiceUnavailable()
    acc = accountability(request)
    token = request.query.get("access_token")
    if token and "Authorization" not in request.headers:
        # the upgrade's URL carries the token (browsers cannot set headers on one)
        acc = await authenticate_token(svc, token, ip=acc.ip, user_agent=acc.user_agent)
        credential: Credential | None = Credential(authorization=f"Bearer {token}")
    else:
        credential = hub.credential(request.headers, request.cookies, acc)
    hub.check_origin(request.headers, credential, own=f"{request.scheme}://{request.host}")
    holder: list[Connection] = []
    stream = hub.open_stream(acc, credential, grace=hub.auth_grace_s,
                             on_expiring=lambda: holder[0].expiring() if holder else None)
    ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE * 2)
    try:
        await ws.prepare(request)
        conn = Connection(request, ws, stream)
        holder.append(conn)
        helpers = [asyncio.create_task(conn.watch_stream()), asyncio.create_task(conn.heartbeat())]
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await conn.handle(msg.data)
                elif msg.type == WSMsgType.BINARY:
                    await conn.send(_error("error", InvalidPayload("Messages are JSON text")))
        finally:
            for task in helpers:
                task.cancel()
            conn.close()
            if conn.closer is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.closer, 5)
    finally:
        hub.close_stream(stream)
    return ws


def build(root: web.Application) -> web.Application:
    """The WebSocket sub-application (the kernel ends its streams, and so its
    sockets, at shutdown)."""
    app = web.Application()
    app.router.add_get("", realtime)
    return app


@hookimpl
def workeros_register_realtime_transports() -> list[RealtimeTransport]:
    return [RealtimeTransport(name="websocket", prefix="/api/realtime", factory=build,
                              description="WebSocket at /api/realtime (Directus-shaped messages)"),
            RealtimeTransport(name="websocket-alias", prefix="/websocket", factory=build,
                              description="The same WebSocket at /websocket, Directus's default path")]
