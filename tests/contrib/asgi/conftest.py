"""The app behind the ASGI adapter, served by uvicorn on a loopback port.
``api`` here replaces the project-wide fixture, so REST tests imported into
this folder run unchanged through uvicorn -> ASGI -> the app."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import types
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
import uvicorn
from callers import Api, TestCallers
from workeros_asgi import ASGIApp

from workeros.http.app import create_app
from workeros.plugins import Plugins


@asynccontextmanager
async def uvicorn_serving(asgi: Any) -> AsyncIterator[str]:
    # A socket bound to port 0 and handed to uvicorn: no window in which
    # another process takes the port.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(asgi, lifespan="on", log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]  # the test runner owns signals
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("uvicorn stopped before it started")
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@asynccontextmanager
async def asgi_app(settings: Any, *extra: Any, **overrides: Any) -> AsyncIterator[tuple[Any, str]]:
    s = settings.with_overrides(runtime="asgi", **overrides)
    plugins = Plugins(load=s["load_plugins"], disable=s["disable_plugins"] or (), strict=s["strict_plugins"],
                      plugins_dir=s["plugins_dir"])
    plugins.load_all()
    for i, plugin in enumerate(extra):
        plugins.register(plugin, name=getattr(plugin, "name", f"test-plugin-{i}"), distribution="test-fixtures")
    app = await create_app(s, plugins=plugins)
    async with uvicorn_serving(ASGIApp(app=app)) as url:
        yield app, url


@pytest.fixture
async def api(wos_settings: Any) -> AsyncIterator[Api]:
    async with asgi_app(wos_settings, TestCallers()) as (app, url), \
            aiohttp.ClientSession(base_url=url) as session:
        api = Api(session)
        api.server = types.SimpleNamespace(app=app)  # type: ignore[attr-defined]
        yield api
