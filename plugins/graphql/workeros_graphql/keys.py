"""The GraphQL app's keys, in a module that loads no GraphQL library: the plugin
registers its routes at start and imports tartiflette at the first operation."""

from __future__ import annotations

from aiohttp import web

from .engines import Engines

ENGINES = web.AppKey("graphql_engines", Engines)
SETTINGS_KEY = web.AppKey("graphql_settings", object)
#: Set on the GraphQL app when the runtime holds streams (WebSocket upgrades served).
WS_ENABLED = web.AppKey("graphql_ws_enabled", bool)
