"""The app factory and middlewares: the contract's envelope for every error,
request ids, the body limit, health and the plugin listing."""

from __future__ import annotations

import contextlib
import logging

from aiohttp import web
from aiohttp.test_utils import TestClient

from workeros import errors
from workeros.accountability import Accountability
from workeros.hookspecs import hookimpl
from workeros.http.keys import ACCOUNTABILITY, SERVICES


class Routes:
    """Routes that fail in each way the middleware must handle."""

    @hookimpl
    def workeros_after_app_created(self, app):
        async def typed(request):
            raise errors.Conflict("Item already exists", field="email")

        async def crash(request):
            raise RuntimeError("SELECT secret FROM /etc/passwd")

        async def limited(request):
            raise errors.RateLimited(retry_after=7)

        async def echo(request):
            from workeros.http.web import ok, read_json

            return ok(await read_json(request))

        app.router.add_get("/t/typed", typed)
        app.router.add_get("/t/crash", crash)
        app.router.add_get("/t/limited", limited)
        app.router.add_post("/t/echo", echo)


class AdminEverywhere:
    """Stands in for the accounts service: every caller is an admin."""

    @hookimpl
    def workeros_after_app_created(self, app):
        @web.middleware
        async def admin(request, handler):
            request[ACCOUNTABILITY] = Accountability(user="u1", role="admin", admin=True)
            return await handler(request)

        app.middlewares.append(admin)


async def test_typed_errors_become_the_envelope(make_server) -> None:
    async with make_server(Routes()) as server, TestClient(server) as client:
        r = await client.get("/t/typed")
        assert r.status == 409
        assert await r.json() == {"errors": [{"message": "Item already exists",
                                              "extensions": {"code": "CONFLICT", "field": "email"}}]}
        r = await client.get("/t/limited")
        assert (r.status, r.headers["Retry-After"]) == (429, "7")
        assert (await r.json())["errors"][0]["extensions"]["code"] == "RATE_LIMITED"


async def test_unknown_exception_is_500_with_request_id_only(make_server, caplog) -> None:
    async with make_server(Routes()) as server, TestClient(server) as client:
        with caplog.at_level(logging.ERROR):
            r = await client.get("/t/crash", headers={"X-Request-Id": "req-123"})
        body = await r.json()
        assert r.status == 500
        assert body == {"errors": [{"message": "Internal error",
                                    "extensions": {"code": "INTERNAL", "request_id": "req-123"}}]}
        text = await r.text()
        assert "SELECT" not in text and "/etc" not in text and "Traceback" not in text
        # ...but the operator's log has the whole story, tied to the request id.
        assert "SELECT secret" in caplog.text


async def test_request_ids(make_server) -> None:
    async with make_server() as server, TestClient(server) as client:
        r = await client.get("/api/server/health", headers={"X-Request-Id": "abc-1"})
        assert r.headers["X-Request-Id"] == "abc-1"
        r = await client.get("/api/server/health", headers={"X-Request-Id": "bad id\u00e9!"})
        assert len(r.headers["X-Request-Id"]) == 32  # replaced, not echoed
        r = await client.get("/api/nowhere")
        assert r.headers["X-Request-Id"]


async def test_framework_errors_use_the_envelope(make_server) -> None:
    async with make_server(Routes()) as server, TestClient(server) as client:
        r = await client.get("/api/nowhere")
        assert (r.status, (await r.json())["errors"][0]["extensions"]["code"]) == (404, "NOT_FOUND")
        r = await client.delete("/api/server/health")
        assert (r.status, (await r.json())["errors"][0]["extensions"]["code"]) == (405, "METHOD_NOT_ALLOWED")
        assert "GET" in r.headers["Allow"]


