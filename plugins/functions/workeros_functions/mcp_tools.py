"""The two MCP function tools (DESIGN §6 "MCP"): thin calls into the functions
service with the caller's accountability, the same rules as the REST API."""

from __future__ import annotations

from typing import Any

from workeros.hookspecs.mcp import McpTool, ToolContext

NAME = {"type": "string", "description": "The function's name"}


async def functions_list(ctx: ToolContext, args: dict[str, Any]) -> Any:
    return await ctx.services.get("functions").list(ctx.accountability)


async def functions_invoke(ctx: ToolContext, args: dict[str, Any]) -> Any:
    req = {"method": str(args.get("method") or "POST").upper(), "query": dict(args.get("query") or {}),
           "headers": {}, "body": args.get("body")}
    return await ctx.services.get("functions").invoke(ctx.accountability, args["name"], req)


def tools() -> list[McpTool]:
    return [
        McpTool("functions_list", "List every function with its settings and code (admins).",
                {"type": "object", "properties": {}, "additionalProperties": False},
                functions_list, read_only=True, idempotent=True, group="functions", title="List functions"),
        McpTool("functions_invoke", "Run a function with a request {method, query, body}; returns its value. "
                "The function acts with the caller's permissions.",
                {"type": "object", "properties": {"name": NAME, "method": {"type": "string"},
                                                  "query": {"type": "object"}, "body": {}},
                 "required": ["name"], "additionalProperties": False},
                functions_invoke, group="functions", title="Invoke a function"),
    ]
