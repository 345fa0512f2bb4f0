"""``/api/roles`` and ``/api/permissions``: who may do what (admin only; the
permissions service enforces it, and a non-admin is refused before the body is
read)."""

from __future__ import annotations

from aiohttp import web

from workeros.api import read_admin_json, services

from .crud import Call, add

routes = web.RouteTableDef()


def _permissions(request: web.Request):  # type: ignore[no-untyped-def]
    return services(request).permissions


def _filters(request: web.Request) -> dict[str, str | None]:
    return {"role": request.query.get("role"), "collection": request.query.get("collection")}


add(routes, _permissions, [
    Call("GET", "/roles", "list_roles"),
    Call("POST", "/roles", "create_role", body=read_admin_json, created=True),
    Call("GET", "/roles/{id}", "get_role"),
    Call("PATCH", "/roles/{id}", "update_role", body=read_admin_json),
    Call("DELETE", "/roles/{id}", "delete_role"),
    Call("GET", "/permissions", "list_permissions", query=_filters),
    Call("POST", "/permissions", "create_permission", body=read_admin_json, created=True),
    Call("GET", "/permissions/{id}", "get_permission"),
    Call("PATCH", "/permissions/{id}", "update_permission", body=read_admin_json),
    Call("DELETE", "/permissions/{id}", "delete_permission"),
])
