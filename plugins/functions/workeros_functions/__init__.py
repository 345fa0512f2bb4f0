"""Functions (DESIGN §6 "Functions"): JavaScript modules run in a sandbox with a
host bridge that carries the caller's own permissions.

``GET/POST /api/functions``, ``GET/PATCH/DELETE /api/functions/{name}`` (admin),
``GET /api/functions/{name}/versions``, ``GET /api/functions/{name}/logs``
(admin), any method on ``/api/functions/{name}/run``; MCP tools
``functions_list`` and ``functions_invoke``. See ``docs/functions.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from workeros.api import (
    Field,
    InvalidPayload,
    PayloadTooLarge,
    accountability,
    add_admin_resource,
    ok,
    parse_page,
    services,
)
from workeros.hookspecs import hookimpl
from workeros.hookspecs.admin import AdminPage
from workeros.hookspecs.data import ExportSection, SystemCollection
from workeros.hookspecs.lifecycle import ConfigKey, Migrations, ServiceEntry
from workeros.hookspecs.transport import Transport

from .mcp_tools import tools
from .service import FunctionsService
from .tables import functions as functions_table
from .tables import versions as versions_table

__all__ = ["FunctionsService"]

CONFIG_KEYS = [
    ConfigKey("functions.env", "dict", {},
              "Values functions read as ctx.env (only these; never the server's environment)"),
    ConfigKey("functions.max_timeout_ms", "int", 60000, "Largest time budget a function may be given"),
    ConfigKey("functions.max_memory_mb", "int", 512, "Largest memory budget a function may be given"),
    ConfigKey("functions.max_code_bytes", "int", 1024 * 1024, "Largest function source accepted"),
    ConfigKey("functions.max_log_lines", "int", 100, "ctx.log lines kept per invocation"),
    ConfigKey("functions.max_log_bytes", "int", 16384, "ctx.log bytes kept per invocation"),
    ConfigKey("functions.max_fetch_bytes", "int", 5 * 1024 * 1024, "Largest response body ctx.fetch reads"),
    ConfigKey("functions.log_retention_days", "float", 14.0, "Days invocation logs are kept (0 keeps them)"),
]

HEADERS_DROPPED = ("authorization", "cookie", "x-workeros-test-caller")


def _service(request: web.Request) -> FunctionsService:
    return services(request).get("functions")


async def list_versions(request: web.Request) -> web.Response:
    return ok(await _service(request).versions(accountability(request), request.match_info["name"]))


async def list_logs(request: web.Request) -> web.Response:
    limit, offset = parse_page(request.query)
    return ok(await _service(request).logs(accountability(request), request.match_info["name"], limit=limit,
                                           offset=offset, status=request.query.get("status")))


async def run_function(request: web.Request) -> web.Response:
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge() from None
    body: Any = None
    if raw:
        if request.content_type == "application/json" or request.content_type.endswith("+json"):
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                raise InvalidPayload("Request body is not valid JSON") from None
        else:
            body = raw.decode("utf-8", "replace")
    req = {"method": request.method, "query": dict(request.query),
           "headers": {k.lower(): v for k, v in request.headers.items() if k.lower() not in HEADERS_DROPPED},
           "body": body}
    return ok(await _service(request).invoke(accountability(request), request.match_info["name"], req))


def build(root: web.Application) -> web.Application:
    app = web.Application()
    add_admin_resource(app, "functions", key="name")
    app.router.add_route("*", "/{name}/run", run_function)
    app.router.add_get("/{name}/versions", list_versions)
    app.router.add_get("/{name}/logs", list_logs)
    return app


@hookimpl
def workeros_register_config_keys() -> list[ConfigKey]:
    return CONFIG_KEYS


@hookimpl
def workeros_register_export_sections() -> list[ExportSection]:
    """Full exports carry the functions plugin's rows."""
    return [ExportSection("functions", tables=[functions_table, versions_table])]


@hookimpl
def workeros_register_migrations() -> list[Migrations]:
    return [Migrations("functions", str(Path(__file__).parent / "migrations"))]


@hookimpl
def workeros_register_system_collections() -> list[SystemCollection]:
    return [SystemCollection("wos_functions", note="JavaScript functions", fields=[
        Field("id", "uuid", primary_key=True, nullable=False),
        Field("name", "string", nullable=False, options={"length": 64}),
        Field("description", "text"),
        Field("public", "boolean", nullable=False),
        Field("version", "integer", nullable=False),
        Field("created_at", "datetime", nullable=False),
        Field("updated_at", "datetime", nullable=False),
    ])]


@hookimpl
def workeros_register_services() -> list[ServiceEntry]:
    return [ServiceEntry("functions", FunctionsService.open)]


@hookimpl
def workeros_register_transports() -> list[Transport]:
    return [Transport(name="functions", prefix="/api/functions", factory=build,
                      description="Functions: definitions, versions, logs and /run")]


@hookimpl
def workeros_register_mcp_tools() -> list[Any]:
    return tools()


@hookimpl
def workeros_register_admin_pages() -> list[AdminPage]:
    return [AdminPage("functions", "nav.functions", str(Path(__file__).parent / "admin" / "functions.js"),
                      icon="code", order=55, admin_only=True)]
