"""MCP tools: what an AI agent connected over the Model Context Protocol may call.

Every plugin contributes its own tools (schema, items, storage, flows…); the MCP
transport lists them, validates each call's arguments against the tool's JSON
Schema, applies the API key's guards (``mcp_read_only``, ``mcp_tools``), and
calls the handler with the caller's accountability. A handler is a thin call
into the same services REST uses: the permissions decide what it may do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import hookspec

if TYPE_CHECKING:
    from workeros.accountability import Accountability
    from workeros.services import Services


@dataclass(frozen=True)
class ToolContext:
    """What a tool handler receives besides its arguments."""

    accountability: Accountability
    services: Services


@dataclass(frozen=True)
class McpTool:
    """One MCP tool.

    ``name`` (``collections_list``), ``description`` (for the model),
    ``input_schema`` (a JSON Schema object; arguments are validated against it
    before the handler runs), ``handler(ctx, arguments)`` returning a JSON-ready
    value (may be awaitable) or raising a ``WorkerosError`` (sent back as a tool
    error with its code). The annotations are MCP's hints: ``read_only``
    (``readOnlyHint``, true exactly for tools that change nothing — the only
    tools a read-only key may call), ``destructive`` (``destructiveHint``),
    ``idempotent`` (``idempotentHint``). ``group`` names the catalog section
    (``schema``, ``collections``, ``storage``…).
    """

    name: str
    description: str
    input_schema: Mapping[str, Any]
    handler: Callable[[ToolContext, dict[str, Any]], Any]
    read_only: bool = False
    destructive: bool = False
    idempotent: bool = False
    group: str = ""
    title: str | None = None
    output_schema: Mapping[str, Any] | None = field(default=None)


@hookspec
def workeros_register_mcp_tools() -> Sequence[McpTool]:
    """Contribute MCP tools.

    Called once per boot by the MCP transport (when it is installed). Two tools
    with one name is a startup error naming both plugins. A tool whose plugin
    is not installed is simply absent from ``tools/list``.

    :return: tools. Not firstresult.

    .. versionadded:: 0.2

    Example::

        @hookimpl
        def workeros_register_mcp_tools():
            async def list_files(ctx, args):
                rows, _ = await ctx.services.items.query(ctx.accountability, "wos_files", Query(limit=args.get("limit")))
                return rows
            return [McpTool("storage_list", "List files", {"type": "object", "properties": {
                "limit": {"type": "integer"}}}, list_files, read_only=True, group="storage")]
    """
