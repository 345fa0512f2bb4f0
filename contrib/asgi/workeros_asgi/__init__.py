"""workeros behind ASGI: ``uvicorn workeros_asgi:app`` (or hypercorn, or
Vercel's Python runtime, which serves an ``app`` variable).

The aiohttp app runs in the ASGI server's process and event loop, called
without a socket (:class:`workeros.api.InProcessApp`): the same middlewares,
routes and services as ``workeros serve``. Settings come from the environment
(``WORKEROS_*``) and the config file as usual; the ``runtime`` setting is
``asgi``, which mounts no realtime transport (serverless hosts end a function
after its response; use ``workeros serve`` for SSE and WebSockets). The app
starts on the ASGI ``lifespan`` startup, or on the first request where the host
sends no lifespan events, and shuts down on lifespan shutdown. See
``docs/deploy.md``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

from workeros.api import InProcessApp, Settings, create_app
from workeros.hookspecs import hookimpl
from workeros.hookspecs.lifecycle import Runtime

log = logging.getLogger("workeros.asgi")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class ASGIApp:
    """An ASGI 3 application serving a workeros app.

    ``ASGIApp()`` builds the app from the environment when it starts;
    ``ASGIApp(app=aiohttp_app)`` serves one already built (tests, embedding).
    """

    def __init__(self, settings: Settings | None = None, *, app: web.Application | None = None,
                 plugins: Any = None) -> None:
        self._settings = settings
        self._plugins = plugins
        self._app = app
        self.inner: InProcessApp | None = None
        self._starting: asyncio.Lock | None = None

    async def startup(self) -> InProcessApp:
        if self.inner is not None:
            return self.inner
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self.inner is None:
                app = self._app
                if app is None:
                    settings = self._settings if self._settings is not None else Settings.load()
                    if settings["runtime"] == "aiohttp":
                        settings = settings.with_overrides(runtime="asgi")
                    app = await create_app(settings, plugins=self._plugins)
                inner = InProcessApp(app)
                await inner.startup()
                self.inner = inner
        return self.inner

    async def shutdown(self) -> None:
        if self.inner is not None:
            inner, self.inner = self.inner, None
            await inner.shutdown()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            # No realtime on this runtime: refuse the upgrade (HTTP 403 from the server).
            await receive()
            await send({"type": "websocket.close", "code": 1008})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    log.exception("workeros did not start")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        inner = await self.startup()
        path = scope.get("raw_path") or scope["path"].encode()
        if isinstance(path, bytes):
            path = path.decode("latin-1")
        query = scope.get("query_string") or b""
        if query:
            path = f"{path}?{query.decode('latin-1')}"
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope.get("headers") or ()]

        async def body() -> AsyncIterator[bytes]:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ConnectionResetError("client disconnected")
                yield message.get("body", b"")
                if not message.get("more_body"):
                    return

        async def start(status: int, out: list[tuple[str, str]]) -> None:
            await send({"type": "http.response.start", "status": status,
                        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in out]})

        async def chunk(data: bytes, more: bool) -> None:
            await send({"type": "http.response.body", "body": data, "more_body": more})

        await inner.call(scope["method"], path, headers, body(), start=start, send=chunk,
                         client=tuple(scope["client"]) if scope.get("client") else None,
                         server=tuple(scope["server"]) if scope.get("server") else None,
                         scheme=scope.get("scheme", "http"))


def _factory(app: web.Application) -> ASGIApp:
    return ASGIApp(app=app)


@hookimpl
def workeros_register_runtimes() -> list[Runtime]:
    return [Runtime(name="asgi", factory=_factory, realtime=False,
                    description="ASGI servers and Vercel's Python runtime (no realtime streams)")]


#: ``uvicorn workeros_asgi:app`` — built from the environment on startup.
app = ASGIApp()
