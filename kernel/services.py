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
from typing import Any

from workeros.accountability import Accountability
from workeros.bus.events import Events
from workeros.config import Settings
from workeros.db.database import Database
from workeros.errors import InvalidCredentials
from workeros.plugins import Plugins, await_me_maybe
from workeros.registry import Registry

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
    settings: Settings
    plugins: Plugins
    registry: Registry
    db: Database
    events: Events
    #: Kernel services, filled in by :func:`open_services` as they exist.
    schema: Any = None
    permissions: Any = None
    items: Any = None
    accounts: Any = None
    activity: Any = None
    revisions: Any = None
    realtime: Any = None
    mailer: Any = None
    storage: Any = None
    sandbox: Any = None
    vectors: Any = None
    #: Services contributed by plugins, by name.
    extra: dict[str, Any] = field(default_factory=dict)

    async def authenticate(
        self,
        *,
        headers: Mapping[str, str],
        cookies: Mapping[str, str],
        method: str,
        ip: str | None,
    ) -> Accountability:
        """The caller of one request. Without an accounts service every caller is
        anonymous, and any credential is refused (it cannot be checked)."""
        user_agent = headers.get("User-Agent")
        if self.accounts is not None:
            return await self.accounts.authenticate(
                headers=headers, cookies=cookies, method=method, ip=ip, user_agent=user_agent
            )
        if headers.get("Authorization"):
            raise InvalidCredentials("Credentials cannot be verified: no accounts service is installed")
        return Accountability.anonymous(ip=ip, user_agent=user_agent)


@asynccontextmanager
async def open_services(settings: Settings, plugins: Plugins, registry: Registry) -> AsyncIterator[Services]:
    from workeros.db import migrate

    dialect = registry.get("db")
    db: Database = await await_me_maybe(dialect.factory(settings["database.url"], settings))
    try:
        if settings["database.migrate_on_start"]:
            await migrate.upgrade(db)
        bus = await await_me_maybe(registry.get("bus").factory(settings, db))
        await bus.start()
        try:
            services = Services(settings=settings, plugins=plugins, registry=registry, db=db, events=Events(bus))
            await _open_backends(services)
            opened = []
            try:
                for attr, path in KERNEL_SERVICES:
                    instance = await service_class(path).open(services)
                    setattr(services, attr, instance)
                    opened.append(instance)
                yield services
            finally:
                for instance in reversed(opened):
                    close = getattr(instance, "close", None)
                    if close is not None:
                        await close()
        finally:
            await bus.close()
    finally:
        await db.close()


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
