"""Cross-origin requests from browsers (CORS), through aiohttp-cors.

Off by default: with ``cors.origins`` empty no CORS header is ever sent, so a
browser page on another origin cannot read any answer. Listing origins (or
``["*"]``) answers preflight ``OPTIONS`` requests on every route of the app and
of every transport mounted in it, and adds ``Access-Control-Allow-Origin`` to
the answers for those origins.
"""

from __future__ import annotations

from typing import Any

import aiohttp_cors
from aiohttp import web

from workeros.errors import StartupError
from workeros.hookspecs.lifecycle import ConfigKey

CORS_KEYS: tuple[ConfigKey, ...] = (
    ConfigKey("cors.origins", "list", [],
              "Origins a browser may call the API from (https://app.example.com; * for any). Empty: CORS is off"),
    ConfigKey("cors.methods", "list", ["GET", "POST", "PATCH", "PUT", "DELETE"],
              "Methods cross-origin requests may use"),
    ConfigKey("cors.headers", "list", ["Authorization", "Content-Type", "X-CSRF-Token", "X-Request-Id"],
              "Request headers cross-origin requests may send"),
    ConfigKey("cors.expose_headers", "list", ["X-Request-Id", "Retry-After"],
              "Response headers a cross-origin page may read"),
    ConfigKey("cors.credentials", "bool", False,
              "Let cross-origin pages send cookies (session sign-in); needs explicit origins, not *"),
    ConfigKey("cors.max_age", "int", 600, "Seconds a browser may cache a preflight answer"),
)


def options(settings: Any) -> dict[str, aiohttp_cors.ResourceOptions] | None:
    """The per-origin policy, or None when CORS is off."""
    origins = [str(o).strip() for o in settings["cors.origins"] or [] if str(o).strip()]
    if not origins:
        return None
    credentials = bool(settings["cors.credentials"])
    if credentials and "*" in origins:
        raise StartupError("cors.credentials needs explicit cors.origins: '*' with credentials would let "
                           "every site act as the signed-in user")
    policy = aiohttp_cors.ResourceOptions(
        allow_credentials=credentials,
        expose_headers=tuple(settings["cors.expose_headers"] or ()),
        allow_headers=tuple(settings["cors.headers"] or ()),
        allow_methods=[str(m).upper() for m in settings["cors.methods"] or ()],
        max_age=settings["cors.max_age"],
    )
    return {origin: policy for origin in origins}


def install(app: web.Application, settings: Any) -> None:
    """Apply the CORS policy to every route of ``app`` (call once its routes are
    added, and for a sub-app before it is mounted)."""
    defaults = options(settings)
    if defaults is not None:
        _setup(app, defaults)


def _setup(app: web.Application, defaults: dict[str, aiohttp_cors.ResourceOptions]) -> None:
    cors = aiohttp_cors.setup(app, defaults=defaults)
    for resource in list(app.router.resources()):
        if isinstance(getattr(resource, "_app", None), web.Application):
            continue  # a mounted sub-app got its own set-up before mounting
        try:
            cors.add(resource)
        except ValueError:
            # A route answering every method (or its own OPTIONS) handles
            # preflights itself; it keeps doing so.
            continue
