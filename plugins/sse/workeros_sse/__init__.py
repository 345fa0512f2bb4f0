"""Server-sent events: ``GET /api/realtime/items/{slug}?filter=…&fields=…``.

Each item change the caller may see arrives as ``event: create|update|delete``
with ``data: {"event", "collection", "data": [rows]}`` and an ``id:`` for
``Last-Event-ID`` resume. Control events: ``ready`` (subscribed), ``gap``
(events were missed: re-fetch), ``expired`` (the access token ran out: sign in
again and reconnect), ``closed`` (with a reason: too slow, shutdown). A comment
line every ``realtime.heartbeat_s`` keeps idle connections open through proxies.

Authentication is the request's (Bearer token, API key or session cookie),
checked once when the stream opens; a Bearer token's expiry ends the stream.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web
from aiohttp_sse import sse_response

from workeros.api import (
    SERVICES,
    InvalidQuery,
    ServiceUnavailable,
    accountability,
    bearer_token,
    loads,
    services,
    token_expiry,
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


async def _forward(resp: Any, sub: Any) -> None:
    """Send what arrives on the subscription's queue until it is closed."""
    while True:
        message = await sub.queue.get()
        if message.event == "closed":
            await resp.send(message.json, event="closed")
            return
        await resp.send(message.json, event=message.event, id=message.id)


@routes.get("/{slug}")
async def stream(request: web.Request) -> web.StreamResponse:
    svc = services(request)
    hub = svc.realtime
    if hub is None:
        raise ServiceUnavailable("Realtime is not available")
    acc = accountability(request)
    fields = request.query.get("fields")
    sub = await hub.subscribe(acc, request.match_info["slug"], filter=_filter(request),
                              fields=fields.split(",") if fields else None)
    try:
        slot = hub.acquire(acc)
    except Exception:
        hub.unsubscribe(sub)
        raise
    expires = token_expiry(bearer_token(request.headers.get("Authorization")))
    try:
        async with sse_response(request, headers={"X-Accel-Buffering": "no", "Cache-Control": "no-cache"}) as resp:
            resp.ping_interval = hub.heartbeat_s
            last = request.headers.get("Last-Event-ID")
            if last and not hub.replay_since(sub, last):
                await resp.send('{"event":"gap"}', event="gap")
            await resp.send('{"event":"ready"}', event="ready", id=hub.last_event_id(sub.collection))
            # One task forwards the queue; this one waits, once, for whichever comes
            # first: the client going (seen at the next heartbeat at the latest),
            # the token expiring, or the forwarder ending on a ``closed`` message.
            forward = asyncio.ensure_future(_forward(resp, sub))
            gone = asyncio.ensure_future(resp.wait())
            try:
                timeout = None if expires is None else max(0.0, expires - time.time())
                done, _ = await asyncio.wait({forward, gone}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                if forward in done:
                    forward.result()
                elif gone not in done:
                    forward.cancel()
                    await asyncio.gather(forward, return_exceptions=True)
                    await resp.send('{"event":"expired","reason":"the access token expired"}', event="expired")
            finally:
                forward.cancel()
                gone.cancel()
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        hub.unsubscribe(sub)
        hub.release(slot)
    return resp


def build(root: web.Application) -> web.Application:
    app = web.Application()
    app.add_routes(routes)

    async def close_streams(_: web.Application) -> None:
        """On shutdown, end every stream with a ``closed`` event so in-flight
        streams do not hold the graceful drain and clients reconnect elsewhere."""
        svc = root.get(SERVICES)
        if svc is not None and svc.realtime is not None:
            svc.realtime.close_all("shutdown")

    root.on_shutdown.append(close_streams)
    return app


@hookimpl
def workeros_register_realtime_transports() -> list[RealtimeTransport]:
    return [RealtimeTransport(name="sse", prefix="/api/realtime/items", factory=build,
                              description="Server-sent events at /api/realtime/items/{slug}")]
