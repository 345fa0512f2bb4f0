"""``/api/server``: liveness (``/health``), readiness (``/ready``) and the
plugin listing.

``/health`` says the process answers and reaches its database: a supervisor
restarts an instance that fails it. ``/ready`` says the instance should be
sent traffic: the database answers, every migration chain is at its head, and
the instance is not draining (after SIGTERM it answers 503 while in-flight
requests finish, so a load balancer stops routing to it first)."""

from __future__ import annotations

import logging
import re

from aiohttp import web

from workeros.errors import Forbidden, ServiceUnavailable
from workeros.hookspecs import hookimpl
from workeros.hookspecs.transport import Transport
from workeros.http.keys import DRAINING, PLUGINS, REGISTRY
from workeros.http.web import accountability, ok, services

log = logging.getLogger("workeros.health")
routes = web.RouteTableDef()


@routes.get("/health")
async def health(request: web.Request) -> web.Response:
    svc = services(request)
    try:
        latency = await svc.db.ping()
    except Exception:
        log.exception("health check: database unreachable")
        raise ServiceUnavailable("Database is unreachable", checks={"database": "error"}) from None
    return ok({"status": "ok", "checks": {"database": {"status": "ok", "dialect": svc.db.dialect,
                                                        "latency_ms": round(latency, 2)}}})


@routes.get("/ready")
async def ready(request: web.Request) -> web.Response:
    from workeros.db import migrate

    svc = services(request)
    draining = request.config_dict.get(DRAINING)
    if draining is not None and draining.is_set():
        raise ServiceUnavailable("Shutting down", checks={"draining": True}, retry_after=1)
    try:
        await svc.db.ping()
        chains = await migrate.status(svc.db, request.config_dict[PLUGINS])
    except Exception:
        log.exception("readiness check: database unreachable")
        raise ServiceUnavailable("Database is unreachable", checks={"database": "error"}, retry_after=1) from None
    behind = sorted(name for name, (current, head) in chains.items() if current != head)
    if behind:
        raise ServiceUnavailable("Migrations are not current", checks={"migrations": behind}, retry_after=1)
    return ok({"status": "ready", "checks": {"database": "ok", "migrations": "current", "draining": False}})


@routes.get("/ping")
async def ping(request: web.Request) -> web.Response:
    """``pong`` as text: the liveness probe Directus clients call."""
    return web.Response(text="pong", content_type="text/plain")


@routes.get("/info")
async def info(request: web.Request) -> web.Response:
    """What a client may know about this server before signing in: the project
    name; admins also see the version and the database dialect."""
    from importlib.metadata import PackageNotFoundError, version

    data: dict[str, object] = {"project": {"project_name": "workeros"}}
    if accountability(request).admin:
        try:
            data["version"] = version("workeros")
        except PackageNotFoundError:
            data["version"] = None
        data["database"] = {"dialect": services(request).db.dialect}
    return ok(data)


def public_error(error: str | None) -> str | None:
    """The last line of a load error, without file paths: responses never carry
    tracebacks or paths (the CLI shows the whole traceback)."""
    if not error:
        return None
    last = error.strip().splitlines()[-1]
    return re.sub(r"(?:[A-Za-z]:)?[/\\][^\s'\",)]+", "<path>", last)


@routes.get("/plugins")
async def plugins(request: web.Request) -> web.Response:
    svc = services(request)
    if not (accountability(request).admin or svc.settings["server.expose_plugins"]):
        raise Forbidden()
    listing = request.config_dict[PLUGINS].listing()
    for row in listing:
        row["error"] = public_error(row["error"])
    return ok({"plugins": listing, "backends": request.config_dict[REGISTRY].summary(),
               "warnings": request.config_dict[PLUGINS].warnings})


def _build(root: web.Application) -> web.Application:
    app = web.Application()
    app.add_routes(routes)
    return app


@hookimpl
def workeros_register_transports() -> list[Transport]:
    return [Transport(name="server", prefix="/api/server", factory=_build)]
