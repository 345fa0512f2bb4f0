"""GraphQL over WebSocket at ``GET /api/graphql``, in the ``graphql-transport-ws``
protocol (https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md).

Client → server: ``connection_init`` (once; ``payload.access_token`` or
``payload.Authorization`` signs in, else the upgrade's Bearer header or session
cookie counts), ``subscribe`` ``{id, payload: {query, variables?,
operationName?}}``, ``complete`` ``{id}``, ``ping``/``pong``.
Server → client: ``connection_ack``, ``next`` ``{id, payload: {data, errors?}}``,
``error`` ``{id, payload: [errors]}``, ``complete`` ``{id}``, ``ping``/``pong``.

A subscription (``<slug>_mutated``, see subscriptions.py) streams ``next`` until
the client completes it; a query or mutation gets one ``next`` then
``complete``. Both run on the role's engine with the limits of HTTP requests. An
operation the schema or the limits refuse gets ``error`` with
``extensions.code`` (``INVALID_QUERY``, ``FORBIDDEN``…), as does a subscription
the hub ends because the caller's access changed.

The socket is closed, as the protocol says, with ``4400`` for a message that is
not the protocol's, ``4401`` for ``subscribe`` before ``connection_ack``, ``4403``
when the ``connection_init`` credential is refused (and when the access token
the connection runs on expires: a client may reconnect with a fresh one),
``4406`` without the subprotocol, ``4408`` without ``connection_init`` in
``graphql.connection_init_timeout_s``, ``4409`` for a second ``subscribe`` with
an id in use, ``4429`` for a second ``connection_init``; ``1001`` at shutdown.

The realtime hub holds the connection as a stream: when the credential it runs
on (the upgrade's Bearer token, API key or session cookie, or the
``connection_init`` token) expires or is revoked — logout, key revoked, user
suspended or deleted — the socket is closed with ``4403``, and a role change
re-applies the new role's rules to running subscriptions (those it forbids end
with an ``error``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiohttp import WSMsgType, web

from workeros.api import (
    Accountability,
    Credential,
    RateLimited,
    ServiceUnavailable,
    Stream,
    WorkerosError,
    accountability,
    authenticate_token,
    bearer_token,
    dumps_str,
    loads,
    services,
)

from .execution import ENGINES, SETTINGS_KEY, Operation, prepare, run
from .keys import WS_ENABLED
from .subscriptions import Closed, check_root

log = logging.getLogger("workeros.graphql")

PROTOCOL = "graphql-transport-ws"
#: Operations running at once on one connection.
MAX_OPERATIONS = 100
#: Set on the GraphQL app when the runtime holds streams (WebSocket upgrades served).
ENABLED = WS_ENABLED

BAD_REQUEST = 4400
UNAUTHORIZED = 4401
FORBIDDEN = 4403
SUBPROTOCOL_NOT_ACCEPTABLE = 4406
INIT_TIMEOUT = 4408
SUBSCRIBER_EXISTS = 4409
TOO_MANY_INITS = 4429
INTERNAL = 4500
TRY_AGAIN_LATER = 1013
GOING_AWAY = 1001

_INTERNAL_ERROR = {"message": "Internal error", "extensions": {"code": "INTERNAL"}}


class Close(Exception):
    """End the socket with ``code`` and ``reason``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _errors(error: WorkerosError) -> list[dict[str, Any]]:
    body = error.to_error()
    return [{"message": body["message"], "extensions": {"code": body["extensions"]["code"]}}]


def _token(payload: dict[str, Any]) -> str | None:
    """The credential of a ``connection_init`` payload, if it has one."""
    for key in ("access_token", "Authorization", "authorization"):
        value = payload.get(key)
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip():
            raise Close(BAD_REQUEST, f"connection_init payload.{key} must be a non-empty string")
        return value.strip() if key == "access_token" else (bearer_token(value) or value.strip())
    return None


