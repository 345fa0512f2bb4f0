"""``/api/schema``: snapshot, diff and apply (admin only).

``GET /api/schema/snapshot`` answers JSON (``{"data": snapshot}``), or the bare
YAML document with ``?format=yaml`` or ``Accept: application/yaml``;
``?include=access`` adds roles and permissions. ``POST
/api/schema/diff`` and ``POST /api/schema/apply`` take a snapshot as JSON (bare
or wrapped in ``{"data": ...}``) or YAML (``Content-Type: application/yaml``)
and answer the list of operations (planned, or run).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from workeros.api import (
    Forbidden,
    InvalidQuery,
    PayloadTooLarge,
    accountability,
    changes_nothing,
    ok,
    read_json,
    services,
    snapshot,
)

routes = web.RouteTableDef()
YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")


def _admin(request: web.Request) -> None:
    if not accountability(request).admin:
        raise Forbidden()


async def _document(request: web.Request) -> Any:
    _admin(request)
    if request.content_type in YAML_TYPES:
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise PayloadTooLarge() from None
        return snapshot.load_text(raw)
    body = await read_json(request)
    if isinstance(body, dict) and set(body) == {"data"}:
        body = body["data"]
    return body


@routes.get("/schema/snapshot")
async def get_snapshot(request: web.Request) -> web.StreamResponse:
    _admin(request)
    fmt = request.query.get("format")
    if fmt not in (None, "json", "yaml"):
        raise InvalidQuery("format must be json or yaml")
    include = [part.strip() for part in request.query.get("include", "").split(",") if part.strip()]
    doc = await services(request).schema.snapshot(accountability(request), include)
    wants_yaml = fmt == "yaml" or (fmt is None and any(t in request.headers.get("Accept", "") for t in YAML_TYPES))
    if wants_yaml:
        return web.Response(text=snapshot.dump_yaml(doc), content_type="application/yaml")
    return ok(doc)


@routes.post("/schema/diff")
@changes_nothing
async def diff(request: web.Request) -> web.Response:
    document = await _document(request)
    return ok(await services(request).schema.diff(accountability(request), document))


@routes.post("/schema/apply")
async def apply(request: web.Request) -> web.Response:
    document = await _document(request)
    return ok(await services(request).schema.apply_snapshot(accountability(request), document))
