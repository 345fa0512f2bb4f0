"""Project-wide test configuration. Third-party plugins that happen to be installed
are kept out: only this repository's own plugins autoload (datasette #438)."""

from __future__ import annotations

import configparser
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "plugins" / "fixtures"


def first_party_distributions() -> dict[str, Path]:
    """distribution name -> folder, for every plugin under plugins/ and contrib/."""
    out = {}
    for setup_cfg in sorted([*ROOT.glob("plugins/*/setup.cfg"), *ROOT.glob("contrib/*/setup.cfg")]):
        cfg = configparser.ConfigParser()
        cfg.read(setup_cfg)
        out[cfg["metadata"]["name"]] = setup_cfg.parent
    return out


def first_party_plugins() -> list[str]:
    names = []
    for folder in first_party_distributions().values():
        cfg = configparser.ConfigParser()
        cfg.read(folder / "setup.cfg")
        entry_points = cfg.get("options.entry_points", "workeros", fallback="")
        names += [line.split("=")[0].strip() for line in entry_points.strip().splitlines() if "=" in line]
    return sorted(names)


FIRST_PARTY = first_party_plugins()


@pytest.fixture
def wos_load_plugins() -> list[str]:
    return FIRST_PARTY


@pytest.fixture
def make_server(wos_settings: Any) -> Callable[..., Any]:
    """Boot an app with extra plugin objects registered by hand:
    ``async with make_server(plugin, settings=...) as server:``."""
    from aiohttp.test_utils import TestServer

    from workeros.app import create_app
    from workeros.plugins import Plugins

    @asynccontextmanager
    async def run(*extra: Any, settings: Any = None, **overrides: Any) -> AsyncIterator[TestServer]:
        s = (settings or wos_settings).with_overrides(**overrides)
        plugins = Plugins(load=s["load_plugins"], disable=s["disable_plugins"] or (), strict=s["strict_plugins"],
                          plugins_dir=s["plugins_dir"])
        plugins.load_all()
        for i, plugin in enumerate(extra):
            plugins.register(plugin, name=getattr(plugin, "name", f"test-plugin-{i}"), distribution="test-fixtures")
        server = TestServer(await create_app(s, plugins=plugins))
        await server.start_server()
        try:
            yield server
        finally:
            await server.close()

    return run


# -- calling the API as different callers ----------------------------------------------

class ApiResponse:
    def __init__(self, status: int, headers: Any, body: bytes) -> None:
        import orjson

        self.status = status
        self.headers = headers
        self.raw = body
        try:
            self.json = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            self.json = None

    @property
    def data(self) -> Any:
        return (self.json or {}).get("data")

    @property
    def code(self) -> str | None:
        errors = (self.json or {}).get("errors") or [{}]
        return errors[0].get("extensions", {}).get("code")

    def __repr__(self) -> str:
        return f"<ApiResponse {self.status} {self.raw[:300]!r}>"


class Api:
    """Requests to the running app as one caller. ``api.as_admin()``,
    ``api.as_role("editor", user="u1")`` and ``api.anonymous()`` give views with
    another caller; ``await api.get("/api/items/x", params=...)`` returns an
    :class:`ApiResponse` (``status``, ``json``, ``data``, ``code``)."""

    def __init__(self, client: Any, caller: str | None = None) -> None:
        self.client = client
        self.caller = caller

    def as_admin(self) -> Api:
        return Api(self.client, "admin")

    def as_role(self, role: str, user: str | None = None) -> Api:
        return Api(self.client, f"role:{role}:{user or ''}")

    def anonymous(self) -> Api:
        return Api(self.client, None)

    async def request(self, method: str, path: str, **kw: Any) -> ApiResponse:
        headers = dict(kw.pop("headers", None) or {})
        if self.caller:
            headers[TEST_CALLER_HEADER] = self.caller
        async with self.client.request(method, path, headers=headers, **kw) as r:
            return ApiResponse(r.status, r.headers, await r.read())

    async def get(self, path: str, **kw: Any) -> ApiResponse:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, **kw: Any) -> ApiResponse:
        return await self.request("POST", path, **kw)

    async def patch(self, path: str, **kw: Any) -> ApiResponse:
        return await self.request("PATCH", path, **kw)

    async def delete(self, path: str, **kw: Any) -> ApiResponse:
        return await self.request("DELETE", path, **kw)


TEST_CALLER_HEADER = "X-Workeros-Test-Caller"


class TestCallers:
    """Test-only plugin: the caller named in a request header. Stands in for
    sign-in until the accounts service issues real tokens; never installed
    outside this test suite."""

    name = "test-callers"

    from workeros.hookspecs import hookimpl as _hookimpl

    @_hookimpl
    def workeros_after_app_created(self, app: Any) -> None:
        from aiohttp import web

        from workeros.accountability import Accountability
        from workeros.keys import ACCOUNTABILITY

        @web.middleware
        async def caller(request: Any, handler: Any) -> Any:
            value = request.headers.get(TEST_CALLER_HEADER)
            if value == "admin":
                request[ACCOUNTABILITY] = Accountability(user="test-admin", role="admin", admin=True,
                                                         ip=request.remote)
            elif value and value.startswith("role:"):
                _, role, user = value.split(":", 2)
                request[ACCOUNTABILITY] = Accountability(user=user or None, role=role, ip=request.remote)
            return await handler(request)

        app.middlewares.append(caller)


@pytest.fixture
async def api(make_server: Callable[..., Any]) -> AsyncIterator[Api]:
    """The app running on the test's dialect, and an :class:`Api` on it (anonymous;
    use ``api.as_admin()`` and friends)."""
    from aiohttp.test_utils import TestClient

    async with make_server(TestCallers()) as server, TestClient(server) as client:
        api = Api(client)
        api.server = server  # type: ignore[attr-defined]
        yield api
