"""The default runtime: aiohttp's own server (``workeros serve``)."""

from __future__ import annotations

from workeros.hookspecs import hookimpl
from workeros.hookspecs.lifecycle import Runtime


@hookimpl
def workeros_register_runtimes() -> list[Runtime]:
    return [Runtime(name="aiohttp", factory=lambda app: app, realtime=True,
                    description="workeros serve: one aiohttp process per worker")]
