"""The flow ``script`` and ``function`` operations run in the sandbox, and the
two MCP function tools, on both dialects."""

from __future__ import annotations

import pytest
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
