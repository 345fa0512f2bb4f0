"""``GET /api/activity``: the activity log (admins see every row, anyone else
only their own actions). Revisions routes live beside these."""

from __future__ import annotations

from aiohttp import web

from workeros.api import accountability, list_activity, ok, services

routes = web.RouteTableDef()


@routes.get("/activity")
async def get_activity(request: web.Request) -> web.Response:
    return ok(await list_activity(services(request).db, accountability(request), request.query))


# Revisions (GET /api/revisions, POST /api/revisions/{id}/restore, point-in-time
# restore) are added here by the revisions service's owner.
