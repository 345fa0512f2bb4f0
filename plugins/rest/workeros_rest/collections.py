"""``/api/collections``, ``/api/fields``, ``/api/relations``: the schema over
HTTP. Reads show a caller only the collections it may read; writes are for
admins (the schema service enforces both)."""

from __future__ import annotations

from aiohttp import web

from workeros.api import accountability, no_content, ok, services
from workeros.api import read_admin_json as read_json

routes = web.RouteTableDef()


def _schema(request: web.Request):  # type: ignore[no-untyped-def]
    return services(request).schema


# -- collections -------------------------------------------------------------------------

@routes.get("/collections")
async def list_collections(request: web.Request) -> web.Response:
    return ok(await _schema(request).list_collections(accountability(request), system=_system(request)))


@routes.post("/collections")
async def create_collection(request: web.Request) -> web.Response:
    data = await read_json(request)
    return ok(await _schema(request).create_collection(accountability(request), data), status=201)


@routes.get("/collections/{collection}")
async def get_collection(request: web.Request) -> web.Response:
    return ok(await _schema(request).get_collection(accountability(request), request.match_info["collection"]))


@routes.patch("/collections/{collection}")
async def update_collection(request: web.Request) -> web.Response:
    data = await read_json(request)
    return ok(await _schema(request).update_collection(accountability(request), request.match_info["collection"],
                                                       data))


@routes.delete("/collections/{collection}")
async def delete_collection(request: web.Request) -> web.Response:
    await _schema(request).delete_collection(accountability(request), request.match_info["collection"])
    return no_content()


# -- fields ------------------------------------------------------------------------------

@routes.get("/fields")
async def list_all_fields(request: web.Request) -> web.Response:
    return ok(await _schema(request).list_fields(accountability(request), system=_system(request)))


@routes.get("/fields/{collection}")
async def list_fields(request: web.Request) -> web.Response:
    return ok(await _schema(request).list_fields(accountability(request), request.match_info["collection"]))


@routes.post("/fields/{collection}")
async def create_field(request: web.Request) -> web.Response:
    data = await read_json(request)
    return ok(await _schema(request).create_field(accountability(request), request.match_info["collection"], data),
              status=201)


@routes.get("/fields/{collection}/{field}")
async def get_field(request: web.Request) -> web.Response:
    m = request.match_info
    return ok(await _schema(request).get_field(accountability(request), m["collection"], m["field"]))


@routes.patch("/fields/{collection}/{field}")
async def update_field(request: web.Request) -> web.Response:
    data = await read_json(request)
    m = request.match_info
    return ok(await _schema(request).update_field(accountability(request), m["collection"], m["field"], data))


@routes.delete("/fields/{collection}/{field}")
async def delete_field(request: web.Request) -> web.Response:
    m = request.match_info
    await _schema(request).delete_field(accountability(request), m["collection"], m["field"])
    return no_content()


# -- relations ---------------------------------------------------------------------------

@routes.get("/relations")
async def list_relations(request: web.Request) -> web.Response:
    return ok(await _schema(request).list_relations(accountability(request)))


@routes.post("/relations")
async def create_relation(request: web.Request) -> web.Response:
    data = await read_json(request)
    return ok(await _schema(request).create_relation(accountability(request), data), status=201)


@routes.get("/relations/{collection}")
async def list_collection_relations(request: web.Request) -> web.Response:
    return ok(await _schema(request).list_relations(accountability(request), request.match_info["collection"]))


@routes.get("/relations/{collection}/{field}")
async def get_relation(request: web.Request) -> web.Response:
    m = request.match_info
    return ok(await _schema(request).get_relation(accountability(request), m["collection"], m["field"]))


@routes.patch("/relations/{collection}/{field}")
async def update_relation(request: web.Request) -> web.Response:
    data = await read_json(request)
    m = request.match_info
    return ok(await _schema(request).update_relation(accountability(request), m["collection"], m["field"], data))


@routes.delete("/relations/{collection}/{field}")
async def delete_relation(request: web.Request) -> web.Response:
    m = request.match_info
    await _schema(request).delete_relation(accountability(request), m["collection"], m["field"])
    return no_content()


def _system(request: web.Request) -> bool:
    """``?system=true``: include the system collections (``wos_users``, ``wos_files``…)."""
    return request.query.get("system", "").lower() in ("1", "true", "yes")
