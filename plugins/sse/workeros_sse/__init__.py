"""Server-sent events: ``GET /api/realtime/items/{slug}?filter=…&fields=…``.

Each item change the caller may see arrives as ``event: create|update|delete``
with ``data: {"event", "collection", "data": [rows]}`` and an ``id:`` for
``Last-Event-ID`` resume. Control events: ``ready`` (subscribed), ``gap``
(events were missed: re-fetch), ``expired`` (the access token ran out: sign in
again and reconnect), ``closed`` (with a reason: ``revoked: …`` when the
credential stopped working, ``forbidden: …`` when the caller's role may no
longer read the collection, ``too slow: …``, ``shutdown``). A comment line every
``realtime.heartbeat_s`` keeps idle connections open through proxies.

Authentication is the request's (Bearer token, API key or session cookie). The
realtime hub ends the stream when that credential expires or is revoked
(logout, key revoked, user suspended or deleted), and re-applies the rules
when the caller's role changes (docs/realtime.md).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from aiohttp_sse import sse_response

from workeros.api import (
    InvalidQuery,
    ServiceUnavailable,
    accountability,
    loads,
    services,
)
from workeros.hookspecs import hookimpl
from workeros.hookspecs.realtime import RealtimeTransport

routes = web.RouteTableDef()


def _filter(request: web.Request) -> Any:
    raw = request.query.get("filter")
    if not raw:
        return None
    try:
        return loads(raw)
    except ValueError:
        raise InvalidQuery("filter is not valid JSON") from None


#: Messages written in one go when a subscriber's queue holds several.
BATCH = 64
#: Seconds a write may wait for a client that stopped reading before the
#: connection is dropped (a stalled peer never drains the buffer).
SEND_TIMEOUT = 120.0
#: Bytes that may sit in the socket's send buffer before a write is awaited
#: under the timeout above (below it a write never waits).
WRITE_BUFFER = 64 * 1024


def _frame(message: Any) -> bytes:
    """The SSE frame of an item event: built once per message (every member of
    a group is sent the same bytes). Event names and ids never hold line
    breaks, and JSON text carries none unescaped: one ``data:`` line."""
    head = f"id: {message.id}\r\n" if message.id is not None else ""
    return f"{head}event: {message.event}\r\ndata: {message.json}\r\n\r\n".encode()


def _closing(message: Any) -> bytes:
    if (message.reason or "").startswith("expired"):
        return b'event: expired\r\ndata: {"event":"expired","reason":"the access token expired"}\r\n\r\n'
    return f"event: closed\r\ndata: {message.json}\r\n\r\n".encode()


async def _write(request: web.Request, resp: Any, data: bytes) -> None:
    transport = request.transport
    if transport is None or transport.is_closing():
        raise ConnectionResetError("the client went away")
    if transport.get_write_buffer_size() + len(data) < WRITE_BUFFER:
        await resp.write(data)  # goes straight to the socket's buffer: no wait
        return
    try:
        async with asyncio.timeout(SEND_TIMEOUT):
            await resp.write(data)
    except TimeoutError:
        resp.stop_streaming()
        transport.abort()
        raise


async def _forward(request: web.Request, resp: Any, sub: Any) -> None:
    """Send what arrives on the subscription's queue until it is closed; what
    queued up meanwhile goes out in one write."""
    queue = sub.queue
    while True:
        message = await queue.get()
        frames = []
        while True:
            if message.event == "closed":
                frames.append(_closing(message))
                await _write(request, resp, b"".join(frames))
                return
            frames.append(message.encoded("sse", _frame))
            if queue.empty() or len(frames) >= BATCH:
                break
            message = queue.get_nowait()
        await _write(request, resp, frames[0] if len(frames) == 1 else b"".join(frames))


@routes.get("/{slug}")
async def stream(request: web.Request) -> web.StreamResponse:
    svc = services(request)
    hub = svc.realtime
    if hub is None:
        raise ServiceUnavailable("Realtime is not available")
    acc = accountability(request)
    fields = request.query.get("fields")
    lease = hub.open_stream(acc, hub.credential(request.headers, request.cookies, acc))
    try:
        sub = await hub.subscribe(acc, request.match_info["slug"], filter=_filter(request),
                                  fields=fields.split(",") if fields else None, stream=lease)
        try:
            async with sse_response(request, headers={"X-Accel-Buffering": "no",
                                                      "Cache-Control": "no-cache"}) as resp:
                resp.ping_interval = hub.heartbeat_s
                last = request.headers.get("Last-Event-ID")
                if last and not hub.replay_since(sub, last):
                    await resp.send('{"event":"gap"}', event="gap")
                await resp.send('{"event":"ready"}', event="ready", id=hub.last_event_id(sub.collection))
                # One task forwards the queue until a ``closed`` message (the hub
                # ends the subscription when the credential expires or is revoked,
                # or at shutdown); this one waits for it or for the client going
                # (seen at the next heartbeat at the latest).
                forward = asyncio.ensure_future(_forward(request, resp, sub))
                gone = asyncio.ensure_future(resp.wait())
                try:
                    done, _ = await asyncio.wait({forward, gone}, return_when=asyncio.FIRST_COMPLETED)
                    if forward in done:
                        forward.result()
                finally:
                    forward.cancel()
                    gone.cancel()
        except (ConnectionResetError, TimeoutError, asyncio.CancelledError):
            pass
    finally:
        hub.close_stream(lease)
    return resp


def build(root: web.Application) -> web.Application:
    """The SSE sub-application (the kernel ends its streams at shutdown)."""
    app = web.Application()
    app.add_routes(routes)
    return app


@hookimpl
def workeros_register_realtime_transports() -> list[RealtimeTransport]:
    return [RealtimeTransport(name="sse", prefix="/api/realtime/items", factory=build,
                              description="Server-sent events at /api/realtime/items/{slug}")]
