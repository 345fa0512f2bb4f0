"""``/api/collections``, ``/api/fields``, ``/api/relations``: the schema over
HTTP. Reads show a caller only the collections it may read; writes are for
admins (the schema service enforces both)."""

from __future__ import annotations

from aiohttp import web

from workeros.api import read_admin_json, services

from .crud import Call, add

routes = web.RouteTableDef()


def _schema(request: web.Request):  # type: ignore[no-untyped-def]
    return services(request).schema


def _system(request: web.Request) -> dict[str, bool]:
    """``?system=true``: include the system collections (``wos_users``, ``wos_files``…)."""
    return {"system": request.query.get("system", "").lower() in ("1", "true", "yes")}


add(routes, _schema, [
    # -- collections
    Call("GET", "/collections", "list_collections", query=_system),
    Call("POST", "/collections", "create_collection", body=read_admin_json, created=True),
    Call("GET", "/collections/{collection}", "get_collection"),
    Call("PATCH", "/collections/{collection}", "update_collection", body=read_admin_json),
    Call("DELETE", "/collections/{collection}", "delete_collection"),
    # -- fields
    Call("GET", "/fields", "list_fields", query=_system),
    Call("GET", "/fields/{collection}", "list_fields"),
    Call("POST", "/fields/{collection}", "create_field", body=read_admin_json, created=True),
    Call("GET", "/fields/{collection}/{field}", "get_field"),
    Call("PATCH", "/fields/{collection}/{field}", "update_field", body=read_admin_json),
    Call("DELETE", "/fields/{collection}/{field}", "delete_field"),
    # -- relations
    Call("GET", "/relations", "list_relations"),
    Call("POST", "/relations", "create_relation", body=read_admin_json, created=True),
    Call("GET", "/relations/{collection}", "list_relations"),
    Call("GET", "/relations/{collection}/{field}", "get_relation"),
    Call("PATCH", "/relations/{collection}/{field}", "update_relation", body=read_admin_json),
    Call("DELETE", "/relations/{collection}/{field}", "delete_relation"),
])
