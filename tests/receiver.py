"""A real HTTP receiver on loopback for outbound-call tests (webhooks, the
flow ``request`` step): it records every request and answers as told."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web


class Received:
    def __init__(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        self.method, self.path, self.headers, self.body = method, path, headers, body
        self.at = time.monotonic()

    def json(self) -> Any:
        import orjson

        return orjson.loads(self.body)


class Receiver:
    """``statuses``: answers to give in order (then 200); ``delay``: seconds to
    wait before answering; ``hang_first``: the first request never gets an
    answer; ``redirect``: answer every request with a 302 there."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.statuses: list[int] = []
        self.delay = 0.0
        self.hang_first = False
        self.redirect: str | None = None
        self.reply: Any = {"ok": True}
        self.host = "127.0.0.1"
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(Received(request.method, request.path_qs, dict(request.headers), body))
        if self.redirect:
            raise web.HTTPFound(self.redirect)
        if self.hang_first and len(self.requests) == 1:
            await asyncio.sleep(3600)
        if self.delay:
            await asyncio.sleep(self.delay)
        status = self.statuses.pop(0) if self.statuses else 200
        return web.json_response(self.reply, status=status)

    async def start(self) -> Receiver:
        from workeros.sdk.testing import free_port

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        self.port = free_port()
        await web.TCPSite(self._runner, self.host, self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


async def eventually(check: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05) -> Any:
    """Wait until ``check()`` (sync or async) is truthy; return its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)
