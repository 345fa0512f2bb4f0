"""Hook specifications: the whole plugin surface of workeros, one module per area.

Every hook name starts with ``workeros_``. Hooks are synchronous and may return an
awaitable; the kernel awaits it (see :func:`workeros.plugins.await_me_maybe`). No hook
that may be async is ``firstresult``.

Plugins implement hooks with :data:`hookimpl`::

    from workeros.hookspecs import hookimpl

    @hookimpl
    def workeros_register_transports():
        ...
"""

from __future__ import annotations

import pluggy

PROJECT = "workeros"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

#: Modules holding hook specs, in the order they are registered.
SPEC_MODULES: tuple[str, ...] = (
    "workeros.hookspecs.lifecycle",
    "workeros.hookspecs.db",
    "workeros.hookspecs.storage",
    "workeros.hookspecs.auth",
    "workeros.hookspecs.email",
    "workeros.hookspecs.sandbox",
    "workeros.hookspecs.vectors",
    "workeros.hookspecs.realtime",
    "workeros.hookspecs.transport",
    "workeros.hookspecs.items",
    "workeros.hookspecs.data",
    "workeros.hookspecs.mcp",
    "workeros.hookspecs.admin",
)

__all__ = ["PROJECT", "SPEC_MODULES", "hookimpl", "hookspec"]
