"""GraphQL at ``/api/graphql``: a schema synthesised per role from the live
metadata and that role's permissions, executed by tartiflette, resolved
through the items service with the caller's ``Accountability``.

``POST /api/graphql`` with ``{"query", "variables", "operationName"}``; ``GET``
for queries (``?query=…&variables=…``); a browser asking for HTML gets
GraphiQL (``graphql.graphiql``). Request-level problems (unparseable query, a
limit exceeded, introspection not allowed) are 400/403 with the contract's
error shape; execution errors come back beside ``data`` with
``extensions.code`` as in REST.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from tartiflette.language.ast import FieldNode, FragmentDefinitionNode, OperationDefinitionNode

from workeros.errors import Forbidden, InvalidQuery, MethodNotAllowed, ServiceUnavailable, UnsupportedMediaType
from workeros.hookspecs import hookimpl
from workeros.hookspecs.lifecycle import ConfigKey
from workeros.hookspecs.transport import Transport
from workeros.keys import SERVICES, SETTINGS
from workeros.serialize import loads
from workeros.web import accountability, json_response, services

from . import direct
from .engines import Engines, Entry
from .resolve import _arguments, selected_fields

ENGINES = web.AppKey("graphql_engines", Engines)

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


def check_limits(document: Any, operation_name: str | None, settings: Any, entry: Entry) -> str:
    """Depth, alias and cost limits and the introspection switch; returns the
    operation's type (query, mutation, subscription)."""
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name:
        operations = [o for o in operations if o.name is not None and o.name.value == operation_name]
    if not operations:
        raise InvalidQuery("No operation to run" + (f" named {operation_name!r}" if operation_name else ""))
    operation = operations[0]
    counts = {"fields": 0, "aliases": 0, "introspection": False}
    max_depth = int(settings["graphql.max_depth"])

    def walk(selection_set: Any, depth: int, path: tuple[str, ...]) -> None:
        if depth > max_depth:
            raise InvalidQuery(f"The query is nested deeper than {max_depth} levels")
        for node in selected_fields(selection_set, fragments):
            counts["fields"] += 1
            if counts["fields"] > int(settings["graphql.max_cost"]):
                raise InvalidQuery(f"The query selects more than {settings['graphql.max_cost']} fields")
            if node.alias is not None:
                counts["aliases"] += 1
            if node.name.value in ("__schema", "__type"):
                counts["introspection"] = True
                continue  # bounded by the schema's size; its nesting is the standard query's
            if isinstance(node, FieldNode) and node.selection_set is not None:
                walk(node.selection_set, depth + 1, (*path, node.name.value))

    walk(operation.selection_set, 1, ())
    if counts["aliases"] > int(settings["graphql.max_aliases"]):
        raise InvalidQuery(f"The query uses more than {settings['graphql.max_aliases']} aliases")
    if counts["introspection"]:
        allowed_roles = settings["graphql.introspection_roles"]
        if not settings["graphql.introspection"] or (
                allowed_roles is not None and not entry.admin and not entry.role_names & set(allowed_roles)):
            raise Forbidden("Introspection is not allowed for this role")
    return str(operation.operation_type)


async def execute(request: web.Request, query: Any, variables: Any, operation_name: Any, *,
                  method: str) -> web.Response:
    from tartiflette.language.parsers.libgraphqlparser import parse_to_document

    if not isinstance(query, str) or not query.strip():
        raise InvalidQuery("query is required")
    if variables is not None and not isinstance(variables, dict):
        raise InvalidQuery("variables must be an object")
    if operation_name is not None and not isinstance(operation_name, str):
        raise InvalidQuery("operationName must be a string")
    svc = services(request)
    if svc.items is None:
        raise ServiceUnavailable("The items service is not available")
    acc = accountability(request).with_origin("graphql")
    entry = await request.app[ENGINES].get(acc)
    # The engine's own parse cache: the document checked here is the one it runs.
    document, _ = entry.engine._cached_parse_and_validate_query(query, entry.engine._schema)
    checked = document
    if checked is None:  # not valid: parsed again for the limits, or a syntax error (400)
        try:
            checked = parse_to_document(query, entry.engine._schema)
        except Exception as exc:  # noqa: BLE001 - any parse failure is the caller's
            message = getattr(exc, "message", None) or "The query could not be parsed"
            raise InvalidQuery(str(message)[:300]) from None
    kind = check_limits(checked, operation_name, request.app[SETTINGS_KEY], entry)
    if method == "GET" and kind != "query":
        raise MethodNotAllowed("Only queries can be sent with GET; use POST")
    context = {"services": svc, "acc": acc}
    result = None
    if document is not None and request.app[SETTINGS_KEY]["graphql.direct"]:
        result = await _direct(entry, document, query, operation_name, context)
    if result is None:
        result = await entry.engine.execute(query, operation_name=operation_name, variables=variables,
                                            context=context)
    return json_response(result)


async def _direct(entry: Entry, document: Any, query: str, operation_name: str | None,
                  context: dict[str, Any]) -> dict[str, Any] | None:
    """The response of a plain query, shaped without tartiflette's executor
    (see direct.py), or ``None``."""
    key = (query, operation_name)
    if key in entry.plans:
        roots = entry.plans[key]
    else:
        roots = direct.plan(document, operation_name, entry.engine._schema, entry.built)
        if len(entry.plans) >= 256:
            entry.plans.clear()
        entry.plans[key] = roots
    if roots is None:
        return None

    async def resolve(root: direct.Root) -> Any:
        args = _arguments(root.field, {})
        if root.kind == "by_id":
            args["id"] = str(args["id"])  # as the ID type coerces it
        return await entry.resolver.root(entry.built.roots[f"Query.{root.field.name.value}"], root.field, args,
                                         context, {}, {})

    return await direct.run(roots, resolve)


SETTINGS_KEY = web.AppKey("graphql_settings", object)


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


def build(root: web.Application) -> web.Application:
    app = web.Application()
    app.router.add_post("", handle_post)
    app.router.add_get("", handle_get)
    app[SETTINGS_KEY] = root[SETTINGS]

    async def start(sub: web.Application) -> None:
        svc = root[SERVICES]
        engines = Engines(svc, size=int(root[SETTINGS]["graphql.cache_size"]))
        engines.start()
        sub[ENGINES] = engines

    async def stop(sub: web.Application) -> None:
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

