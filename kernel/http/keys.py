"""Typed application keys (aiohttp ``web.AppKey``). App state lives only here."""

from __future__ import annotations

from aiohttp import web

# Value types are named as strings: importing them here would be circular.
SETTINGS = web.AppKey("workeros.settings", "Settings")
PLUGINS = web.AppKey("workeros.plugins", "Plugins")
REGISTRY = web.AppKey("workeros.registry", "Registry")
SERVICES = web.AppKey("workeros.services", "Services")

#: Request-scoped values.
REQUEST_ID = web.RequestKey("workeros.request_id", str)
ACCOUNTABILITY = web.RequestKey("workeros.accountability", "Accountability")
