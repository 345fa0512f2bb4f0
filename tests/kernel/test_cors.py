"""CORS over real HTTP: off by default, and with ``cors.origins`` set, preflights
and answers (errors included) carry the policy for listed origins only."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

APP = "https://app.example.com"
PREFLIGHT = {"Origin": APP, "Access-Control-Request-Method": "PATCH",
             "Access-Control-Request-Headers": "Authorization, Content-Type"}


async def test_cors_is_off_by_default(make_server) -> None:
    async with make_server() as server, TestClient(server) as client:
        async with client.get("/api/server/health", headers={"Origin": APP}) as r:
            assert r.status == 200
            assert "Access-Control-Allow-Origin" not in r.headers
        async with client.options("/api/items/anything", headers=PREFLIGHT) as r:
            assert "Access-Control-Allow-Origin" not in r.headers


async def test_listed_origin_gets_preflight_and_headers(make_server) -> None:
    async with make_server(cors__origins=[APP], cors__credentials=True) as server, TestClient(server) as client:
        async with client.options("/api/items/anything", headers=PREFLIGHT) as r:
            assert r.status == 200
            assert r.headers["Access-Control-Allow-Origin"] == APP
            assert "PATCH" in r.headers["Access-Control-Allow-Methods"]
            assert "AUTHORIZATION" in r.headers["Access-Control-Allow-Headers"].upper()
            assert r.headers["Access-Control-Allow-Credentials"] == "true"
            assert r.headers["Access-Control-Max-Age"] == "600"
        async with client.get("/api/server/health", headers={"Origin": APP}) as r:
            assert r.status == 200
            assert r.headers["Access-Control-Allow-Origin"] == APP
            assert "X-REQUEST-ID" in r.headers["Access-Control-Expose-Headers"].upper()
        # An error answer is readable by the page too (it carries the envelope).
        async with client.get("/api/items/nope", headers={"Origin": APP}) as r:
            assert r.status in (403, 404)
            assert r.headers["Access-Control-Allow-Origin"] == APP
        # Another origin gets nothing.
        evil = {**PREFLIGHT, "Origin": "https://evil.example"}
        async with client.options("/api/items/anything", headers=evil) as r:
            assert r.status == 403 and "Access-Control-Allow-Origin" not in r.headers
        async with client.get("/api/server/health", headers={"Origin": "https://evil.example"}) as r:
            assert "Access-Control-Allow-Origin" not in r.headers


async def test_methods_outside_the_list_are_refused_at_preflight(make_server) -> None:
    async with make_server(cors__origins=[APP], cors__methods=["GET"]) as server, TestClient(server) as client:
        async with client.options("/api/items/anything", headers=PREFLIGHT) as r:
            assert r.status == 403 and "Access-Control-Allow-Origin" not in r.headers


async def test_wildcard_with_credentials_is_refused_at_boot(make_server) -> None:
    from workeros.errors import StartupError

    with pytest.raises(StartupError, match="cors.credentials"):
        async with make_server(cors__origins=["*"], cors__credentials=True):
            pass
