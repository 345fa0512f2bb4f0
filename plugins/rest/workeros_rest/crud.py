"""The REST routes that only hand a request to one service method: one table
row each instead of a handler each.

A row names the HTTP method, the path (relative to ``/api``), the service
method, and how to read the body. The handler calls
``method(accountability, *path parameters in path order, body?, **query)`` and
answers ``ok(result)`` (201 for a create), or 204 for a DELETE.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from workeros.api import accountability, no_content, ok

Reader = Callable[[web.Request], Awaitable[Any]]


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    #: the service method called
    call: str
    #: reads the body passed after the path parameters (None: no body)
    body: Reader | None = None
    #: 201 Created instead of 200
    created: bool = False
    #: keyword arguments taken from the query string
    query: Callable[[web.Request], Mapping[str, Any]] | None = None
    #: reshapes the result for the response (``fields`` selection)
    shape: Callable[[web.Request, Any], Any] | None = None


def add(routes: web.RouteTableDef, service: Callable[[web.Request], Any], calls: Iterable[Call]) -> None:
    """Add a handler for each of ``calls`` on ``routes``, in order (a fixed
    path such as ``/users/me`` goes before ``/users/{id}``)."""
    for call in calls:
        routes.route(call.method, call.path)(_handler(service, call))


def _handler(service: Callable[[web.Request], Any], call: Call) -> Callable[[web.Request], Awaitable[web.Response]]:
    names = re.findall(r"\{(\w+)\}", call.path)

    async def handler(request: web.Request) -> web.Response:
        args: list[Any] = [request.match_info[name] for name in names]
        if call.body is not None:
            args.append(await call.body(request))
        kwargs = call.query(request) if call.query is not None else {}
        result = await getattr(service(request), call.call)(accountability(request), *args, **kwargs)
        if call.method == "DELETE":
            return no_content()
        if call.shape is not None:
            result = call.shape(request, result)
        return ok(result, status=201 if call.created else 200)

    handler.__name__ = handler.__qualname__ = call.call
    return handler
