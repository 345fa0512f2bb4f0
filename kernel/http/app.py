"""The app factory: settings -> plugins -> registry -> aiohttp app."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from workeros.config import Settings
from workeros.http import cors
from workeros.http.keys import DRAINING, PLUGINS, REGISTRY, SERVICES, SETTINGS
from workeros.http.middleware import MIDDLEWARES
from workeros.plugins import Plugins, await_me_maybe
from workeros.registry import Registry
from workeros.services import open_services

log = logging.getLogger("workeros")


def declare_settings(settings: Settings, plugins: Plugins) -> None:
    """Declare every plugin's settings (once per settings object) and report
    values nobody declared."""
    if settings.declared_by is plugins:
        return
    for info, keys in plugins.collect("workeros_register_config_keys"):
        settings.declare(keys, owner=info.distribution if info.origin != "builtin" else "workeros")
    settings.declared_by = plugins
    for source, name in settings.unknown():
        log.warning("unknown setting %s (from %s) is ignored", name, source)
    for warning in plugins.warnings:
        log.warning(warning)


def prepare(settings: Settings, plugins: Plugins | None = None) -> tuple[Plugins, Registry]:
    """Load plugins, declare their settings, build the backend registry."""
    if plugins is None:
        plugins = Plugins.from_settings(settings)
    declare_settings(settings, plugins)
    return plugins, Registry.build(plugins, settings)


async def create_app(settings: Settings | None = None, *, plugins: Plugins | None = None) -> web.Application:
    settings = settings if settings is not None else Settings.load()
    plugins, registry = prepare(settings, plugins)

    app = web.Application(middlewares=MIDDLEWARES, client_max_size=settings["server.max_body_size"])
    app[SETTINGS] = settings
    app[PLUGINS] = plugins
    app[REGISTRY] = registry
    app[DRAINING] = asyncio.Event()
    app.cleanup_ctx.append(_services_context)
    app.on_shutdown.append(_close_streams)
    for _, contexts in plugins.collect("workeros_cleanup_contexts", app=app):
        app.cleanup_ctx.extend(contexts)

    runtime = registry.get("runtime")
    transports = registry.all("transport")
    if runtime.realtime:
        transports += registry.all("realtime")
    for entry in sorted(transports, key=lambda t: t.prefix):
        sub = await await_me_maybe(entry.factory(app))
        cors.install(sub, settings)  # before mounting: a mounted app's signals are frozen
        app.add_subapp(entry.prefix, sub)

    for _, result in plugins.collect("workeros_after_app_created", app=app):
        await await_me_maybe(result)
    cors.install(app, settings)
    return app


async def _services_context(app: web.Application) -> AsyncIterator[None]:
    from workeros.accounts import bootstrap

    async with open_services(app[SETTINGS], app[PLUGINS], app[REGISTRY]) as services:
        app[SERVICES] = services
        await bootstrap.ensure_admin(services)
        await bootstrap.warn_if_exposed(services)
        yield


async def _close_streams(app: web.Application) -> None:
    """At shutdown, end every realtime stream (SSE, WebSocket, GraphQL
    subscriptions) with a ``closed``/``shutdown`` message, so open streams do
    not hold the graceful drain and clients reconnect elsewhere; from here on
    ``/api/server/ready`` answers 503."""
    app[DRAINING].set()
    services = app.get(SERVICES)
    if services is not None and services.realtime is not None:
        services.realtime.close_all("shutdown")
