"""Revisions and point-in-time restore:

- ``GET /api/revisions`` — revisions the caller may see (``collection``, ``item``,
  ``activity``, ``before``, ``after``, ``limit``, ``offset``, ``page``);
- ``POST /api/revisions/{id}/restore`` — the item back to that revision;
- ``POST /api/items/{slug}/{id}/restore?at=<ISO time>`` — one item back to a time;
- ``POST /api/collections/{slug}/restore?at=<ISO time>`` — a whole collection back
  to a time (admin), in one transaction.
"""

from __future__ import annotations

from aiohttp import web

from workeros.api import InvalidQuery, accountability, ok, parse_time, services

routes = web.RouteTableDef()


def _service(request: web.Request):  # noqa: ANN202
    return services(request).revisions


def _at(request: web.Request):  # noqa: ANN202
    if "at" not in request.query:
        raise InvalidQuery("at is required: the ISO 8601 time to restore to")
    return parse_time(request.query["at"])


@routes.get("/revisions")
async def list_revisions(request: web.Request) -> web.Response:
    return ok(await _service(request).list(accountability(request), request.query))


@routes.post("/revisions/{id}/restore")
async def restore_revision(request: web.Request) -> web.Response:
    return ok(await _service(request).restore_revision(accountability(request), request.match_info["id"]))


@routes.post("/items/{slug}/{id}/restore")
async def restore_item(request: web.Request) -> web.Response:
    service = _service(request)
    return ok(await service.restore_item(accountability(request), request.match_info["slug"],
                                         request.match_info["id"], _at(request)))


@routes.post("/collections/{slug}/restore")
async def restore_collection(request: web.Request) -> web.Response:
    service = _service(request)
    return ok(await service.restore_collection(accountability(request), request.match_info["slug"], _at(request)))
