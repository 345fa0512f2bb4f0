"""``GET /api/openapi.json``: OpenAPI 3.1 of the whole API, with the items API
of the live schema as the caller may use it; ``GET /api/docs``: a browsable
page of it (Swagger UI, served from this server, no CDN).

Items: each collection appears only with the operations the caller's role may
perform there (an admin sees everything, an anonymous caller what the public
role allows), and each item schema lists only the fields that role may read or
write. Every other route of the app — auth, users, roles, permissions,
collections, fields, relations, schema, revisions, activity, realtime, GraphQL,
import/export, and whatever routes plugins mount — is listed from the router
itself, so a plugin's paths appear without extra work; a handler adds detail
with an ``__openapi__`` attribute (an OpenAPI operation object merged into the
generated one). Built on every request from the cached schema and rules (no
database read)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

from aiohttp import web

from workeros.api import INT32, INT64, Accountability, Collection, Field, accountability, json_response, services

routes = web.RouteTableDef()

ERROR = {"$ref": "#/components/responses/Error"}
_ERRORS_READ = ("400", "401", "403", "404", "429", "503")
_ERRORS_WRITE = ("400", "401", "403", "404", "409", "413", "415", "429", "503")


def field_schema(f: Field, *, for_input: bool = False) -> dict[str, Any]:
    """The JSON Schema of a field's value (as the API returns it, or accepts it)."""
    t = f.type
    schema: dict[str, Any]
    if t in ("string", "text"):
        schema = {"type": "string"}
        if t == "string":
            schema["maxLength"] = int(f.options.get("length") or 255)
    elif t in ("integer", "bigint"):
        low, high = INT32 if t == "integer" else INT64
        schema = {"type": "integer", "minimum": low, "maximum": high}
    elif t == "float":
        schema = {"type": "number"}
    elif t == "decimal":
        schema = {"type": ["string", "number"]} if for_input else {"type": "string"}
    elif t == "boolean":
        schema = {"type": "boolean"}
    elif t == "uuid":
        schema = {"type": "string", "format": "uuid"}
    elif t == "datetime":
        schema = {"type": "string", "format": "date-time"}
    elif t == "date":
        schema = {"type": "string", "format": "date"}
    elif t == "time":
        schema = {"type": "string", "pattern": r"^\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?$"}
    else:  # json and types from plugins: any JSON value
        return {"description": f"{t} value"}
    if f.nullable and not f.primary_key:
        schema["type"] = [schema["type"], "null"] if isinstance(schema["type"], str) else [*schema["type"], "null"]
    return schema


def _readable(c: Collection, rule: Any) -> list[Field]:
    return [f for f in c.fields.values() if rule.fields is None or f.name in rule.fields]


def item_schema(c: Collection, rule: Any) -> dict[str, Any]:
    """An item as returned: every readable field, none required (``fields``
    chooses which come back); relational fields are a key or a nested object
    (m2o) or a list of either (o2m, m2m)."""
    props: dict[str, Any] = {}
    for f in _readable(c, rule):
        relation = c.relations.get(f.name)
        if relation is not None and relation.kind != "m2o":
            props[f.name] = {"type": "array", "description": f"{relation.kind} to {relation.related}"}
        elif relation is not None:
            props[f.name] = {"description": f"key of {relation.related}, or the related item"}
        else:
            props[f.name] = field_schema(f)
    return {"type": "object", "properties": props}


def input_schema(c: Collection, rule: Any, *, create: bool) -> dict[str, Any]:
    """A payload: writable fields; on create, the non-nullable fields without a
    default (and without a preset) are required."""
    props: dict[str, Any] = {}
    required = []
    presets = rule.presets or {}
    for f in c.fields.values():
        if f.alias or (rule.fields is not None and f.name not in rule.fields):
            continue
        if f.primary_key and (not create or f.type in ("integer", "bigint")):
            continue
        props[f.name] = field_schema(f, for_input=True)
        if create and not f.nullable and f.default is None and not f.primary_key and f.name not in presets:
            required.append(f.name)
    schema: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


