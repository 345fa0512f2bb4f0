"""The five MCP storage tools through the ``mcp`` SDK's client over streamable
HTTP, on both dialects: results equal REST's, import from a URL under the
network rule, annotations, and a read-only key refused on writes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web

from tests.accounts_setup import FAST_HASH, make_server, password, sign_up  # noqa: F401

from .conftest import png, upload

TOOLS = {"storage_list": True, "storage_get": True, "storage_import_url": False, "storage_update": False,
         "storage_delete": False}


@pytest.fixture
def wos_settings_overrides(smtp_inbox: Any) -> dict[str, Any]:
    return {**FAST_HASH, **smtp_inbox.settings(), "network.allow_private": True}


@asynccontextmanager
async def mcp_session(url: str, token: str) -> AsyncIterator[Any]:
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    async with create_mcp_http_client(headers={"Authorization": f"Bearer {token}"}) as http, \
            streamable_http_client(url, http_client=http) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session


def data(result: Any) -> Any:
    assert not result.is_error, result
    return result.structured_content["data"]


@asynccontextmanager
async def origin(body: bytes) -> AsyncIterator[str]:
    """A real HTTP server on loopback serving ``body``."""
    async def serve(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/octet-stream")

    app = web.Application()
    app.router.add_get("/files/{name}", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_storage_tools(api, sign_up, password) -> None:  # noqa: F811
    await sign_up("ada@example.com")
    admin = await api.sign_in("ada@example.com", password)
    row = (await upload(admin, png(20, 10), filename="a.png")).data
    url = str(api.server.make_url("/mcp"))
    async with mcp_session(url, admin.token) as session:
        tools = {t.name: t for t in (await session.list_tools()).tools}
        for name, read_only in TOOLS.items():
            assert tools[name].annotations.read_only_hint is read_only
            assert tools[name].annotations.destructive_hint is (name == "storage_delete")
        assert data(await session.call_tool("storage_list", {})) == (await admin.get("/api/files")).data
        got = data(await session.call_tool("storage_get", {"id": row["id"]}))
        assert got == (await admin.get(f"/api/files/{row['id']}")).data
        updated = data(await session.call_tool("storage_update", {"id": row["id"], "title": "Renamed"}))
        assert updated["title"] == "Renamed"
        async with origin(b"%PDF-1.4 imported") as base:
            imported = data(await session.call_tool("storage_import_url", {"url": f"{base}/files/doc.pdf"}))
        assert imported["type"] == "application/pdf" and imported["filename_download"] == "doc.pdf"
        assert (await admin.get(f"/api/assets/{imported['id']}")).raw == b"%PDF-1.4 imported"
        bad = await session.call_tool("storage_import_url", {"url": "file:///etc/passwd"})
        assert bad.is_error
        data(await session.call_tool("storage_delete", {"id": row["id"]}))
        assert (await admin.get(f"/api/files/{row['id']}")).status == 404
    key = await admin.post("/api/api-keys", json={"name": "ro", "mcp_read_only": True})
    assert key.status == 201, key
    async with mcp_session(url, key.data["key"]) as session:
        refused = await session.call_tool("storage_delete", {"id": imported["id"]})
        assert refused.is_error
        assert len(data(await session.call_tool("storage_list", {}))) == 1


async def test_import_follows_the_network_rule(api, sign_up, password) -> None:  # noqa: F811
    await sign_up("ada@example.com")
    admin = await api.sign_in("ada@example.com", password)
    async with origin(b"hello") as base:
        r = await admin.post("/api/files/import", json={"url": f"{base}/files/hi.txt", "title": "Hi"})
        assert r.status == 201 and r.data["title"] == "Hi" and r.data["type"] == "text/plain", r
        assert (await admin.post("/api/files/import", json={"url": "gopher://x"})).code == "INVALID_PAYLOAD"
        assert (await admin.post("/api/files/import", json={})).code == "INVALID_PAYLOAD"


async def test_import_refuses_private_addresses(make_server) -> None:  # noqa: F811
    from aiohttp.test_utils import TestClient
    from callers import Api, TestCallers

    async with make_server(TestCallers(), **{"network.allow_private": False}) as server, \
            TestClient(server) as client:
        admin = Api(client).as_admin()
        async with origin(b"secret") as base:
            r = await admin.post("/api/files/import", json={"url": f"{base}/files/x"})
        assert r.status == 400 and r.code == "INVALID_PAYLOAD", r
        assert (await admin.get("/api/files")).data == []
