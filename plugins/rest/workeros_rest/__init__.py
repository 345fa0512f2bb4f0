"""The REST transport: ``/api`` (collections, fields, relations, items, roles,
permissions, users, auth routes of every enabled provider)."""

from __future__ import annotations

from aiohttp import web

from workeros.hookspecs import hookimpl
from workeros.hookspecs.transport import Transport
from workeros.keys import REGISTRY


def build(root: web.Application) -> web.Application:
    app = web.Application()
    for provider in root[REGISTRY].all("auth"):
        if provider.routes is not None:
            for route in provider.routes():
                app.router.add_route(route.method, "/auth" + route.path, route.handler, **route.kwargs)
    return app


@hookimpl
def workeros_register_transports() -> list[Transport]:
    return [Transport(name="rest", prefix="/api", factory=build, description="REST API under /api")]