def _responses(ok: dict[str, Any] | None, errors: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if ok is None:
        out["204"] = {"description": "Done"}
    else:
        out["200"] = {"description": "Success", "content": {"application/json": {"schema": ok}}}
    for status in errors:
        out[status] = ERROR
    return out


def _envelope(data: dict[str, Any], *, meta: bool = False) -> dict[str, Any]:
    props: dict[str, Any] = {"data": data}
    if meta:
        props["meta"] = {"$ref": "#/components/schemas/Meta"}
    return {"type": "object", "properties": props, "required": ["data"]}


def _pk_param(c: Collection) -> dict[str, Any]:
    schema = field_schema(c.pk_field)
    return {"name": "id", "in": "path", "required": True, "schema": schema, "description": "Primary key"}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _title(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


QUERY_PARAMETERS: dict[str, dict[str, Any]] = {
    "fields": {"name": "fields", "in": "query", "schema": {"type": "string"},
               "description": "Comma-separated fields; relational dot paths (author.name, author.*)"},
    "filter": {"name": "filter", "in": "query", "schema": {"type": "string"},
               "description": "Filter as JSON, e.g. {\"title\":{\"_eq\":\"x\"}} (or deep-object filter[f][_op]=v)"},
    "sort": {"name": "sort", "in": "query", "schema": {"type": "string"},
             "description": "Comma-separated fields, - for descending (-score,title)"},
    "limit": {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": -1},
              "description": "Page size (default 100; -1 = all up to the configured maximum)"},
    "offset": {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}},
    "page": {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}, "description": "1-based"},
    "search": {"name": "search", "in": "query", "schema": {"type": "string"},
               "description": "Case-insensitive search over readable text fields"},
    "meta": {"name": "meta", "in": "query", "schema": {"type": "string"},
             "description": "total_count, filter_count or *"},
    "groupBy": {"name": "groupBy", "in": "query", "schema": {"type": "string"},
                "description": "Comma-separated fields to group aggregates by"},
}


def _params(*names: str) -> list[dict[str, Any]]:
    return [{"$ref": f"#/components/parameters/{n}"} for n in names]


