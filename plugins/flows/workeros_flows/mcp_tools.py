"""The seven MCP flow tools (DESIGN §6 "MCP"): thin calls into the flows
service with the caller's accountability, the same rules as the REST API
(flows are an admin's business: anyone else gets ``FORBIDDEN``)."""

from __future__ import annotations

from typing import Any

from workeros.hookspecs.mcp import McpTool, ToolContext

from .service import FlowsService

ID = {"type": "string", "description": "The flow's id (a UUID)"}
FLOW_PROPERTIES = {
    "name": {"type": "string"},
    "description": {"type": ["string", "null"]},
    "status": {"type": "string", "enum": ["active", "inactive"]},
    "trigger": {"type": "string", "enum": ["event", "schedule", "webhook", "manual"]},
    "options": {"type": "object", "description": "event: {events, collections, blocking}; schedule: {cron}"},
    "operations": {"type": "array", "items": {"type": "object", "properties": {
        "key": {"type": "string"}, "type": {"type": "string"}, "options": {"type": "object"},
        "resolve": {"type": ["string", "null"]}, "reject": {"type": ["string", "null"]}},
        "required": ["key", "type"]}},
    "start": {"type": ["string", "null"]},
}


def _flows(ctx: ToolContext) -> FlowsService:
    return ctx.services.get("flows")


async def flows_list(ctx: ToolContext, args: dict[str, Any]) -> Any:
    return await _flows(ctx).list(ctx.accountability)


async def flows_get(ctx: ToolContext, args: dict[str, Any]) -> Any:
    return await _flows(ctx).get(ctx.accountability, args["id"])


async def flows_create(ctx: ToolContext, args: dict[str, Any]) -> Any:
    return await _flows(ctx).create(ctx.accountability, args)


async def flows_update(ctx: ToolContext, args: dict[str, Any]) -> Any:
    return await _flows(ctx).update(ctx.accountability, args["id"], args.get("data") or {})


async def flows_delete(ctx: ToolContext, args: dict[str, Any]) -> Any:
    await _flows(ctx).delete(ctx.accountability, args["id"])
    return {"deleted": args["id"]}


async def flows_run(ctx: ToolContext, args: dict[str, Any]) -> Any:
    return await _flows(ctx).run_now(ctx.accountability, args["id"], args.get("payload"))


async def flows_runs(ctx: ToolContext, args: dict[str, Any]) -> Any:
    return await _flows(ctx).runs(ctx.accountability, args["id"], limit=int(args.get("limit") or 20),
                                  offset=int(args.get("offset") or 0), status=args.get("status"))


def tools() -> list[McpTool]:
    return [
        McpTool("flows_list", "List every flow with its trigger, options and operations.",
                {"type": "object", "properties": {}, "additionalProperties": False},
                flows_list, read_only=True, idempotent=True, group="flows", title="List flows"),
        McpTool("flows_get", "Get one flow by id.",
                {"type": "object", "properties": {"id": ID}, "required": ["id"], "additionalProperties": False},
                flows_get, read_only=True, idempotent=True, group="flows", title="Get a flow"),
        McpTool("flows_create", "Create a flow: {name, trigger, options, operations, start, status}.",
                {"type": "object", "properties": FLOW_PROPERTIES, "required": ["name", "trigger"],
                 "additionalProperties": False},
                flows_create, group="flows", title="Create a flow"),
        McpTool("flows_update", "Change fields of a flow (data holds the fields to change).",
                {"type": "object", "properties": {"id": ID, "data": {"type": "object", "properties": FLOW_PROPERTIES,
                                                                     "additionalProperties": False}},
                 "required": ["id", "data"], "additionalProperties": False},
                flows_update, idempotent=True, group="flows", title="Update a flow"),
        McpTool("flows_delete", "Delete a flow and its run history.",
                {"type": "object", "properties": {"id": ID}, "required": ["id"], "additionalProperties": False},
                flows_delete, destructive=True, idempotent=True, group="flows", title="Delete a flow"),
        McpTool("flows_run", "Run a flow now with an optional payload ($trigger.payload); returns the run with "
                "every step.",
                {"type": "object", "properties": {"id": ID, "payload": {}}, "required": ["id"],
                 "additionalProperties": False},
                flows_run, group="flows", title="Run a flow"),
        McpTool("flows_runs", "List a flow's recent runs, newest first, each with its steps.",
                {"type": "object", "properties": {"id": ID, "limit": {"type": "integer", "minimum": 1,
                                                                      "maximum": 1000},
                                                  "offset": {"type": "integer", "minimum": 0},
                                                  "status": {"type": "string",
                                                             "enum": ["resolve", "reject", "error"]}},
                 "required": ["id"], "additionalProperties": False},
                flows_runs, read_only=True, idempotent=True, group="flows", title="List flow runs"),
    ]
