"""The MCP storage tools: thin calls into the files service and the items
service with the caller's accountability."""

from __future__ import annotations

from typing import Any

from workeros.api import query_from_mapping
from workeros.hookspecs.mcp import McpTool, ToolContext

COLLECTION = "wos_files"

_QUERY = {
    "type": "object",
    "properties": {
        "filter": {"type": "object", "description": "Filter on file rows (the items filter language)"},
        "fields": {"type": "array", "items": {"type": "string"}},
        "sort": {"type": "array", "items": {"type": "string"}},
        "limit": {"type": "integer", "minimum": -1},
        "offset": {"type": "integer", "minimum": 0},
        "search": {"type": "string"},
    },
    "additionalProperties": False,
}
_ID = {"type": "string", "description": "The file's id (a uuid)"}
_GET = {"type": "object", "properties": {"id": _ID, "fields": {"type": "array", "items": {"type": "string"}}},
        "required": ["id"], "additionalProperties": False}
_IMPORT = {"type": "object", "properties": {
    "url": {"type": "string", "description": "An http(s) URL of the file to fetch"},
    "title": {"type": "string"}, "folder": {"type": "string"}},
    "required": ["url"], "additionalProperties": False}
_UPDATE = {"type": "object", "properties": {
    "id": _ID, "title": {"type": ["string", "null"]}, "folder": {"type": ["string", "null"]},
    "filename_download": {"type": "string"}}, "required": ["id"], "additionalProperties": False}
_DELETE = {"type": "object", "properties": {"id": _ID}, "required": ["id"], "additionalProperties": False}


async def _list(ctx: ToolContext, args: dict[str, Any]) -> Any:
    rows, _ = await ctx.services.items.query(ctx.accountability, COLLECTION, query_from_mapping(args))
    return rows


async def _get(ctx: ToolContext, args: dict[str, Any]) -> Any:
    query = query_from_mapping({"fields": args["fields"]}) if args.get("fields") else None
    return await ctx.services.items.get(ctx.accountability, COLLECTION, args["id"], query)


async def _import(ctx: ToolContext, args: dict[str, Any]) -> Any:
    data = {k: args[k] for k in ("title", "folder") if k in args}
    return await ctx.services.get("files").import_url(ctx.accountability, args["url"], data)


async def _update(ctx: ToolContext, args: dict[str, Any]) -> Any:
    data = {k: v for k, v in args.items() if k != "id"}
    return await ctx.services.get("files").update(ctx.accountability, args["id"], data)


async def _delete(ctx: ToolContext, args: dict[str, Any]) -> Any:
    await ctx.services.get("files").delete(ctx.accountability, [args["id"]])
    return {"deleted": args["id"]}


def tools() -> list[McpTool]:
    return [
        McpTool("storage_list", "List files (their rows: id, title, type, filesize, width, height…) the caller may "
                "read; the bytes are at /api/assets/{id}", _QUERY, _list, read_only=True, idempotent=True,
                group="storage"),
        McpTool("storage_get", "One file's row by id", _GET, _get, read_only=True, idempotent=True, group="storage"),
        McpTool("storage_import_url", "Fetch a file from a public http(s) URL and store it as a new file", _IMPORT,
                _import, group="storage"),
        McpTool("storage_update", "Change a file's title, folder or download name", _UPDATE, _update,
                idempotent=True, group="storage"),
        McpTool("storage_delete", "Delete a file and its bytes", _DELETE, _delete, destructive=True,
                idempotent=True, group="storage"),
    ]