async def build_document(svc: Any, acc: Accountability, base: str = "",
                         root: web.Application | None = None) -> dict[str, Any]:
    """The OpenAPI document for ``acc``; with ``root`` (the app), every other
    route of it too."""
    schema = svc.schema.current()
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {
        "Error": {"type": "object", "required": ["errors"], "properties": {"errors": {"type": "array", "items": {
            "type": "object", "required": ["message", "extensions"],
            "properties": {"message": {"type": "string"}, "extensions": {
                "type": "object", "required": ["code"], "properties": {"code": {"type": "string"}}}}}}}},
        "Meta": {"type": "object", "properties": {"total_count": {"type": "integer"},
                                                  "filter_count": {"type": "integer"}}},
    }
    for name in sorted(schema.collections):
        c = schema.collections[name]
        rules = {action: await _rule(svc, acc, name, action) for action in ("read", "create", "update", "delete")}
        if not any(rules.values()):
            continue
        title = _title(name)
        item_path: dict[str, Any] = {}
        list_path: dict[str, Any] = {}
        tag = [name]
        read = rules["read"]
        if read is not None:
            schemas[title] = item_schema(c, read)
            list_path["get"] = {
                "operationId": f"list_{name}", "tags": tag, "summary": f"List {name}",
                "parameters": _params("fields", "filter", "sort", "limit", "offset", "page", "search", "meta",
                                      "groupBy"),
                "responses": _responses(_envelope({"type": "array", "items": {"type": "object"}}, meta=True),
                                        _ERRORS_READ),
            }
            item_path["get"] = {
                "operationId": f"get_{name}", "tags": tag, "summary": f"Get one {name} item",
                "parameters": _params("fields"),
                "responses": _responses(_envelope(_ref(title)), _ERRORS_READ),
            }
        returned = _ref(title) if read is not None else {"type": "object"}
        if rules["create"] is not None:
            schemas[f"{title}Create"] = input_schema(c, rules["create"], create=True)
            list_path["post"] = {
                "operationId": f"create_{name}", "tags": tag, "summary": f"Create {name} item(s)",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {"oneOf": [
                    _ref(f"{title}Create"), {"type": "array", "items": _ref(f"{title}Create")}]}}}},
                "responses": _responses(_envelope({"oneOf": [returned, {"type": "array", "items": returned}]}),
                                        _ERRORS_WRITE),
            }
        if rules["update"] is not None:
            schemas[f"{title}Update"] = input_schema(c, rules["update"], create=False)
            list_path["patch"] = {
                "operationId": f"update_many_{name}", "tags": tag, "summary": f"Update {name} items by key or filter",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["data"], "properties": {
                        "keys": {"type": "array", "items": field_schema(c.pk_field)},
                        "query": {"type": "object", "properties": {"filter": {"type": "object"}}},
                        "data": _ref(f"{title}Update")}}}}},
                "responses": _responses(_envelope({"type": "array", "items": returned}), _ERRORS_WRITE),
            }
            item_path["patch"] = {
                "operationId": f"update_{name}", "tags": tag, "summary": f"Update one {name} item",
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref(f"{title}Update")}}},
                "responses": _responses(_envelope(returned), _ERRORS_WRITE),
            }
        if rules["delete"] is not None:
            list_path["delete"] = {
                "operationId": f"delete_many_{name}", "tags": tag, "summary": f"Delete {name} items",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "array", "items": field_schema(c.pk_field)}}}},
                "responses": _responses(None, _ERRORS_WRITE),
            }
            item_path["delete"] = {
                "operationId": f"delete_{name}", "tags": tag, "summary": f"Delete one {name} item",
                "responses": _responses(None, _ERRORS_WRITE),
            }
        if list_path:
            paths[f"{base}/items/{name}"] = list_path
        if item_path:
            item_path["parameters"] = [_pk_param(c)]
            paths[f"{base}/items/{name}/{{id}}"] = item_path
    if root is not None:
        for path, operations in route_paths(root, base).items():
            paths.setdefault(path, operations)
    return {
        "openapi": "3.1.0",
        "info": {"title": "workeros", "version": str(schema.version),
                 "description": "The whole API of this instance; the items API follows its live schema, "
                                "as the calling role may use it."},
        "tags": [{"name": name, "description": text} for name, text in TAGS.items()],
        "servers": [{"url": "/api"}] if not base else [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "parameters": QUERY_PARAMETERS,
            "responses": {"Error": {"description": "Error", "content": {"application/json": {"schema": _ref("Error")}}}},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "Access token or API key (pak_...)"}},
        },
        "security": [{}, {"bearer": []}],
    }


async def _rule(svc: Any, acc: Accountability, collection: str, action: str) -> Any:
    from workeros.api import Forbidden, NotFound

    try:
        return await svc.items.rule(acc, collection, action)
    except (Forbidden, NotFound):
        return None


# -- every other route -------------------------------------------------------------------

API_PREFIX = "/api"
#: Paths described above in detail (per collection), and this module's own.
SKIP = re.compile(r"^/(items/\{[^}]+\}(/\{[^}]+\})?|openapi\.json|docs(/.*)?)$")
TAGS: dict[str, str] = {
    "auth": "Sign-up, sign-in, sessions and the routes of each auth provider (docs/auth.md)",
    "users": "Users and the caller's own account, sessions and API keys",
    "roles": "Roles (admin)", "permissions": "Permission rules per role, collection and action (admin)",
    "collections": "Collections of the live schema", "fields": "Fields of a collection",
    "relations": "Relations between collections", "schema": "Snapshots: take, diff and apply (admin)",
    "revisions": "Revisions of items and restoring them", "activity": "The activity log",
    "realtime": "Item changes as server-sent events or over a WebSocket", "graphql": "GraphQL over HTTP",
    "import": "Import rows into a collection (export is ?export=csv|json on the items API)",
    "server": "Health and the plugin listing",
}
_PARAM = re.compile(r"\{([^}:]+)(:[^}]*)?\}")


def _walk(app: web.Application) -> Any:
    """(method, path, handler) of every route; a mounted sub-app's paths already
    carry its prefix."""
    for resource in app.router.resources():
        sub = getattr(resource, "_app", None)
        if isinstance(sub, web.Application):
            yield from _walk(sub)
            continue
        info = resource.get_info()
        path = info.get("path") or info.get("formatter")
        if path is None:  # static files
            continue
        for route in resource:
            if route.method not in ("HEAD", "OPTIONS", "*"):
                yield route.method.lower(), path, route.handler


