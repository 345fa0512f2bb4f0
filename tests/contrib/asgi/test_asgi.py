"""What the ASGI adapter adds: lifespan, streamed bodies both ways, headers
and cookies, no realtime, the runtime entry."""

from __future__ import annotations

from typing import Any

import aiohttp
from callers import Api, TestCallers
from conftest import asgi_app  # tests/contrib/asgi/conftest.py

from workeros.http.keys import REGISTRY


async def test_runtime_is_registered_without_realtime(wos_settings: Any) -> None:
    async with asgi_app(wos_settings) as (app, url), aiohttp.ClientSession(base_url=url) as session:
        runtime = app[REGISTRY].get("runtime")
        assert runtime.name == "asgi" and runtime.realtime is False
        async with session.get("/api/server/ready") as r:
            assert r.status == 200
        # No realtime transport is mounted on this runtime.
        async with session.get("/api/realtime") as r:
            assert r.status == 404


async def test_large_request_and_response_bodies_stream_through(wos_settings: Any) -> None:
    async with asgi_app(wos_settings, TestCallers()) as (_app, url), \
            aiohttp.ClientSession(base_url=url) as session:
        admin = Api(session).as_admin()
        r = await admin.post("/api/collections", json={"collection": "docs", "fields": [
            {"field": "body", "type": "text"}]})
        assert r.status in (200, 201), r
        big = "x" * 300_000  # more than one ASGI body message and one read-buffer

        async def chunks():
            payload = ('{"body": "' + big + '"}').encode()
            for i in range(0, len(payload), 65536):
                yield payload[i:i + 65536]

        r = await admin.post("/api/items/docs", data=chunks(), headers={"Content-Type": "application/json"})
        assert r.status in (200, 201), r
        r = await admin.get(f"/api/items/docs/{r.data['id']}")
        assert r.status == 200 and r.data["body"] == big


async def test_errors_keep_the_envelope_and_the_headers(wos_settings: Any) -> None:
    async with asgi_app(wos_settings, TestCallers()) as (_app, url), \
            aiohttp.ClientSession(base_url=url) as session:
        async with session.post("/api/items/nope", data=b"{bad", headers={"Content-Type": "application/json",
                                                                          "X-Request-Id": "req-42"}) as r:
            assert r.status in (400, 403)
            assert r.headers["X-Request-Id"] == "req-42"
            body = await r.json()
            assert body["errors"][0]["extensions"]["code"] in ("INVALID_PAYLOAD", "FORBIDDEN")
        async with session.get("/api/server/health", headers={"Accept-Encoding": "gzip"}) as r:
            assert r.status == 200 and (await r.json())["data"]["status"] == "ok"
        async with session.delete("/api/server/health") as r:
            assert r.status == 405
