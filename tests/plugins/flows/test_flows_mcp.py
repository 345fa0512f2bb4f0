"""The seven MCP flow tools, called through the MCP tool hook as the MCP
transport would (it is not installed yet), with the caller's accountability."""

from __future__ import annotations

import pytest

from workeros.api import Accountability, Forbidden, InvalidPayload
from workeros.hookspecs.mcp import ToolContext
from workeros.http.keys import SERVICES

NAMES = ["flows_create", "flows_delete", "flows_get", "flows_list", "flows_run", "flows_runs", "flows_update"]


def catalog(services) -> dict:
    return {t.name: t for _, entries in services.plugins.collect("workeros_register_mcp_tools") for t in entries}


async def test_flow_tools(api) -> None:
    services = api.server.app[SERVICES]
    tools = catalog(services)
    assert sorted(n for n in tools if n.startswith("flows_")) == NAMES
    assert {n for n in NAMES if tools[n].read_only} == {"flows_list", "flows_get", "flows_runs"}
    assert tools["flows_delete"].destructive and all(t.group == "flows" for n, t in tools.items() if n in NAMES)
    admin = ToolContext(Accountability(user="a1", role="admin", admin=True, origin="mcp"), services)
    editor = ToolContext(Accountability(user="u1", role="editor", origin="mcp"), services)

    async def call(ctx, name, args):
        return await tools[name].handler(ctx, args)

    created = await call(admin, "flows_create", {"name": "echo", "trigger": "manual", "operations": [
        {"key": "echo", "type": "transform", "options": {"json": {"got": "{{ $trigger.payload.v }}"}}}]})
    assert created["start"] == "echo"
    assert [f["id"] for f in await call(admin, "flows_list", {})] == [created["id"]]
    assert (await call(admin, "flows_get", {"id": created["id"]}))["name"] == "echo"
    updated = await call(admin, "flows_update", {"id": created["id"], "data": {"name": "echo 2"}})
    assert updated["name"] == "echo 2"
    run = await call(admin, "flows_run", {"id": created["id"], "payload": {"v": 5}})
    assert run["status"] == "resolve" and run["data"] == {"got": 5} and run["steps"][0]["key"] == "echo"
    runs = await call(admin, "flows_runs", {"id": created["id"]})
    assert [r["id"] for r in runs] == [run["id"]]
    with pytest.raises(InvalidPayload):
        await call(admin, "flows_create", {"name": "bad", "trigger": "never"})
    for name, args in (("flows_list", {}), ("flows_get", {"id": created["id"]}),
                       ("flows_create", {"name": "x", "trigger": "manual"}),
                       ("flows_update", {"id": created["id"], "data": {"name": "y"}}),
                       ("flows_delete", {"id": created["id"]}), ("flows_run", {"id": created["id"]}),
                       ("flows_runs", {"id": created["id"]})):
        with pytest.raises(Forbidden):
            await call(editor, name, args)
    assert (await call(admin, "flows_get", {"id": created["id"]}))["name"] == "echo 2"  # nothing changed
    assert await call(admin, "flows_delete", {"id": created["id"]}) == {"deleted": created["id"]}
    assert await call(admin, "flows_list", {}) == []