class Connection:
    def __init__(self, request: web.Request, ws: web.WebSocketResponse, stream: Stream) -> None:
        self.ws = ws
        self.svc = services(request)
        self.hub = self.svc.realtime
        self.engines = request.app[ENGINES]
        self.settings = request.app[SETTINGS_KEY]
        #: The hub's record of this socket: who it runs as (and its connection
        #: count), and when it ends.
        self.stream = stream
        self.initialised = False
        self.acknowledged = False
        self.operations: dict[str, asyncio.Task[None]] = {}
        self.send_lock = asyncio.Lock()
        #: The task closing the socket (started by a timer or a protocol error),
        #: awaited by the handler so the close handshake completes.
        self.closer: asyncio.Task[Any] | None = None

    @property
    def acc(self) -> Accountability:
        return self.stream.acc

    # -- sending ---------------------------------------------------------------------
    def begin_close(self, code: int, reason: str) -> None:
        if self.closer is None:
            # a close reason has at most 123 bytes
            message = reason.encode()[:123].decode(errors="ignore").encode()
            self.closer = asyncio.create_task(self.ws.close(code=code, message=message))

    async def send(self, message: dict[str, Any]) -> None:
        async with self.send_lock:
            if not self.ws.closed:
                with contextlib.suppress(ConnectionResetError):  # the client went away: nothing to tell it
                    await self.ws.send_str(dumps_str(message))

    async def send_error(self, op_id: str, errors: list[dict[str, Any]]) -> None:
        await self.send({"id": op_id, "type": "error", "payload": errors or [_INTERNAL_ERROR]})

    # -- receiving -------------------------------------------------------------------
    async def handle(self, raw: str) -> None:
        """One message from the client; raises :class:`Close` to end the socket."""
        try:
            message = loads(raw)
        except ValueError:
            raise Close(BAD_REQUEST, "Invalid message: not JSON") from None
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            raise Close(BAD_REQUEST, "Invalid message: a JSON object with a type is expected")
        kind = message["type"]
        if kind == "ping":
            pong: dict[str, Any] = {"type": "pong"}
            if isinstance(message.get("payload"), dict):
                pong["payload"] = message["payload"]
            await self.send(pong)
        elif kind == "pong":
            pass
        elif kind == "connection_init":
            await self.init(message.get("payload"))
        elif kind == "subscribe":
            await self.subscribe(message)
        elif kind == "complete":
            self.complete(message)
        else:
            raise Close(BAD_REQUEST, f"Invalid message type {kind[:40]!r}")

    async def init(self, payload: Any) -> None:
        if self.initialised:
            raise Close(TOO_MANY_INITS, "Too many initialisation requests")
        self.initialised = True
        if payload is not None and not isinstance(payload, dict):
            raise Close(BAD_REQUEST, "connection_init payload must be an object")
        token = _token(payload or {})
        if token is not None:
            try:
                acc = await authenticate_token(self.svc, token, ip=self.acc.ip, user_agent=self.acc.user_agent)
            except WorkerosError as error:
                raise Close(FORBIDDEN, f"Forbidden: {error.message}") from None
            try:
                self.stream.renew(acc.with_origin("graphql"), Credential(authorization=f"Bearer {token}"))
            except RateLimited as error:
                raise Close(TRY_AGAIN_LATER, error.message) from None
        self.acknowledged = True
        await self.send({"type": "connection_ack"})

    async def subscribe(self, message: dict[str, Any]) -> None:
        if not self.acknowledged:
            raise Close(UNAUTHORIZED, "Unauthorized")
        op_id, payload = message.get("id"), message.get("payload")
        if not isinstance(op_id, str) or not op_id:
            raise Close(BAD_REQUEST, "subscribe needs an id")
        if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
            raise Close(BAD_REQUEST, "subscribe needs payload.query")
        variables, operation_name = payload.get("variables"), payload.get("operationName")
        if variables is not None and not isinstance(variables, dict):
            raise Close(BAD_REQUEST, "payload.variables must be an object")
        if operation_name is not None and not isinstance(operation_name, str):
            raise Close(BAD_REQUEST, "payload.operationName must be a string")
        if op_id in self.operations:
            raise Close(SUBSCRIBER_EXISTS, f"Subscriber for {op_id[:80]} already exists")
        if len(self.operations) >= MAX_OPERATIONS:
            await self.send_error(op_id, _errors(RateLimited(
                f"At most {MAX_OPERATIONS} operations at once on one connection")))
            return
        try:
            operation = await prepare(self.engines, self.settings, self.acc, payload["query"], variables,
                                      operation_name)
        except WorkerosError as error:
            await self.send_error(op_id, _errors(error))
            return
        started: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(self.execute(op_id, operation, started))
        self.operations[op_id] = task
        if operation.kind == "subscription":
            # Read the next message only once the hub has the subscription: a
            # change made after a later message's reply is never missed.
            await asyncio.wait({started, task}, return_when=asyncio.FIRST_COMPLETED)

    def complete(self, message: dict[str, Any]) -> None:
        op_id = message.get("id")
        if not isinstance(op_id, str):
            raise Close(BAD_REQUEST, "complete needs an id")
        task = self.operations.pop(op_id, None)
        if task is not None:
            task.cancel()

    # -- running operations ----------------------------------------------------------
    async def execute(self, op_id: str, operation: Operation, started: asyncio.Future[None]) -> None:
        context: dict[str, Any] = {"services": self.svc, "acc": self.acc, "stream": self.stream,
                                   "started": started}
        try:
            if operation.document is None:  # invalid: the engine reports why, nothing runs
                result = await operation.entry.engine.execute(operation.query, operation_name=operation.operation_name,
                                                              variables=operation.variables, context=context)
                await self.send_error(op_id, result.get("errors") or [])
            elif operation.kind == "subscription":
                check_root(operation.document, operation.operation_name, operation.entry.built)
                await self.run_stream(op_id, operation, context, started)
            else:
                result = await run(operation, self.settings, context)
                await self.send({"id": op_id, "type": "next", "payload": result})
                await self.send({"id": op_id, "type": "complete"})
        except asyncio.CancelledError:
            raise
        except Closed as closed:
            if closed.shutdown:
                self.begin_close(GOING_AWAY, "server shutdown")
            else:
                await self.send_error(op_id, _errors(closed.error()))
        except WorkerosError as error:
            await self.send_error(op_id, _errors(error))
        except Exception:
            log.exception("GraphQL operation over WebSocket failed")
            await self.send_error(op_id, [_INTERNAL_ERROR])
        finally:
            if not started.done():
                started.set_result(None)
            if self.operations.get(op_id) is asyncio.current_task():
                del self.operations[op_id]

    async def run_stream(self, op_id: str, operation: Operation, context: dict[str, Any],
                     started: asyncio.Future[None]) -> None:
        results = operation.entry.engine.subscribe(operation.query, operation_name=operation.operation_name,
                                                   context=context, variables=operation.variables)
        try:
            async for result in results:
                if not started.done():
                    # tartiflette's own errors (variables, arguments) come before the
                    # source stream starts: the operation never ran.
                    await self.send_error(op_id, result.get("errors") or [])
                    return
                await self.send({"id": op_id, "type": "next", "payload": result})
        finally:
            await results.aclose()
        await self.send({"id": op_id, "type": "complete"})

    # -- timers ----------------------------------------------------------------------
    async def expect_init(self, timeout: float) -> None:
        await asyncio.sleep(timeout)
        if not self.initialised:
            self.begin_close(INIT_TIMEOUT, "Connection initialisation timeout")

    async def watch_stream(self) -> None:
        """Close the socket when the hub ends the stream: the credential
        expired or was revoked (4403), or the server is shutting down (1001)."""
        reason = await self.stream.wait()
        if reason == "shutdown":
            self.begin_close(GOING_AWAY, "server shutdown")
        else:
            self.begin_close(FORBIDDEN, f"Forbidden: {reason.partition(': ')[2] or reason}")

    async def heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.hub.heartbeat_s)
            await self.send({"type": "ping"})

    async def stop(self) -> None:
        """End every operation (their hub subscriptions with them)."""
        tasks = list(self.operations.values())
        self.operations.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def serve(request: web.Request) -> web.StreamResponse:
    svc = services(request)
    hub = svc.realtime
    if hub is None or svc.items is None:
        raise ServiceUnavailable("Subscriptions are not available")
    acc = accountability(request).with_origin("graphql")
    credential = hub.credential(request.headers, request.cookies, acc)
    hub.check_origin(request.headers, credential, own=f"{request.scheme}://{request.host}")
    stream = hub.open_stream(acc, credential)
    try:
        ws = web.WebSocketResponse(protocols=(PROTOCOL,), max_msg_size=int(request.app[SETTINGS_KEY][
            "server.max_body_size"]))
        await ws.prepare(request)
        conn = Connection(request, ws, stream)
        if ws.ws_protocol != PROTOCOL:
            await ws.close(code=SUBPROTOCOL_NOT_ACCEPTABLE, message=b"Subprotocol not acceptable")
            return ws
        helpers = [asyncio.create_task(conn.expect_init(float(conn.settings["graphql.connection_init_timeout_s"]))),
                   asyncio.create_task(conn.watch_stream()), asyncio.create_task(conn.heartbeat())]
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    conn.begin_close(BAD_REQUEST, "Messages are JSON text")
                    break
                try:
                    await conn.handle(msg.data)
                except Close as close:
                    conn.begin_close(close.code, close.reason)
                    break
                except Exception:
                    log.exception("GraphQL WebSocket message failed")
                    conn.begin_close(INTERNAL, "Internal server error")
                    break
        finally:
            for task in helpers:
                task.cancel()
            await conn.stop()
            if conn.closer is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.closer, 5)
    finally:
        hub.close_stream(stream)
    return ws


def install(app: web.Application) -> None:
    """Serve WebSocket upgrades on ``app`` (the kernel ends their streams, and
    so the sockets, at shutdown)."""
    app[ENABLED] = True
