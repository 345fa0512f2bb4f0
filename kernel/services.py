"""The service container: every way in (REST, GraphQL, MCP, functions, flows,
realtime) reaches data through these objects, with an ``Accountability``.

``open_services`` works with or without aiohttp: the server opens it in its
cleanup context, CLI commands (migrate, export, import) open it directly.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workeros.accountability import Accountability
from workeros.background import Background
from workeros.bus.events import Events
from workeros.config import Settings
from workeros.db.database import Database
from workeros.errors import StartupError
from workeros.outbound import Outbound
from workeros.plugins import Plugins, await_me_maybe
from workeros.registry import Registry
from workeros.schema.field_types import register_type

if TYPE_CHECKING:
    from workeros.accounts.accounts_service import AccountsService
    from workeros.audit.revisions import RevisionsService
    from workeros.hookspecs.data import SystemCollection
    from workeros.hookspecs.email import Mailer
    from workeros.hookspecs.sandbox import Sandbox
    from workeros.hookspecs.storage import Storage
    from workeros.hookspecs.vectors import Embedder, VectorStore
    from workeros.items.items_service import ItemsService
    from workeros.permissions.permissions_service import PermissionsService
    from workeros.realtime.hub import RealtimeHub
    from workeros.schema.schema_service import SchemaService

log = logging.getLogger("workeros.services")

#: Kernel services as (attribute on Services, "module:Class"), opened in this
#: order (each may use those before it) and closed in reverse. A class has
#: ``config_keys`` (a sequence of ConfigKey) and ``async open(services)``
#: returning the instance, which may define ``async close()``.
KERNEL_SERVICES: tuple[tuple[str, str], ...] = (
    ("schema", "workeros.schema.schema_service:SchemaService"),
    ("permissions", "workeros.permissions:PermissionsService"),
    ("accounts", "workeros.accounts.accounts_service:AccountsService"),
    ("items", "workeros.items.items_service:ItemsService"),
    ("revisions", "workeros.audit.revisions:RevisionsService"),
    ("realtime", "workeros.realtime.hub:RealtimeHub"),
)


def service_class(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass
class Services:
    """Everything a way in needs, opened once per app. Kernel services are
    ``None`` only while :func:`open_services` is still opening them (or where a
    plugin providing one is not installed: ``mailer``, ``storage``, ``sandbox``,
    ``vectors``, ``embedder``)."""

    settings: Settings
    plugins: Plugins
    registry: Registry
    db: Database
    events: Events
    background: Background = field(default_factory=Background)
    #: Outbound HTTP under the network rule (webhooks, flows, functions, URL imports).
    outbound: Outbound = field(init=False)
    #: The system collections plugins describe (merged into every schema).
    system_collections: tuple[SystemCollection, ...] = ()
    schema: SchemaService | None = None
    permissions: PermissionsService | None = None
    items: ItemsService | None = None
    accounts: AccountsService | None = None
    revisions: RevisionsService | None = None
    realtime: RealtimeHub | None = None
    mailer: Mailer | None = None
    storage: Storage | None = None
    sandbox: Sandbox | None = None
    vectors: VectorStore | None = None
    embedder: Embedder | None = None
    #: Services contributed by plugins (``workeros_register_services``), by name.
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.outbound = Outbound(self.settings)

    def get(self, name: str) -> Any:
        """A plugin's service by name, or ``None`` when that plugin is absent."""
        return self.extra.get(name)

    async def authenticate(
        self,
        *,
        headers: Mapping[str, str],
        cookies: Mapping[str, str],
        method: str,
        ip: str | None,
    ) -> Accountability:
        """The caller of one request (the accounts service checks its credentials)."""
        return await self.accounts.authenticate(
            headers=headers, cookies=cookies, method=method, ip=ip, user_agent=headers.get("User-Agent")
        )


@asynccontextmanager
async def open_services(settings: Settings, plugins: Plugins, registry: Registry) -> AsyncIterator[Services]:
    from workeros.db import migrate

    dialect = registry.get("db")
    db: Database = await await_me_maybe(dialect.factory(settings["database.url"], settings))
    try:
        if settings["database.migrate_on_start"]:
            await migrate.upgrade(db, plugins=plugins)
        bus = await await_me_maybe(registry.get("bus").factory(settings, db))
        await bus.start()
        try:
            services = Services(settings=settings, plugins=plugins, registry=registry, db=db, events=Events(bus),
                                system_collections=system_collections(plugins))
            register_field_types(plugins)
            await _open_backends(services)
            opened: list[Any] = []
            try:
                for attr, path in KERNEL_SERVICES:
                    instance = await service_class(path).open(services)
                    setattr(services, attr, instance)
                    opened.append(instance)
                for _, entries in plugins.collect("workeros_register_services"):
                    for entry in entries:
                        if entry.name in services.extra:
                            raise StartupError(f"two plugins register the service {entry.name!r}")
                        instance = await await_me_maybe(entry.factory(services))
                        services.extra[entry.name] = instance
                        opened.append(instance)
                yield services
            finally:
                await services.background.close()
                await services.outbound.close()
                for instance in reversed(opened):
                    close = getattr(instance, "close", None)
                    if close is not None:
                        await close()
        finally:
            await bus.close()
    finally:
        await db.close()


def system_collections(plugins: Plugins) -> tuple[SystemCollection, ...]:
    """Every system collection the plugins describe; one name twice is a
    startup error."""
    found: dict[str, tuple[SystemCollection, str]] = {}
    for info, entries in plugins.collect("workeros_register_system_collections"):
        for entry in entries:
            if not entry.name.startswith("wos_"):
                raise StartupError(f"system collection {entry.name!r} of plugin {info.name!r} must start with wos_")
            if entry.name in found:
                raise StartupError(f"system collection {entry.name!r} is described by both {found[entry.name][1]!r} "
                                   f"and {info.name!r}")
            found[entry.name] = (entry, info.name)
    return tuple(entry for entry, _ in found.values())


def register_field_types(plugins: Plugins) -> None:
    """Make every plugin's field types known; one name from two plugins (or a
    kernel type's name) is a startup error."""
    owners: dict[str, str] = {}
    for info, entries in plugins.collect("workeros_register_field_types"):
        for entry in entries:
            if entry.name in owners:
                raise StartupError(f"field type {entry.name!r} is registered by both {owners[entry.name]!r} "
                                   f"and {info.name!r}")
            owners[entry.name] = info.name
            try:
                register_type(entry)
            except ValueError as exc:
                raise StartupError(f"plugin {info.name!r}: {exc}") from None


async def _open_backends(services: Services) -> None:
    """Build the active backend of each optional area, if one is installed."""
    registry, settings = services.registry, services.settings
    if (entry := registry.get("storage")) is not None:
        services.storage = await await_me_maybe(entry.factory(settings))
    if (entry := registry.get("email")) is not None:
        services.mailer = await await_me_maybe(entry.factory(settings))
    if (entry := registry.get("sandbox")) is not None:
        services.sandbox = await await_me_maybe(entry.factory(settings))
    if (entry := registry.get("vectors")) is not None:
        services.vectors = await await_me_maybe(entry.factory(settings, services.db))
    if (entry := registry.get("embedder")) is not None:
        services.embedder = await await_me_maybe(entry.factory(settings))