async def test_json_bodies(make_server) -> None:
    async with make_server(Routes()) as server, TestClient(server) as client:
        r = await client.post("/t/echo", json={"a": 1})
        assert await r.json() == {"data": {"a": 1}}
        r = await client.post("/t/echo", data=b"{nope", headers={"Content-Type": "application/json"})
        assert (r.status, (await r.json())["errors"][0]["extensions"]["code"]) == (400, "INVALID_PAYLOAD")
        r = await client.post("/t/echo", data=b"a=1", headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert (r.status, (await r.json())["errors"][0]["extensions"]["code"]) == (415, "UNSUPPORTED_MEDIA_TYPE")
        r = await client.post("/t/echo", data=b"", headers={"Content-Type": "application/json"})
        assert r.status == 400


async def test_body_limit_is_413(make_server) -> None:
    async with make_server(Routes(), server__max_body_size=1024) as server, TestClient(server) as client:
        r = await client.post("/t/echo", data=b"[" + b"1," * 2000 + b"1]",
                              headers={"Content-Type": "application/json"})
        assert (r.status, (await r.json())["errors"][0]["extensions"]["code"]) == (413, "PAYLOAD_TOO_LARGE")

        async def chunks():  # no Content-Length: capped while reading
            for _ in range(10):
                yield b"1" * 512

        r = await client.post("/t/echo", data=chunks(), headers={"Content-Type": "application/json"})
        assert (r.status, (await r.json())["errors"][0]["extensions"]["code"]) == (413, "PAYLOAD_TOO_LARGE")


async def test_health_checks_the_database(make_server, wos_dialect) -> None:
    async with make_server() as server, TestClient(server) as client:
        r = await client.get("/api/server/health")
        body = await r.json()
        assert r.status == 200
        assert body["data"]["status"] == "ok"
        assert body["data"]["checks"]["database"]["dialect"] == {"sqlite": "sqlite", "postgres": "postgresql"}[wos_dialect]


async def test_health_is_503_when_the_database_is_gone(make_server) -> None:
    from workeros.http.keys import SERVICES

    async with make_server() as server, TestClient(server) as client:
        services = server.app[SERVICES]

        async def broken_ping() -> float:
            raise OSError("connection refused")

        services.db.ping = broken_ping
        r = await client.get("/api/server/health")
        assert r.status == 503
        assert (await r.json())["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"


async def test_plugin_listing_is_for_admins(make_server) -> None:
    async with make_server() as server, TestClient(server) as client:
        assert (await client.get("/api/server/plugins")).status == 403
    async with make_server(server__expose_plugins=True) as server, TestClient(server) as client:
        assert (await client.get("/api/server/plugins")).status == 200
    async with make_server(AdminEverywhere()) as server, TestClient(server) as client:
        r = await client.get("/api/server/plugins")
        data = (await r.json())["data"]
        names = {p["name"]: p for p in data["plugins"]}
        assert names["rest"]["distribution"] == "workeros-rest"
        assert names["sqlite"]["version"] == "0.1.0"
        assert any(b["area"] == "transport" and b["active"] for b in names["rest"]["backends"])
        assert data["backends"]["db"]["active"] in ("sqlite", "postgres")
        assert data["backends"]["runtime"]["active"] == "aiohttp"


async def test_plugin_listing_shows_load_errors_without_paths(make_server, tmp_path) -> None:
    import shutil

    from tests.conftest import FIXTURES

    folder = tmp_path / "plugins"
    folder.mkdir()
    shutil.copy(FIXTURES / "broken_on_import.py", folder)
    async with make_server(AdminEverywhere(), plugins_dir=str(folder)) as server, TestClient(server) as client:
        data = (await (await client.get("/api/server/plugins")).json())["data"]
        broken = next(p for p in data["plugins"] if p["name"] == "broken_on_import")
        assert broken["error"] == "RuntimeError: this fixture plugin is broken on purpose"
        assert str(tmp_path) not in str(data)


async def test_a_request_that_finds_no_free_connection_is_answered_503(make_server) -> None:
    """Every pooled connection busy for the pool's whole wait: a 503 in the
    envelope with ``Retry-After`` (the server is overloaded), never a 500; the
    next request, once connections are free, is served."""
    settings = {"database.pool_size": 1, "database.pool_timeout": 0.3, "postgres.max_overflow": 0}
    async with make_server(AdminEverywhere(), **settings) as server, TestClient(server) as client:
        r = await client.post("/api/collections", json={"collection": "notes", "fields": [
            {"field": "title", "type": "string"}]})
        assert r.status in (200, 201), await r.text()
        db = server.app[SERVICES].db
        async with contextlib.AsyncExitStack() as held:
            for _ in range(db.engine.pool.size() + db.engine.pool._max_overflow):
                await held.enter_async_context(db.read())
            # (an aggregate: plain pages may run on a connection of their own)
            r = await client.get("/api/items/notes", params={"aggregate[count]": "*"})
            body = await r.json()
            assert r.status == 503, body
            assert r.headers["Retry-After"] == "1"
            assert body["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
            assert "pool" not in (await r.text()).lower()
        r = await client.get("/api/items/notes")
        assert r.status == 200, await r.text()
