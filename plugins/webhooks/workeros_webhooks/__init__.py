"""Signed outbound webhooks (DESIGN §6 "Webhooks").

``GET/POST/PATCH/DELETE /api/webhooks`` (admin), ``GET
/api/webhooks/{id}/deliveries``. Each matching item or auth event is written
to a durable outbox in the change's own transaction and delivered after the
commit by the dispatcher, signed with HMAC-SHA256. See ``docs/webhooks.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import web

from workeros.api import SERVICES, Field, accountability, add_admin_resource, ok, parse_page, services
from workeros.hookspecs import hookimpl
from workeros.hookspecs.admin import AdminPage
from workeros.hookspecs.data import ExportSection, SystemCollection
from workeros.hookspecs.lifecycle import Command, CommandContext, ConfigKey, Migrations, ServiceEntry
from workeros.hookspecs.transport import Transport

from .dispatcher import Dispatcher, signature
from .service import AUTH_EVENTS, EVENTS, ITEM_EVENTS, WebhooksService
from .tables import webhooks as webhooks_table

__all__ = ["AUTH_EVENTS", "EVENTS", "ITEM_EVENTS", "Dispatcher", "WebhooksService", "signature"]

DISPATCHER: web.AppKey[Dispatcher] = web.AppKey("workeros_webhooks.dispatcher", Dispatcher)

CONFIG_KEYS = [
    ConfigKey("webhooks.retry_base_seconds", "float", 2.0,
              "Seconds before the first retry of a failed delivery; each retry waits twice as long (with jitter)"),
    ConfigKey("webhooks.max_attempts", "int", 6, "Attempts per delivery in all, the first included"),
    ConfigKey("webhooks.timeout", "float", 10.0, "Seconds a receiver has to answer one delivery"),
    ConfigKey("webhooks.poll_seconds", "float", 1.0,
              "How often the dispatcher looks for due deliveries queued elsewhere (local commits wake it at once)"),
    ConfigKey("webhooks.concurrency", "int", 16, "Deliveries one instance sends at the same time"),
    ConfigKey("webhooks.claim_seconds", "float", 60.0,
              "How long a claimed delivery stays leased to an instance; after that, another instance may send it "
              "again (an instance that died mid-send). Keep it above webhooks.timeout"),
    ConfigKey("webhooks.log_retention_days", "float", 30.0,
              "Days finished deliveries and their attempts are kept (0 keeps them forever)"),
    ConfigKey("webhooks.cache_seconds", "float", 5.0,
              "Seconds an instance keeps its list of active webhooks at most; a change here or on another "
              "instance (through the event bus) drops it at once. 0 reads the list in every write's transaction"),
    ConfigKey("webhooks.dispatch", "bool", True,
              "Run the dispatcher in this instance (turn off on instances that should only queue: they announce "
              "queued deliveries on the event bus to `workeros dispatcher` or other instances)"),
]


def _service(request: web.Request) -> WebhooksService:
    return services(request).get("webhooks")


async def list_deliveries(request: web.Request) -> web.Response:
    limit, offset = parse_page(request.query, default=100)
    return ok(await _service(request).deliveries(accountability(request), request.match_info["id"], limit=limit,
                                                 offset=offset, status=request.query.get("status")))


def build(root: web.Application) -> web.Application:
    app = web.Application()
    add_admin_resource(app, "webhooks")
    app.router.add_get("/{id}/deliveries", list_deliveries)
    return app


@hookimpl
def workeros_register_config_keys() -> list[ConfigKey]:
    return CONFIG_KEYS


def _configure_dispatcher(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database-url", dest="database_url", help="database URL (default: SQLite in the data dir)")


async def _dispatcher(args: argparse.Namespace, ctx: CommandContext) -> int:
    """Send deliveries from this process until SIGTERM or SIGINT (then finish
    the sends in flight, as a server does)."""
    from workeros.api import open_services, prepare

    settings = ctx.settings.with_overrides(database__url=args.database_url)
    plugins, registry = prepare(settings, ctx.plugins)
    async with open_services(settings, plugins, registry) as svc:
        service = svc.get("webhooks")
        if service is None:
            print("the webhooks service is not enabled")
            return 1
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        running = Dispatcher(service)
        running.start()
        print(f"sending webhook deliveries as {running.instance} (stop with SIGTERM or Ctrl-C)", flush=True)
        try:
            await stop.wait()
        finally:
            await running.stop()
    return 0


@hookimpl
def workeros_register_commands() -> list[Command]:
    return [Command("dispatcher", "Send queued webhook deliveries from a process of its own (beside instances "
                    "that run with webhooks.dispatch off)", run=_dispatcher, configure=_configure_dispatcher)]


@hookimpl
def workeros_register_export_sections() -> list[ExportSection]:
    """Full exports carry the webhooks plugin's rows."""
    return [ExportSection("webhooks", tables=[webhooks_table])]


@hookimpl
def workeros_register_migrations() -> list[Migrations]:
    return [Migrations("webhooks", str(Path(__file__).parent / "migrations"))]


@hookimpl
def workeros_register_system_collections() -> list[SystemCollection]:
    return [SystemCollection("wos_webhooks", note="Outbound webhooks", fields=[
        Field("id", "uuid", primary_key=True, nullable=False),
        Field("name", "string", nullable=False),
        Field("url", "string", nullable=False, options={"length": 2048}),
        Field("events", "json", nullable=False),
        Field("collections", "json"),
        Field("headers", "json"),
        Field("active", "boolean", nullable=False),
        Field("created_at", "datetime", nullable=False),
        Field("updated_at", "datetime", nullable=False),
    ])]


@hookimpl
def workeros_register_services() -> list[ServiceEntry]:
    return [ServiceEntry("webhooks", WebhooksService.open)]


@hookimpl
def workeros_register_admin_pages() -> list[AdminPage]:
    return [AdminPage("webhooks", "nav.webhooks", str(Path(__file__).parent / "admin" / "webhooks.js"),
                      icon="send", order=60, admin_only=True)]


@hookimpl
def workeros_register_transports() -> list[Transport]:
    return [Transport(name="webhooks", prefix="/api/webhooks", factory=build,
                      description="Webhook definitions and their delivery log")]


@hookimpl
def workeros_cleanup_contexts(app: web.Application) -> list[Any]:
    async def dispatcher(app: web.Application) -> AsyncIterator[None]:
        svc = app[SERVICES]
        service = svc.get("webhooks")
        running = None
        if service is not None and svc.settings["webhooks.dispatch"]:
            running = Dispatcher(service)
            running.start()
            app[DISPATCHER] = running
        yield
        if running is not None:
            await running.stop()

    return [dispatcher]


# -- the outbox: rows written in the change's own transaction ----------------------------

@hookimpl
async def workeros_items_committing(mutation: Any) -> None:
    service = mutation.services.get("webhooks")
    if service is not None and mutation.keys:
        await service.enqueue_items(mutation)


async def _auth(event: Any) -> None:
    service = event.services.get("webhooks")
    if service is not None:
        await service.enqueue_auth(event)


@hookimpl(trylast=True)
def workeros_auth_before_login(event: Any) -> Any:
    return _auth(event)


@hookimpl(trylast=True)
def workeros_auth_before_signup(event: Any) -> Any:
    return _auth(event)


@hookimpl(trylast=True)
def workeros_auth_before_logout(event: Any) -> Any:
    return _auth(event)


@hookimpl(trylast=True)
def workeros_auth_before_password_reset(event: Any) -> Any:
    return _auth(event)
