"""Flows (DESIGN §6 "Flows"): automations of operations started by an event,
a schedule, a webhook or a manual call, with every run recorded.

``GET/POST/PATCH/DELETE /api/flows`` (admin), ``GET /api/flows/{id}/runs``,
``POST /api/flows/trigger/{id}``; MCP tools ``flows_*``. See ``docs/flows.md``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import web

from workeros.api import (
    SERVICES,
    Field,
    accountability,
    add_admin_resource,
    ok,
    parse_page,
    read_json,
    services,
)
from workeros.hookspecs import hookimpl
from workeros.hookspecs.admin import AdminPage
from workeros.hookspecs.data import ExportSection, SystemCollection
from workeros.hookspecs.lifecycle import ConfigKey, Migrations, ServiceEntry
from workeros.hookspecs.transport import Transport

from .mcp_tools import tools
from .service import FlowsService, Scheduler
from .tables import flows as flows_table

__all__ = ["FlowsService", "Scheduler"]

SCHEDULER: web.AppKey[Scheduler] = web.AppKey("workeros_flows.scheduler", Scheduler)

CONFIG_KEYS = [
    ConfigKey("flows.max_depth", "int", 5,
              "How deep flows may start flows (through their item writes or trigger steps) before a run is "
              "stopped as a loop"),
    ConfigKey("flows.max_output_bytes", "int", 16384,
              "Largest step output kept in a run's record (larger outputs are kept as a truncated preview)"),
    ConfigKey("flows.max_sleep_ms", "float", 60000.0, "Longest pause a sleep operation may take"),
    ConfigKey("flows.run_retention_days", "float", 30.0, "Days flow runs are kept (0 keeps them forever)"),
    ConfigKey("flows.cache_seconds", "float", 5.0,
              "Longest time an instance uses its list of active flows before reading it again (changes made "
              "through the API reach every instance at once over the event bus)"),
    ConfigKey("flows.schedule", "bool", True, "Run schedule flows in this instance"),
    ConfigKey("flows.env", "dict", {}, "Values flows may read as $env.<name> (never secrets you would not log)"),
]


def _service(request: web.Request) -> FlowsService:
    return services(request).get("flows")


async def list_runs(request: web.Request) -> web.Response:
    limit, offset = parse_page(request.query)
    return ok(await _service(request).runs(accountability(request), request.match_info["id"], limit=limit,
                                           offset=offset, status=request.query.get("status")))


async def trigger_flow(request: web.Request) -> web.Response:
    payload = None
    if request.method not in ("GET", "HEAD") and request.can_read_body and (await request.read()).strip():
        payload = await read_json(request)
    data = await _service(request).trigger(accountability(request), request.match_info["id"], payload=payload,
                                           query=request.query, method=request.method)
    return ok(data)


def build(root: web.Application) -> web.Application:
    app = web.Application()
    add_admin_resource(app, "flows")
    app.router.add_post("/trigger/{id}", trigger_flow)
    app.router.add_get("/trigger/{id}", trigger_flow)
    app.router.add_get("/{id}/runs", list_runs)
    return app


@hookimpl
def workeros_register_admin_pages() -> list[AdminPage]:
    return [AdminPage("flows", "nav.flows", str(Path(__file__).parent / "admin" / "flows.js"),
                      icon="flow", order=50, admin_only=True)]


@hookimpl
def workeros_register_config_keys() -> list[ConfigKey]:
    return CONFIG_KEYS


@hookimpl
def workeros_register_export_sections() -> list[ExportSection]:
    """Full exports carry the flows plugin's rows."""
    return [ExportSection("flows", tables=[flows_table])]


@hookimpl
def workeros_register_migrations() -> list[Migrations]:
    return [Migrations("flows", str(Path(__file__).parent / "migrations"))]


@hookimpl
def workeros_register_system_collections() -> list[SystemCollection]:
    return [SystemCollection("wos_flows", note="Automations", fields=[
        Field("id", "uuid", primary_key=True, nullable=False),
        Field("name", "string", nullable=False),
        Field("description", "text"),
        Field("status", "string", nullable=False, options={"length": 16}),
        Field("trigger", "string", nullable=False, options={"length": 16}),
        Field("options", "json", nullable=False),
        Field("operations", "json", nullable=False),
        Field("start", "string", options={"length": 64}),
        Field("created_at", "datetime", nullable=False),
        Field("updated_at", "datetime", nullable=False),
    ])]


@hookimpl
def workeros_register_services() -> list[ServiceEntry]:
    return [ServiceEntry("flows", FlowsService.open)]


@hookimpl
def workeros_register_transports() -> list[Transport]:
    return [Transport(name="flows", prefix="/api/flows", factory=build,
                      description="Flows, their runs, and webhook/manual triggers")]


@hookimpl
def workeros_register_mcp_tools() -> list[Any]:
    return tools()


@hookimpl
def workeros_cleanup_contexts(app: web.Application) -> list[Any]:
    async def scheduler(app: web.Application) -> AsyncIterator[None]:
        svc = app[SERVICES]
        service = svc.get("flows")
        running = None
        if service is not None and svc.settings["flows.schedule"]:
            running = Scheduler(service)
            running.start()
            app[SCHEDULER] = running
        yield
        if running is not None:
            await running.stop()

    return [scheduler]


# -- event triggers ------------------------------------------------------------------------

def _flows(holder: Any) -> FlowsService | None:
    return holder.services.get("flows")


def _before_items(mutation: Any) -> Any:
    service = _flows(mutation)
    return service.before_items(mutation) if service is not None else None


def _after_items(mutation: Any) -> Any:
    service = _flows(mutation)
    return service.after_items(mutation) if service is not None else None


def _before_auth(event: Any) -> Any:
    service = _flows(event)
    return service.before_auth(event) if service is not None else None


def _after_auth(event: Any) -> Any:
    service = _flows(event)
    return service.after_auth(event) if service is not None else None


@hookimpl
def workeros_items_before_create(mutation: Any) -> Any:
    return _before_items(mutation)


@hookimpl
def workeros_items_before_update(mutation: Any) -> Any:
    return _before_items(mutation)


@hookimpl
def workeros_items_before_delete(mutation: Any) -> Any:
    return _before_items(mutation)


@hookimpl
def workeros_items_after_create(mutation: Any) -> Any:
    return _after_items(mutation)


@hookimpl
def workeros_items_after_update(mutation: Any) -> Any:
    return _after_items(mutation)


@hookimpl
def workeros_items_after_delete(mutation: Any) -> Any:
    return _after_items(mutation)


@hookimpl
def workeros_auth_before_login(event: Any) -> Any:
    return _before_auth(event)


@hookimpl
def workeros_auth_before_signup(event: Any) -> Any:
    return _before_auth(event)


@hookimpl
def workeros_auth_before_logout(event: Any) -> Any:
    return _before_auth(event)


@hookimpl
def workeros_auth_before_password_reset(event: Any) -> Any:
    return _before_auth(event)


@hookimpl
def workeros_auth_after_login(event: Any) -> Any:
    return _after_auth(event)


@hookimpl
def workeros_auth_after_signup(event: Any) -> Any:
    return _after_auth(event)


@hookimpl
def workeros_auth_after_logout(event: Any) -> Any:
    return _after_auth(event)


@hookimpl
def workeros_auth_after_password_reset(event: Any) -> Any:
    return _after_auth(event)
