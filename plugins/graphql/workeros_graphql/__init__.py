"""GraphQL at ``/api/graphql``: a schema synthesised per role from the live
metadata and that role's permissions, executed by tartiflette, resolved
through the items service with the caller's ``Accountability``.

``POST /api/graphql`` with ``{"query", "variables", "operationName"}``; ``GET``
for queries (``?query=…&variables=…``); a browser asking for HTML gets
GraphiQL (``graphql.graphiql``); a WebSocket upgrade speaks
``graphql-transport-ws`` (see ws.py): subscriptions, and queries and mutations
too. Request-level problems (unparseable query, a limit exceeded,
introspection not allowed) are 400/403 with the contract's error shape;
execution errors come back beside ``data`` with ``extensions.code`` as in REST.
"""

from __future__ import annotations

import ctypes
import importlib.util
from pathlib import Path
from typing import Any

from aiohttp import web

from workeros.api import (
    REGISTRY,
    SERVICES,
    SETTINGS,
    InvalidQuery,
    MethodNotAllowed,
    ServiceUnavailable,
    UnsupportedMediaType,
    accountability,
    changes_nothing,
    json_response,
    loads,
    services,
)
from workeros.hookspecs import hookimpl
from workeros.hookspecs.lifecycle import ConfigKey
from workeros.hookspecs.mcp import McpTool, ToolContext
from workeros.hookspecs.transport import Transport

from .engines import Engines
from .keys import ENGINES, SETTINGS_KEY, WS_ENABLED


def _preload_parser() -> None:
    """Load tartiflette's libgraphqlparser (a C++ library, ~1 MB) now, while
    plugins register, and the rest of tartiflette at the first operation. Some
    extensions carry their own C++ runtime (usearch's, with workeros-vectors);
    loaded before this parser, they break its output and every query fails to
    parse. Loaded first, it keeps its own bindings."""
    spec = importlib.util.find_spec("tartiflette")
    if spec is None or spec.origin is None:
        return
    lib = Path(spec.origin).parent / "language" / "parsers" / "libgraphqlparser" / "cffi" / "libgraphqlparser.so"
    if lib.is_file():
        try:
            ctypes.CDLL(str(lib))
            return
        except OSError:
            pass
    import tartiflette  # noqa: F401  (another layout: all of it, as early as before)


_preload_parser()

