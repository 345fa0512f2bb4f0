"""Middlewares: request ids, the body limit, the caller's identity, and the one
place where typed errors become the contract's envelope."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import re
from collections.abc import Awaitable, Callable

from aiohttp import web
from sqlalchemy import exc as sa_exc

from workeros import errors
from workeros.accountability import Accountability
from workeros.db.database import schema_race
from workeros.http.keys import ACCOUNTABILITY, OWN_CREDENTIALS, REQUEST_ID, SERVICES, SETTINGS
from workeros.http.web import error_response, handler_streams_body, refuse_read_only

log = logging.getLogger("workeros.http")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIds:
    """Request ids without ``uuid4()`` (a system call per request): a random
    64-bit prefix per process, drawn again in a forked child, and a counter,
    as 32 hex characters like a uuid's."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count()

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter):016x}"


request_ids = RequestIds()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=request_ids.reset)


@web.middleware
async def edge_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The outermost kernel layer, one middleware for what every request needs
    (each layer is a coroutine and a partial per request): the request id, the
    body limit and the NUL check before the handler, and the one place where
    typed errors become the contract's envelope."""
    incoming = request.headers.get("X-Request-Id")
    rid = incoming if incoming and _REQUEST_ID.fullmatch(incoming) else request_ids.next()
    request[REQUEST_ID] = rid
    try:
        try:
            _check_body_limit(request)
            _check_hostile_input(request)
            response = await handler(request)
        except (asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception as exc:
            response = _error_response(request, exc)
    except web.HTTPException as exc:
        exc.headers["X-Request-Id"] = rid
        raise
    if not response.prepared:
        response.headers["X-Request-Id"] = rid
    return response


def _error_response(request: web.Request, exc: Exception) -> web.Response:
    """``exc`` as the contract's error envelope; re-raises an HTTP exception
    below 400 (a redirect)."""
    rid = request.get(REQUEST_ID)
    if isinstance(exc, errors.WorkerosError):
        if exc.status >= 500:
            log.error("%s %s failed: %s", request.method, request.path, exc.message, extra={"request_id": rid})
        return error_response(exc, request_id=rid)
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:
            raise exc
        cls = errors.BY_STATUS.get(exc.status)
        if cls is None:
            cls = errors.InvalidPayload if exc.status < 500 else errors.Internal
        error = cls()
        error.status = exc.status
        response = error_response(error, request_id=rid)
        if exc.status == 405 and "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    if isinstance(exc, sa_exc.TimeoutError):
        # Every database connection of this process stayed busy for the pool's
        # whole wait: the server is overloaded, the request may be retried.
        log.warning("%s %s waited too long for a database connection; answered 503", request.method, request.path,
                    extra={"request_id": rid})
        return error_response(errors.ServiceUnavailable("The server is busy; retry shortly", retry_after=1),
                              request_id=rid)
    if isinstance(exc, sa_exc.DBAPIError) and schema_race(exc):
        log.info("%s %s ran into a schema change; answered 503", request.method, request.path,
                 extra={"request_id": rid})
        return error_response(errors.ServiceUnavailable("The schema changed while the request ran; retry",
                                                        retry_after=1), request_id=rid)
    log.error("unhandled error in %s %s", request.method, request.path, exc_info=exc, extra={"request_id": rid})
    return error_response(errors.Internal(), request_id=rid)


def _check_body_limit(request: web.Request) -> None:
    """Refuse a declared body over the limit before reading a byte of it (reads
    without a Content-Length are capped by aiohttp's ``client_max_size``).
    Routes marked :func:`workeros.http.web.streams_body` enforce their own."""
    length = request.content_length
    if length is None:
        return
    limit = request.config_dict[SETTINGS]["server.max_body_size"]
    if length > limit and not handler_streams_body(request):
        raise errors.PayloadTooLarge(f"Request body is larger than {limit} bytes")


def _check_hostile_input(request: web.Request) -> None:
    """Refuse a NUL character in the path or in a query parameter (name or value)
    before any service sees it: neither database stores one, and PostgreSQL's
    driver fails on it. Only a raw target holding ``%00`` (or a NUL) can decode
    to one, so most requests are passed on without decoding anything."""
    raw = request.raw_path
    if "%00" not in raw and "\x00" not in raw:
        return
    if "\x00" in request.path or any("\x00" in k or "\x00" in v for k, v in request.query.items()):
        raise errors.InvalidQuery("The request must not contain NUL characters (%00)")


#: POST routes a session cookie may call without the CSRF header.
CSRF_EXEMPT = frozenset({"/api/auth/refresh", "/api/auth/logout"})


@web.middleware
async def accountability_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Resolve the caller once per request. A bad or expired token is 401, never
    anonymous; a read-only API key on a route that writes is 403."""
    services = request.config_dict.get(SERVICES)
    # (The sub-app's keys are not in config_dict yet while the root's middlewares run.)
    if services is not None and any(app.get(OWN_CREDENTIALS) for app in request.match_info.apps):
        request[ACCOUNTABILITY] = Accountability.anonymous(ip=request.remote,
                                                           user_agent=request.headers.get("User-Agent"))
    elif services is not None:
        # Refresh and sign-out read the session cookie themselves and need no
        # CSRF token (as a client in cookie mode sends them); the method only
        # decides whether the cookie needs one.
        method = "GET" if request.method == "POST" and request.path in CSRF_EXEMPT else request.method
        acc = request[ACCOUNTABILITY] = await services.authenticate(
            headers=request.headers,
            cookies=request.cookies,
            method=method,
            ip=request.remote,
        )
        # A read-only API key changes nothing, whichever way in (docs/auth.md).
        refuse_read_only(request, acc)
    return await handler(request)


MIDDLEWARES = (edge_middleware, accountability_middleware)
