"""The flow ``script`` and ``function`` operations run in the sandbox, and the
two MCP function tools (through their handlers, and through a real MCP session
with the SDK's own client), on both dialects."""

from __future__ import annotations

from contextlib import asynccontextmanager

import pytest
from callers import TEST_CALLER_HEADER
from functions_kit import make_function

from workeros.api import Accountability, NotFound
from workeros.hookspecs.mcp import ToolContext


def op(step: str, kind: str, resolve: str | None = None, reject: str | None = None, **options) -> dict:
    return {"key": step, "type": kind, "options": options, "resolve": resolve, "reject": reject}


async def test_flow_script_and_function_operations(booted) -> None:
    async with booted() as (admin, _, _):
        r = await admin.post("/api/collections", json={"collection": "orders", "fields": [
            {"field": "total", "type": "integer"}]})
        assert r.status in (200, 201), r
        await admin.post("/api/items/orders", json={"total": 7})
        await make_function(admin, "double", "export default async (req, ctx) => ({doubled: req.body.n * 2, "
                            "orders: (await ctx.db.items('orders').read({})).length})")
        r = await admin.post("/api/flows", json={"name": "code", "trigger": "webhook", "operations": [
            op("calc", "script", resolve="call",
               code="return {n: data.$trigger.payload.n + 1, user: ctx.user && ctx.user.admin};",
               permissions="$full"),
            op("call", "function", resolve="mod", name="double", payload={"n": "{{ calc.n }}"}, permissions="$full"),
            op("mod", "script", code="export default async function (data) { return data.call.doubled + 1 }"),
        ]})
        assert r.status == 201, r
        flow_id = r.data["id"]
        r = await admin.post(f"/api/flows/trigger/{flow_id}", json={"n": 4})
        assert r.status == 200 and r.data == 11, r
        runs = (await admin.get(f"/api/flows/{flow_id}/runs")).data
        steps = runs[0]["steps"] if runs else []
        if steps:
            assert steps[0]["output"] == {"n": 5, "user": True} and steps[1]["output"] == {"doubled": 10, "orders": 1}
        r = await admin.post("/api/flows", json={"name": "bad", "trigger": "webhook", "operations": [
            op("boom", "script", reject="caught", code="throw new Error('bad input')"),
            op("caught", "transform", json={"handled": "{{ boom.error }}"}),
        ]})
        r = await admin.post(f"/api/flows/trigger/{r.data['id']}", json={})
        assert r.data == {"handled": "bad input"}, r
        r = await admin.post("/api/flows", json={"name": "missing", "trigger": "webhook", "operations": [
            op("call", "function", name="nonesuch")]})
        r = await admin.post(f"/api/flows/trigger/{r.data['id']}", json={})
        assert r.code == "INVALID_PAYLOAD" and "not found" in r.json["errors"][0]["message"].lower(), r


async def test_mcp_function_tools(booted) -> None:
    async with booted() as (admin, services, _):
        tools = {t.name: t for _, entries in services.plugins.collect("workeros_register_mcp_tools") for t in entries}
        assert tools["functions_list"].read_only and not tools["functions_invoke"].read_only
        await make_function(admin, "greet", "export default async (req, ctx) => 'hi ' + req.body.name + ' ' + "
                            "(ctx.user ? ctx.user.id : 'nobody')", public=True)
        await make_function(admin, "private", "export default async () => 'secret'")
        root = ToolContext(Accountability(user="a1", role="admin", admin=True, origin="mcp"), services)
        user = ToolContext(Accountability(user="u1", role="editor", origin="mcp"), services)
        assert [f["name"] for f in await tools["functions_list"].handler(root, {})] == ["greet", "private"]
        assert await tools["functions_invoke"].handler(root, {"name": "greet", "body": {"name": "Ann"}}) == "hi Ann a1"
        assert await tools["functions_invoke"].handler(user, {"name": "greet", "body": {"name": "Bo"}}) == "hi Bo u1"
        with pytest.raises(NotFound):
            await tools["functions_invoke"].handler(user, {"name": "private"})


@asynccontextmanager
async def mcp_session(client, caller: str):
    """An initialized ``mcp.ClientSession`` (the SDK's own client, streamable
    HTTP on loopback) acting as the test caller ``caller``."""
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    async with create_mcp_http_client(headers={TEST_CALLER_HEADER: caller}) as http, \
            streamable_http_client(str(client.server.make_url("/mcp")), http_client=http) as (read, write), \
            ClientSession(read, write) as session:
        await session.initialize()
        yield session


async def test_mcp_function_tools_over_a_session(booted) -> None:
    async with booted() as (admin, _, client):
        await make_function(admin, "greet", "export default async (req, ctx) => 'hi ' + req.body.name + ' ' + "
                            "(ctx.user ? ctx.user.id : 'nobody') + ' ' + req.method", public=True)
        await make_function(admin, "private", "export default async () => 'secret'")
        await make_function(admin, "fails", "export default async () => { throw new Error('nope') }", public=True)
        async with mcp_session(client, "admin") as session:
            tools = {t.name: t for t in (await session.list_tools()).tools}
            assert tools["functions_list"].annotations.read_only_hint is True
            assert tools["functions_invoke"].annotations.read_only_hint is False
            listed = await session.call_tool("functions_list", {})
            assert not listed.is_error, listed
            rest = (await admin.get("/api/functions")).data
            assert listed.structured_content["data"] == rest
            assert [f["name"] for f in rest] == ["fails", "greet", "private"]
            got = await session.call_tool("functions_invoke", {"name": "greet", "body": {"name": "Ann"}})
            assert not got.is_error and got.structured_content["data"] == "hi Ann test-admin POST", got
            assert (await session.call_tool("functions_invoke", {"name": "private"})).structured_content["data"] \
                == "secret"
            failed = await session.call_tool("functions_invoke", {"name": "fails"})
            assert failed.is_error
            assert failed.structured_content["errors"][0]["extensions"]["code"] == "FUNCTION_ERROR", failed
        async with mcp_session(client, "role:editor:u1") as session:
            got = await session.call_tool("functions_invoke", {"name": "greet", "method": "put", "body": {"name": "Bo"}})
            assert not got.is_error and got.structured_content["data"] == "hi Bo u1 PUT", got
            for name, args, code in (("functions_invoke", {"name": "private"}, "NOT_FOUND"),
                                     ("functions_list", {}, "FORBIDDEN")):
                refused = await session.call_tool(name, args)
                assert refused.is_error, (name, refused)
                assert refused.structured_content["errors"][0]["extensions"]["code"] == code, (name, refused)
        logs = (await admin.get("/api/functions/greet/logs")).data
        assert sorted(entry["user"] for entry in logs) == ["test-admin", "u1"]
