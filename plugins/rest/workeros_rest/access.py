"""``/api/roles`` and ``/api/permissions``: who may do what (admin only; the
permissions service enforces it, and a non-admin is refused before the body is
read)."""

from __future__ import annotations

from aiohttp import web

from workeros.api import accountability, no_content, ok, services
from workeros.api import read_admin_json as read_json

routes = web.RouteTableDef()


def _permissions(request: web.Request):  # type: ignore[no-untyped-def]
    return services(request).permissions


@routes.get("/roles")
async def list_roles(request: web.Request) -> web.Response:
    return ok(await _permissions(request).list_roles(accountability(request)))


@routes.post("/roles")
async def create_role(request: web.Request) -> web.Response:
    data = await read_json(request)
    return ok(await _permissions(request).create_role(accountability(request), data), status=201)


@routes.get("/roles/{id}")
async def get_role(request: web.Request) -> web.Response:
    return ok(await _permissions(request).get_role(accountability(request), request.match_info["id"]))


@routes.patch("/roles/{id}")
async def update_role(request: web.Request) -> web.Response:
    data = await read_json(request)
    return ok(await _permissions(request).update_role(accountability(request), request.match_info["id"], data))


@routes.delete("/roles/{id}")
async def delete_role(request: web.Request) -> web.Response:
    await _permissions(request).delete_role(accountability(request), request.match_info["id"])
    return no_content()


@routes.get("/permissions")
async def list_permissions(request: web.Request) -> web.Response:
    return ok(await _permissions(request).list_permissions(
        accountability(request), role=request.query.get("role"), collection=request.query.get("collection")))


@routes.post("/permissions")
async def create_permission(request: web.Request) -> web.Response:
    data = await read_json(request)
    return ok(await _permissions(request).create_permission(accountability(request), data), status=201)


@routes.get("/permissions/{id}")
async def get_permission(request: web.Request) -> web.Response:
    return ok(await _permissions(request).get_permission(accountability(request), request.match_info["id"]))


@routes.patch("/permissions/{id}")
async def update_permission(request: web.Request) -> web.Response:
    data = await read_json(request)
    return ok(await _permissions(request).update_permission(accountability(request), request.match_info["id"],
                                                            data))


@routes.delete("/permissions/{id}")
async def delete_permission(request: web.Request) -> web.Response:
    await _permissions(request).delete_permission(accountability(request), request.match_info["id"])
    return no_content()
