"""Transport APIs: REST, GraphQL, MCP, admin — each an aiohttp sub-app.

Every transport calls the same kernel services with the caller's
``Accountability``; none reads or writes user data around them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import hookspec
from ._entries import Backend


@dataclass(frozen=True)
class Transport(Backend):
    """A transport API mounted at ``prefix``.

    ``factory(root: web.Application) -> web.Application`` builds the sub-app (may
    be awaitable). It runs while the root app is built, before the database is open,
    so handlers reach services at request time through
    ``request.config_dict[workeros.http.keys.SERVICES]``. Sub-apps resolve by longest
    prefix, so ``/api/graphql`` and ``/api`` can both be mounted.
    """

    prefix: str = "/api"


@hookspec
def workeros_register_transports() -> Sequence[Transport]:
    """Register transport APIs.

    Called once per boot. Every installed transport is mounted (disable one by
    disabling its plugin). Two transports with one name or one prefix is a startup
    error naming both distributions.

    :return: transport entries. Not firstresult.

    .. versionadded:: 0.1

    Example::

        @hookimpl
        def workeros_register_transports():
            def build(root):
                app = web.Application()
                app.router.add_post("", graphql_handler)
                return app
            return [Transport(name="graphql", prefix="/api/graphql", factory=build)]
    """


@dataclass(frozen=True)
class GraphQLQuery:
    """A root query field a plugin adds to the GraphQL schema, once per readable
    collection it applies to, named ``<collection>_<suffix>``.

    ``applies(collection, readable)`` — whether the collection gets the field
    (``readable``: the caller's readable field names, ``None`` for all).
    ``arguments(slug, collection)`` — its SDL argument list (the collection's
    ``<slug>_Filter`` input may be used). ``resolve(services, accountability,
    slug, arguments, fields)`` returns the rows (may be awaitable); ``fields``
    are the items-service ``fields`` of the query's selection, so the call reads
    only what was selected under the caller's permissions. ``row_fields`` —
    extra fields of those rows (GraphQL name → SDL type, names starting with
    ``_``), added to the collection's object type (``null`` elsewhere).
    """

    suffix: str
    applies: Callable[[Any, frozenset[str] | None], bool]
    arguments: Callable[[str, Any], str]
    resolve: Callable[[Any, Any, str, dict[str, Any], tuple[str, ...]], Any]
    row_fields: Mapping[str, str] = field(default_factory=dict)


@hookspec
def workeros_register_graphql_queries() -> Sequence[GraphQLQuery]:
    """Add root query fields to the GraphQL schema of each role.

    Called once per boot by the GraphQL transport (when it is installed); each
    role's schema then has the field for every collection the role may read
    and ``applies`` accepts. The vectors plugin adds ``<slug>_nearest`` this way.

    :return: query fields. Not firstresult.

    .. versionadded:: 0.2

    Example::

        @hookimpl
        def workeros_register_graphql_queries():
            async def newest(services, acc, slug, args, fields):
                rows, _ = await services.items.query(acc, slug, Query(fields=fields, sort=("-id",), limit=1))
                return rows
            return [GraphQLQuery("newest", applies=lambda c, readable: True,
                                 arguments=lambda slug, c: "", resolve=newest)]
    """
