"""MCP for workeros (DESIGN §6 "MCP"): ``POST /mcp`` for any API key or access
token and ``POST /api/admin/mcp`` for admins — streamable HTTP, stateless,
JSON responses — and ``GET /api/mcp/tools``, the catalog with the caller's (or,
for an admin, any key's) effective view under its guards.

Tools come from every plugin's ``workeros_register_mcp_tools``; this plugin
contributes the kernel's: schema, collections (items), permissions, API keys.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from workeros.api import (
    SERVICES,
    Accountability,
    InvalidCredentials,
    accountability,
    ok,
    services,
)
from workeros.hookspecs import hookimpl
from workeros.hookspecs.lifecycle import Command
from workeros.hookspecs.mcp import McpTool
from workeros.hookspecs.transport import Transport

from . import bridge, server
from .catalog import Catalog
from .tools import tools


async def list_tools(request: web.Request) -> web.Response:
    """``GET /api/mcp/tools[?key=<api key id>]``: every tool, with ``listed``,
    ``callable`` and ``refused_by`` for the caller's key — or, for an admin,
    for the key named (the admin app's view of a key's guards)."""
    acc = accountability(request)
    if acc.is_anonymous:
        raise InvalidCredentials("Send Authorization: Bearer with an API key (pak_…) or an access token")
    key_id = request.query.get("key")
    if key_id:
        key = await services(request).accounts.get_api_key(acc, key_id)  # 403/404 as GET /api/api-keys/{id}
        tools_ = key.get("mcp_tools")
        acc = Accountability(user=key.get("user"), role=None, api_key=key["id"],
                             mcp_read_only=bool(key.get("mcp_read_only")),
                             mcp_tools=tuple(tools_) if tools_ is not None else None)
    return ok(request.app[server.CATALOG].view(acc))


def build_tools(root: web.Application) -> web.Application:
    app = web.Application()
    app.router.add_get("/tools", list_tools)

    async def start(sub: web.Application) -> None:
        sub[server.CATALOG] = Catalog.of(root[SERVICES])

    app.on_startup.append(start)
    return app


@hookimpl
def workeros_register_transports() -> list[Transport]:
    return [
        Transport(name="mcp", prefix="/mcp", factory=lambda root: server.build(root, admin_only=False),
                  description="MCP (streamable HTTP, stateless) for any API key or access token"),
        Transport(name="mcp-admin", prefix="/api/admin/mcp",
                  factory=lambda root: server.build(root, admin_only=True),
                  description="MCP for admins"),
        Transport(name="mcp-tools", prefix="/api/mcp", factory=build_tools,
                  description="The MCP tool catalog with each key's effective view"),
    ]


@hookimpl
def workeros_register_commands() -> list[Command]:
    return [bridge.COMMAND]


@hookimpl
def workeros_register_mcp_tools() -> list[McpTool]:
    return tools()


__all__: list[Any] = ["Catalog", "list_tools"]
