"""The kernel's MCP tools (DESIGN §6 "MCP"): schema (5), collections — items —
(7), permissions (7) and API keys (3). Each is a thin call into the same
service REST calls, with the caller's accountability: the permissions decide
what a call may do, exactly as over REST."""

from __future__ import annotations

from typing import Any

from workeros.api import Forbidden, InvalidPayload, query_from_mapping
from workeros.hookspecs.mcp import McpTool, ToolContext

OBJECT = {"type": "object"}
NAME = {"type": "string", "minLength": 1, "maxLength": 255}
COLLECTION = {"type": "string", "minLength": 1, "maxLength": 255, "description": "The collection's name"}
KEY = {"type": ["string", "integer"], "description": "The item's primary key"}
FIELDS = {"type": "array", "items": {"type": "string"},
          "description": "Fields to return (dot paths for relations, * for all)"}
FILTER = {"type": "object", "description": 'The filter language: {"field": {"_eq": value}}, _and, _or…'}
QUERY_PROPERTIES: dict[str, Any] = {
    "fields": FIELDS,
    "filter": FILTER,
    "sort": {"type": "array", "items": {"type": "string"}, "description": "Fields, - for descending"},
    "limit": {"type": "integer", "minimum": -1},
    "offset": {"type": "integer", "minimum": 0},
    "page": {"type": "integer", "minimum": 1},
    "search": {"type": "string"},
    "meta": {"type": "array", "items": {"type": "string", "enum": ["total_count", "filter_count", "*"]}},
    "deep": OBJECT,
}


