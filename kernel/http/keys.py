"""Typed application keys (aiohttp ``web.AppKey``). App state lives only here."""

from __future__ import annotations

import asyncio

from aiohttp import web

# Value types are named as strings: importing them here would be circular.
SETTINGS = web.AppKey("workeros.settings", "Settings")
PLUGINS = web.AppKey("workeros.plugins", "Plugins")
REGISTRY = web.AppKey("workeros.registry", "Registry")
SERVICES = web.AppKey("workeros.services", "Services")
#: Set when the app starts shutting down (``/api/server/ready`` answers 503).
DRAINING = web.AppKey("workeros.draining", asyncio.Event)


#: Set on a transport's sub-app that checks its own credentials (SCIM's bearer
#: token): the kernel then does not read the Authorization header there, and
#: the caller is anonymous until the transport says otherwise.
OWN_CREDENTIALS = web.AppKey("workeros.own_credentials", bool)

#: Request-scoped values.
REQUEST_ID = web.RequestKey("workeros.request_id", str)
ACCOUNTABILITY = web.RequestKey("workeros.accountability", "Accountability")