#: Names re-exported from .execution, which loads tartiflette: imported at the
#: first use, not when the plugin registers.
_LAZY = ("_direct", "check_limits", "prepare", "run")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from . import execution

        return getattr(execution, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

CONFIG_KEYS = [
    ConfigKey("graphql.graphiql", "bool", True, "Serve the GraphiQL page to browsers at GET /api/graphql"),
    ConfigKey("graphql.introspection", "bool", True, "Allow introspection queries (__schema, __type)"),
    ConfigKey("graphql.introspection_roles", "list", None,
              "Roles allowed to introspect (default: every role, when introspection is on)"),
    ConfigKey("graphql.max_depth", "int", 10, "Deepest selection nesting a query may have"),
    ConfigKey("graphql.max_aliases", "int", 30, "Most aliased fields in one query"),
    ConfigKey("graphql.max_cost", "int", 2000, "Most fields (fragments expanded) one query may select"),
    ConfigKey("graphql.cache_size", "int", 16, "Schemas kept built (one per schema version and role)"),
    ConfigKey("graphql.direct", "bool", True,
              "Shape plain list and by-id queries from their rows without tartiflette's executor"),
    ConfigKey("graphql.connection_init_timeout_s", "float", 10.0,
              "Seconds a graphql-transport-ws client has to send connection_init before the socket closes (4408)"),
]

GRAPHIQL = """<!doctype html>
<html><head><meta charset="utf-8"><title>workeros GraphQL</title>
<link rel="stylesheet" href="https://unpkg.com/graphiql@3/graphiql.min.css"></head>
<body style="margin:0"><div id="graphiql" style="height:100vh"></div>
<script crossorigin src="https://unpkg.com/react@18/umd/react.production.min.js"></script>
<script crossorigin src="https://unpkg.com/react-dom@18/umd/react-dom.production.min.js"></script>
<script crossorigin src="https://unpkg.com/graphiql@3/graphiql.min.js"></script>
<script>
const fetcher = GraphiQL.createFetcher({url: location.pathname, headers: {}});
ReactDOM.createRoot(document.getElementById('graphiql')).render(React.createElement(GraphiQL, {fetcher}));
</script></body></html>"""


async def execute(request: web.Request, query: Any, variables: Any, operation_name: Any, *,
                  method: str) -> web.Response:
    svc = services(request)
    acc = accountability(request).with_origin("graphql")
    settings = request.app[SETTINGS_KEY]
    from .execution import prepare, run

    operation = await prepare(request.app[ENGINES], settings, acc, query, variables, operation_name)
    if operation.kind == "subscription":
        raise MethodNotAllowed("Subscriptions run over a WebSocket (graphql-transport-ws) at this path")
    if method == "GET" and operation.kind != "query":
        raise MethodNotAllowed("Only queries can be sent with GET; use POST")
    return json_response(await run(operation, settings, {"services": svc, "acc": acc}))


@changes_nothing  # queries are POSTed too; a read-only key's mutations are refused when prepared
async def handle_post(request: web.Request) -> web.Response:
    content_type = request.content_type
    if content_type == "application/graphql":
        return await execute(request, await request.text(), None, None, method="POST")
    if content_type not in ("application/json", ""):
        raise UnsupportedMediaType("Send application/json (or application/graphql)")
    try:
        body = loads(await request.read())
    except ValueError:
        raise InvalidQuery("The body is not valid JSON") from None
    if not isinstance(body, dict):
        raise InvalidQuery("The body must be a JSON object")
    return await execute(request, body.get("query"), body.get("variables"), body.get("operationName"),
                         method="POST")


async def handle_get(request: web.Request) -> web.StreamResponse:
    if request.headers.get("Upgrade", "").lower() == "websocket":
        if WS_ENABLED not in request.app:
            raise ServiceUnavailable("Subscriptions need a runtime that holds streams")
        from . import ws

        return await ws.serve(request)
    settings = request.app[SETTINGS_KEY]
    if "query" not in request.query:
        if settings["graphql.graphiql"] and "text/html" in request.headers.get("Accept", ""):
            return web.Response(text=GRAPHIQL, content_type="text/html")
        raise InvalidQuery("query is required")
    variables = request.query.get("variables")
    if variables:
        try:
            variables = loads(variables)
        except ValueError:
            raise InvalidQuery("variables is not valid JSON") from None
    return await execute(request, request.query["query"], variables or None, request.query.get("operationName"),
                         method="GET")


#: The engines and settings of each running app, by its services (for the MCP tool).
_RUNNING: dict[int, tuple[Engines, Any]] = {}


async def graphql_query(ctx: ToolContext, args: dict[str, Any]) -> Any:
    """The ``graphql_query`` MCP tool: a query (never a mutation) run as the
    caller, with the same limits as ``POST /api/graphql``; the GraphQL response
    (``data`` and ``errors``) as the result."""
    running = _RUNNING.get(id(ctx.services))
    if running is None:
        raise ServiceUnavailable("GraphQL is not running in this process")
    engines, settings = running
    acc = ctx.accountability.with_origin("mcp")
    from .execution import prepare, run

    operation = await prepare(engines, settings, acc, args["query"], args.get("variables"),
                              args.get("operationName"))
    if operation.kind != "query":
        raise InvalidQuery("graphql_query runs queries only; change data with the collections_* tools")
    return await run(operation, settings, {"services": ctx.services, "acc": acc})


def build(root: web.Application) -> web.Application:
    app = web.Application()
    app.router.add_post("", handle_post)
    app.router.add_get("", handle_get)
    # Directus clients send system queries (graphql(q, "system")) here: the
    # schema is one, so the same endpoint answers.
    app.router.add_post("/system", handle_post)
    app.router.add_get("/system", handle_get)
    app[SETTINGS_KEY] = root[SETTINGS]
    realtime = root[REGISTRY].get("runtime").realtime
    if realtime:
        # What ws.install does, without importing the socket protocol (and so
        # tartiflette) before the first upgrade.
        app[WS_ENABLED] = True

    async def start(sub: web.Application) -> None:
        svc = root[SERVICES]
        engines = Engines(svc, size=int(root[SETTINGS]["graphql.cache_size"]), realtime=realtime)
        engines.start()
        sub[ENGINES] = engines
        _RUNNING[id(svc)] = (engines, sub[SETTINGS_KEY])

    async def stop(sub: web.Application) -> None:
        _RUNNING.pop(id(root[SERVICES]), None)
        engines = sub.get(ENGINES)
        if engines is not None:
            await engines.close()

    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    return app


@hookimpl
def workeros_register_config_keys() -> list[ConfigKey]:
    return CONFIG_KEYS


@hookimpl
def workeros_register_transports() -> list[Transport]:
    return [Transport(name="graphql", prefix="/api/graphql", factory=build,
                      description="GraphQL of the live schema, per role")]



@hookimpl
def workeros_register_mcp_tools() -> list[McpTool]:
    return [McpTool(
        "graphql_query", "Run a GraphQL query (queries only) on the live schema, as you: the same types, "
        "permissions and limits as POST /api/graphql.",
        {"type": "object", "properties": {"query": {"type": "string", "minLength": 1},
                                          "variables": {"type": ["object", "null"]},
                                          "operationName": {"type": ["string", "null"]}},
         "required": ["query"], "additionalProperties": False},
        graphql_query, read_only=True, idempotent=True, group="graphql", title="GraphQL query")]