def schema(properties: dict[str, Any], required: list[str] | None = None, *, closed: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        out["required"] = required
    if closed:
        out["additionalProperties"] = False
    return out


def _query(args: dict[str, Any], *names: str) -> Any:
    return query_from_mapping({n: args[n] for n in names if n in args})


# -- schema ----------------------------------------------------------------------------------

async def schema_list(ctx: ToolContext, args: dict[str, Any]) -> Any:
    return await ctx.services.schema.list_collections(ctx.accountability, system=bool(args.get("system")))


async def schema_get_collection(ctx: ToolContext, args: dict[str, Any]) -> Any:
    return {**await ctx.services.schema.get_collection(ctx.accountability, args["collection"]),
            "relations": await ctx.services.schema.list_relations(ctx.accountability, args["collection"])}


async def schema_create_collection(ctx: ToolContext, args: dict[str, Any]) -> Any:
    return await ctx.services.schema.create_collection(ctx.accountability, args)


async def schema_update_collection(ctx: ToolContext, args: dict[str, Any]) -> Any:
    return await ctx.services.schema.update_collection(ctx.accountability, args["collection"], args["data"])


async def schema_delete_collection(ctx: ToolContext, args: dict[str, Any]) -> Any:
    await ctx.services.schema.delete_collection(ctx.accountability, args["collection"])
    return {"deleted": args["collection"]}


# -- collections (items) ---------------------------------------------------------------------

def _writable(ctx: ToolContext, name: str) -> str:
    """As REST: system collections with an API of their own are not written here."""
    c = ctx.services.schema.current().get(name)
    if c is not None and not c.items_api:
        raise Forbidden(f"{name!r} is written through its own endpoints")
    return name


async def collections_list(ctx: ToolContext, args: dict[str, Any]) -> Any:
    query = _query(args, *QUERY_PROPERTIES)
    rows, meta = await ctx.services.items.query(ctx.accountability, args["collection"], query)
    return {"data": rows, "meta": meta} if query.meta else rows


async def collections_get(ctx: ToolContext, args: dict[str, Any]) -> Any:
    return await ctx.services.items.get(ctx.accountability, args["collection"], args["key"],
                                        _query(args, "fields", "deep"))


async def collections_aggregate(ctx: ToolContext, args: dict[str, Any]) -> Any:
    query = _query(args, "aggregate", "groupBy", "filter", "sort", "limit", "offset", "search")
    rows, _ = await ctx.services.items.query(ctx.accountability, args["collection"], query)
    return rows


async def collections_create(ctx: ToolContext, args: dict[str, Any]) -> Any:
    return await ctx.services.items.create(ctx.accountability, _writable(ctx, args["collection"]), args["data"],
                                           _query(args, "fields") if "fields" in args else None)


async def collections_update(ctx: ToolContext, args: dict[str, Any]) -> Any:
    return await ctx.services.items.update(ctx.accountability, _writable(ctx, args["collection"]), args["key"],
                                           args["data"], _query(args, "fields") if "fields" in args else None)


async def collections_bulk_update(ctx: ToolContext, args: dict[str, Any]) -> Any:
    acc, collection = ctx.accountability, _writable(ctx, args["collection"])
    query = _query(args, "fields") if "fields" in args else None
    if "keys" in args:
        return await ctx.services.items.update_many(acc, collection, args["keys"], args["data"], query)
    if args.get("filter"):
        return await ctx.services.items.update_by_filter(acc, collection, args["filter"], args["data"], query)
    raise InvalidPayload('Give "keys" or "filter" to say which items to update')


async def collections_delete(ctx: ToolContext, args: dict[str, Any]) -> Any:
    await ctx.services.items.delete_many(ctx.accountability, _writable(ctx, args["collection"]), args["keys"])
    return {"deleted": args["keys"]}


# -- permissions -----------------------------------------------------------------------------

async def permissions_list_roles(ctx: ToolContext, args: dict[str, Any]) -> Any:
    return await ctx.services.permissions.list_roles(ctx.accountability)


async def permissions_create_role(ctx: ToolContext, args: dict[str, Any]) -> Any:
    return await ctx.services.permissions.create_role(ctx.accountability, args)


async def permissions_update_role(ctx: ToolContext, args: dict[str, Any]) -> Any:
    return await ctx.services.permissions.update_role(ctx.accountability, args["role"], args["data"])


async def permissions_delete_role(ctx: ToolContext, args: dict[str, Any]) -> Any:
    await ctx.services.permissions.delete_role(ctx.accountability, args["role"])
    return {"deleted": args["role"]}


async def permissions_list(ctx: ToolContext, args: dict[str, Any]) -> Any:
    return await ctx.services.permissions.list_permissions(ctx.accountability, role=args.get("role"),
                                                           collection=args.get("collection"))


async def permissions_set(ctx: ToolContext, args: dict[str, Any]) -> Any:
    """Create the permission of (role, collection, action), or replace the
    parts given of the one that exists."""
    svc, acc = ctx.services.permissions, ctx.accountability
    existing = [p for p in await svc.list_permissions(acc, role=args["role"], collection=args["collection"])
                if p.get("action") == args["action"]]
    if existing:
        changes = {k: v for k, v in args.items() if k not in ("role", "collection", "action")}
        return await svc.update_permission(acc, existing[0]["id"], changes)
    return await svc.create_permission(acc, args)


async def permissions_delete(ctx: ToolContext, args: dict[str, Any]) -> Any:
    await ctx.services.permissions.delete_permission(ctx.accountability, args["id"])
    return {"deleted": args["id"]}


# -- API keys --------------------------------------------------------------------------------

async def api_keys_list(ctx: ToolContext, args: dict[str, Any]) -> Any:
    return await ctx.services.accounts.list_api_keys(ctx.accountability)


async def api_keys_create(ctx: ToolContext, args: dict[str, Any]) -> Any:
    return await ctx.services.accounts.create_api_key(ctx.accountability, args)


async def api_keys_revoke(ctx: ToolContext, args: dict[str, Any]) -> Any:
    await ctx.services.accounts.revoke_api_key(ctx.accountability, args["id"])
    return {"revoked": args["id"]}


PERMISSION_PROPERTIES = {
    "role": NAME, "collection": COLLECTION,
    "action": {"type": "string", "enum": ["create", "read", "update", "delete"]},
    "fields": {"type": ["array", "null"], "items": {"type": "string"}},
    "filter": {"type": ["object", "null"], "description": "Row filter (the filter language)"},
    "validation": {"type": ["object", "null"]},
    "presets": {"type": ["object", "null"]},
}


def tools() -> list[McpTool]:
    t = McpTool
    reading = {"read_only": True, "idempotent": True}
    return [
        # schema
        t("schema_list", "List the collections you may use, each with its fields.",
          schema({"system": {"type": "boolean", "description": "Include system collections (wos_*)"}}),
          schema_list, group="schema", title="List collections", **reading),
        t("schema_get_collection", "Get one collection: its fields and relations.",
          schema({"collection": COLLECTION}, ["collection"]),
          schema_get_collection, group="schema", title="Get a collection", **reading),
        t("schema_create_collection", "Create a collection: {collection, fields: [{field, type, …}], meta?}.",
          schema({"collection": COLLECTION, "fields": {"type": "array", "items": OBJECT}}, ["collection"],
                 closed=False),
          schema_create_collection, group="schema", title="Create a collection"),
        t("schema_update_collection", "Change a collection's settings (data holds what to change).",
          schema({"collection": COLLECTION, "data": OBJECT}, ["collection", "data"]),
          schema_update_collection, group="schema", title="Update a collection", idempotent=True),
        t("schema_delete_collection", "Delete a collection and every item in it.",
          schema({"collection": COLLECTION}, ["collection"]),
          schema_delete_collection, group="schema", title="Delete a collection", destructive=True),
        # collections (items)
        t("collections_list", "Read items of a collection with the full query: fields, filter, sort, limit, "
          "offset, page, search, meta, deep. Returns the items (with meta: {data, meta}).",
          schema({"collection": COLLECTION, **QUERY_PROPERTIES}, ["collection"]),
          collections_list, group="collections", title="List items", **reading),
        t("collections_get", "Read one item by its primary key.",
          schema({"collection": COLLECTION, "key": KEY, "fields": FIELDS, "deep": OBJECT}, ["collection", "key"]),
          collections_get, group="collections", title="Get an item", **reading),
        t("collections_aggregate", "Aggregate items: {aggregate: {count: ['*'], sum: ['price']}, groupBy, filter}.",
          schema({"collection": COLLECTION, "aggregate": {
              "type": "object", "propertyNames": {"enum": ["count", "countDistinct", "sum", "sumDistinct", "avg",
                                                           "avgDistinct", "min", "max"]},
              "additionalProperties": {"type": "array", "items": {"type": "string"}}},
              "groupBy": {"type": "array", "items": {"type": "string"}}, "filter": FILTER,
              "sort": QUERY_PROPERTIES["sort"], "limit": QUERY_PROPERTIES["limit"],
              "offset": QUERY_PROPERTIES["offset"], "search": {"type": "string"}}, ["collection", "aggregate"]),
          collections_aggregate, group="collections", title="Aggregate items", **reading),
        t("collections_create", "Create one item (data an object) or several (data an array).",
          schema({"collection": COLLECTION, "data": {"type": ["object", "array"], "items": OBJECT},
                  "fields": FIELDS}, ["collection", "data"]),
          collections_create, group="collections", title="Create items"),
        t("collections_update", "Change fields of one item.",
          schema({"collection": COLLECTION, "key": KEY, "data": OBJECT, "fields": FIELDS},
                 ["collection", "key", "data"]),
          collections_update, group="collections", title="Update an item", idempotent=True),
        t("collections_bulk_update", "Change the same fields of several items: by keys, or every item matching filter.",
          schema({"collection": COLLECTION, "keys": {"type": "array", "items": KEY}, "filter": FILTER,
                  "data": OBJECT, "fields": FIELDS}, ["collection", "data"]),
          collections_bulk_update, group="collections", title="Update items", idempotent=True),
        t("collections_delete", "Delete items by their primary keys.",
          schema({"collection": COLLECTION, "keys": {"type": "array", "items": KEY, "minItems": 1}},
                 ["collection", "keys"]),
          collections_delete, group="collections", title="Delete items", destructive=True, idempotent=True),
        # permissions
        t("permissions_list_roles", "List roles.", schema({}), permissions_list_roles, group="permissions",
          title="List roles", **reading),
        t("permissions_create_role", "Create a role: {id, name?, description?, admin?}.",
          schema({"id": {"type": "string", "maxLength": 36}, "name": NAME}, closed=False),
          permissions_create_role, group="permissions", title="Create a role"),
        t("permissions_update_role", "Change a role (data holds what to change).",
          schema({"role": NAME, "data": OBJECT}, ["role", "data"]),
          permissions_update_role, group="permissions", title="Update a role", idempotent=True),
        t("permissions_delete_role", "Delete a role and its permissions.", schema({"role": NAME}, ["role"]),
          permissions_delete_role, group="permissions", title="Delete a role", destructive=True),
        t("permissions_list", "List permissions, optionally of one role and/or collection.",
          schema({"role": NAME, "collection": COLLECTION}),
          permissions_list, group="permissions", title="List permissions", **reading),
        t("permissions_set", "Set what a role may do on a collection for one action: creates the permission, "
          "or changes the one that exists (fields, filter (row filter), validation, presets).",
          schema(PERMISSION_PROPERTIES, ["role", "collection", "action"]),
          permissions_set, group="permissions", title="Set a permission", idempotent=True),
        t("permissions_delete", "Delete a permission by id.", schema({"id": {"type": ["string", "integer"]}}, ["id"]),
          permissions_delete, group="permissions", title="Delete a permission", destructive=True),
        # API keys
        t("api_keys_list", "List API keys (never their secrets).", schema({}), api_keys_list, group="api_keys",
          title="List API keys", **reading),
        t("api_keys_create", "Create an API key (the key is shown once): {name, user?, expires_at?, "
          "mcp_read_only?, mcp_tools?}. A key never gets more than the key creating it.",
          schema({"name": NAME, "user": {"type": "string"}, "expires_at": {"type": ["string", "null"]},
                  "mcp_read_only": {"type": "boolean"},
                  "mcp_tools": {"type": ["array", "null"], "items": {"type": "string"}}}, ["name"]),
          api_keys_create, group="api_keys", title="Create an API key"),
        t("api_keys_revoke", "Revoke an API key.", schema({"id": {"type": "string"}}, ["id"]),
          api_keys_revoke, group="api_keys", title="Revoke an API key", destructive=True, idempotent=True),
    ]
