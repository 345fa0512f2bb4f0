"""``GET /api/openapi.json``: OpenAPI 3.1 of the live schema, as the caller may
use it. Each collection appears only with the operations the caller's role may
perform there (an admin sees everything, an anonymous caller what the public
role allows), and each item schema lists only the fields that role may read or
write. Built on every request from the cached schema and rules (no database
read)."""

from __future__ import annotations

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


async def build_document(svc: Any, acc: Accountability, base: str = "") -> dict[str, Any]:
    """The OpenAPI document for ``acc``."""
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
    return {
        "openapi": "3.1.0",
        "info": {"title": "workeros", "version": str(schema.version),
                 "description": "Items API of this instance's live schema, as the calling role may use it."},
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


@routes.get("/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return json_response(await build_document(services(request), accountability(request)))
