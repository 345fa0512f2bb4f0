"""The REST transport: ``/api`` — collections, fields, relations, items, roles,
permissions, users, API keys, activity, revisions, and the routes of every
enabled auth provider under ``/api/auth``.

One module per resource, each with a ``routes`` table whose paths are relative to
``/api``. Handlers parse HTTP and call kernel services with the caller's
``Accountability``; nothing here reads or writes data around the services.
"""

from __future__ import annotations

import importlib

from aiohttp import web

from workeros.api import REGISTRY
from workeros.hookspecs import hookimpl
from workeros.hookspecs.transport import Transport

#: Resource modules of this package, mounted in this order.
ROUTE_MODULES: tuple[str, ...] = (
    "collections",
    "schema",
    "items",
    "access",
    "users",
    "audit",
    "revisions",
    "openapi",
)


def build(root: web.Application) -> web.Application:
    app = web.Application()
    for provider in root[REGISTRY].all("auth"):
        if provider.routes is not None:
            for route in provider.routes():
                app.router.add_route(route.method, "/auth" + route.path, route.handler, **route.kwargs)
    for name in ROUTE_MODULES:
        app.add_routes(importlib.import_module(f"{__name__}.{name}").routes)
    return app


def build_specs(root: web.Application) -> web.Application:
    """``/api/server/specs/oas``: the OpenAPI document where Directus clients
    look for it (the same as ``/api/openapi.json``)."""
    from .openapi import openapi

    app = web.Application()
    app.router.add_get("/oas", openapi)
    return app


@hookimpl
def workeros_register_transports() -> list[Transport]:
    return [Transport(name="rest", prefix="/api", factory=build, description="REST API under /api"),
            Transport(name="rest-specs", prefix="/api/server/specs", factory=build_specs,
                      description="OpenAPI document at /api/server/specs/oas")]