def _summary(handler: Any) -> str:
    doc = (getattr(handler, "__doc__", None) or "").strip()
    if doc:
        first = doc.split("\n\n", 1)[0]
        return re.sub(r"\s+", " ", first.replace("``", "")).strip()[:200]
    name = getattr(handler, "__name__", "") or "operation"
    return name.replace("_", " ").strip().capitalize()


def route_paths(root: web.Application, base: str = "") -> dict[str, dict[str, Any]]:
    """Path items for every route of ``root`` under /api outside the items API."""
    out: dict[str, dict[str, Any]] = {}
    seen_ids: set[str] = set()
    for method, full, handler in _walk(root):
        if not full.startswith(API_PREFIX + "/") and full != API_PREFIX:
            continue
        path = _PARAM.sub(lambda m: "{" + m.group(1) + "}", full[len(API_PREFIX):]) or "/"
        if SKIP.match(path):
            continue
        segment = path.strip("/").split("/", 1)[0] or "server"
        tag = segment if segment in TAGS else ("realtime" if segment in ("realtime", "events") else segment)
        op_id = re.sub(r"[^A-Za-z0-9]+", "_", f"{method}{path}").strip("_")
        while op_id in seen_ids:
            op_id += "_"
        seen_ids.add(op_id)
        operation: dict[str, Any] = {
            "operationId": op_id, "tags": [tag], "summary": _summary(handler),
            "responses": {"2XX": {"description": "Success: {data, meta?} (204: no body)"}, "4XX": ERROR},
        }
        names = _PARAM.findall(path)
        if names:
            operation["parameters"] = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                                       for n, _ in names]
        if method in ("post", "patch", "put"):
            operation["requestBody"] = {"required": False, "content": {"application/json": {"schema": {}}}}
        extra = getattr(handler, "__openapi__", None)
        if isinstance(extra, dict):
            operation.update(extra)
        out.setdefault(base + path, {})[method] = operation
    return dict(sorted(out.items()))


@routes.get("/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    root = request.match_info.apps[0] if request.match_info.apps else None
    return json_response(await build_document(services(request), accountability(request), root=root))


# -- the docs page -----------------------------------------------------------------------

def swagger_ui_dir() -> Path | None:
    """Swagger UI's files, from the swagger-ui-py distribution (not imported: only
    its static folder is used)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "static"
    return folder if (folder / "swagger-ui-bundle.js").is_file() else None


DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>workeros API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="docs/static/swagger-ui.css">
<link rel="icon" type="image/png" href="docs/static/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/static/swagger-ui-bundle.js"></script>
<script src="docs/init.js"></script>
</body>
</html>
"""

DOCS_INIT = """window.ui = SwaggerUIBundle({
  url: "openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  withCredentials: true,
  persistAuthorization: false,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
"""


@routes.get("/docs")
async def docs_page(request: web.Request) -> web.Response:
    """The API documentation page (Swagger UI over /api/openapi.json)."""
    if swagger_ui_dir() is None:
        from workeros.api import ServiceUnavailable

        raise ServiceUnavailable("The docs page needs the swagger-ui-py distribution")
    # Relative links: served at /api/docs, the page loads /api/docs/static/... and /api/openapi.json.
    return web.Response(text=DOCS_PAGE.replace('href="docs/', 'href="/api/docs/').replace(
        'src="docs/', 'src="/api/docs/'), content_type="text/html",
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})


@routes.get("/docs/init.js")
async def docs_init(request: web.Request) -> web.Response:
    return web.Response(text=DOCS_INIT.replace('url: "openapi.json"', 'url: "/api/openapi.json"'),
                        content_type="text/javascript")


@routes.get("/docs/static/{name}")
async def docs_static(request: web.Request) -> web.StreamResponse:
    """Swagger UI's own files, from the installed package."""
    from workeros.api import NotFound

    folder = swagger_ui_dir()
    name = request.match_info["name"]
    if folder is None or not re.fullmatch(r"[A-Za-z0-9._-]+", name) or name.startswith("."):
        raise NotFound()
    target = folder / name
    if not target.is_file():
        raise NotFound()
    return web.FileResponse(target, headers={"Cache-Control": "public, max-age=86400"})
