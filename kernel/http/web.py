"""HTTP helpers shared by every transport: the contract's envelope (DESIGN §4),
JSON in and out with orjson, and access to the caller and services."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from workeros.accountability import Accountability
from workeros.errors import (
    READ_ONLY,
    Forbidden,
    InvalidPayload,
    InvalidQuery,
    PayloadTooLarge,
    UnsupportedMediaType,
    WorkerosError,
)
from workeros.http.keys import ACCOUNTABILITY, REQUEST_ID, SERVICES
from workeros.serialize import dumps

if TYPE_CHECKING:
    from workeros.services import Services

_CHANGES_NOTHING = "__workeros_changes_nothing__"


def changes_nothing(handler: Any) -> Any:
    """Mark a POST/PATCH/DELETE route handler that changes nothing (a GraphQL
    query endpoint, a schema diff), so read-only API keys may call it. Every
    other unsafe-method route is refused to them before it runs."""
    setattr(handler, _CHANGES_NOTHING, True)
    return handler


_STREAMS_BODY = "__workeros_streams_body__"


def streams_body(handler: Any) -> Any:
    """Mark a route handler that reads its request body as a stream and
    enforces its own size limit (file uploads): ``server.max_body_size`` does
    not apply to it."""
    setattr(handler, _STREAMS_BODY, True)
    return handler


def handler_streams_body(request: web.Request) -> bool:
    handler = getattr(request.match_info, "handler", None)
    return handler is not None and getattr(handler, _STREAMS_BODY, False)


def refuse_read_only(request: web.Request, acc: Accountability) -> None:
    """403 for a read-only API key on an unsafe method, unless the route is
    marked :func:`changes_nothing`."""
    if not acc.mcp_read_only or request.method in ("GET", "HEAD", "OPTIONS"):
        return
    handler = getattr(request.match_info, "handler", None)
    if handler is not None and getattr(handler, _CHANGES_NOTHING, False):
        return
    raise Forbidden(READ_ONLY)


def json_response(body: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=dumps(body), status=status, content_type="application/json", headers=headers)


def ok(data: Any, *, meta: dict[str, Any] | None = None, status: int = 200,
       headers: dict[str, str] | None = None) -> web.Response:
    """``{"data": ..., "meta": ...}``."""
    body: dict[str, Any] = {"data": data}
    if meta is not None:
        body["meta"] = meta
    return json_response(body, status=status, headers=headers)


def no_content() -> web.Response:
    return web.Response(status=204)


def error_body(*errors: WorkerosError) -> dict[str, Any]:
    return {"errors": [e.to_error() for e in errors]}


def error_response(error: WorkerosError, *, request_id: str | None = None) -> web.Response:
    body = error_body(error)
    if request_id and error.status >= 500:
        body["errors"][0]["extensions"]["request_id"] = request_id
    headers = {}
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return json_response(body, status=error.status, headers=headers)


async def read_json(request: web.Request) -> Any:
    """The request body as JSON: 415 for another media type, 400 for bad JSON,
    413 beyond the body limit."""
    if request.body_exists and request.content_type not in ("application/json", "application/octet-stream", ""):
        if not request.content_type.endswith("+json"):
            raise UnsupportedMediaType(f"Expected application/json, got {request.content_type}")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge() from None
    if not raw.strip():
        raise InvalidPayload("Request body is empty; expected JSON")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidPayload("Request body is not valid JSON") from None
    check_json(body)
    return body


#: Integers in requests must fit a signed 64-bit column on both dialects.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def check_json(value: Any, depth: int = 0) -> None:
    """Refuse (400) what neither database can store, at the edge rather than in
    a driver: a NUL character in any string (key or value), an integer beyond 64
    bits. Nesting deeper than 256 levels is refused as well."""
    if depth > 256:
        raise InvalidPayload("Request body is nested too deeply")
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidPayload("Text must not contain NUL characters (\\u0000)")
    elif isinstance(value, bool):
        return
    elif isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise InvalidPayload("Integers must fit in 64 bits (send larger numbers as strings)")
    elif isinstance(value, dict):
        for key, item in value.items():
            check_json(key, depth + 1)
            check_json(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            check_json(item, depth + 1)


async def read_admin_json(request: web.Request) -> Any:
    """:func:`read_json` for an admin-only write: a non-admin is refused (403)
    before the body is even parsed, so a bad body never reveals more than 403."""
    if not accountability(request).admin:
        raise Forbidden()
    return await read_json(request)


def services(request: web.Request) -> Services:
    return request.config_dict[SERVICES]


def accountability(request: web.Request) -> Accountability:
    acc = request.get(ACCOUNTABILITY)
    if acc is None:
        acc = Accountability.anonymous(ip=request.remote, user_agent=request.headers.get("User-Agent"))
    return acc


def request_id(request: web.Request) -> str | None:
    return request.get(REQUEST_ID)


def parse_page(query: Mapping[str, str], default: int = 50) -> tuple[int, int]:
    """``limit`` and ``offset`` of a plain paged listing (a log, a run history):
    ``limit`` 1 to 1000 (``default`` when absent), ``offset`` at least 0; anything
    else is a 400."""
    try:
        limit = int(query.get("limit", default))
        offset = int(query.get("offset", 0))
    except ValueError:
        raise InvalidQuery("limit and offset must be integers") from None
    if not 1 <= limit <= 1000 or offset < 0:
        raise InvalidQuery("limit must be 1 to 1000 and offset at least 0")
    return limit, offset


def add_admin_resource(app: web.Application, service: str, *, key: str = "id") -> None:
    """Routes for a collection of system records kept by one service:
    ``GET``/``POST`` on the app's root and ``GET``/``PATCH``/``DELETE`` on
    ``/{key}``. The service (``services(request).get(service)``) answers
    ``list(acc)``, ``create(acc, data)``, ``get(acc, key)``,
    ``update(acc, key, data)`` and ``delete(acc, key)`` and applies its own
    permission rules; a write's body is read with :func:`read_admin_json`, so a
    non-admin is refused before the body is parsed. Create answers 201, delete
    204."""

    def _service(request: web.Request) -> Any:
        return services(request).get(service)

    async def list_records(request: web.Request) -> web.Response:
        return ok(await _service(request).list(accountability(request)))

    async def create_record(request: web.Request) -> web.Response:
        data = await read_admin_json(request)
        return ok(await _service(request).create(accountability(request), data), status=201)

    async def get_record(request: web.Request) -> web.Response:
        return ok(await _service(request).get(accountability(request), request.match_info[key]))

    async def update_record(request: web.Request) -> web.Response:
        data = await read_admin_json(request)
        return ok(await _service(request).update(accountability(request), request.match_info[key], data))

    async def delete_record(request: web.Request) -> web.Response:
        await _service(request).delete(accountability(request), request.match_info[key])
        return no_content()

    app.router.add_get("", list_records)
    app.router.add_post("", create_record)
    item = "/{" + key + "}"
    app.router.add_get(item, get_record)
    app.router.add_patch(item, update_record)
    app.router.add_delete(item, delete_record)
