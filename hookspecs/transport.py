"""Transport APIs: REST, GraphQL, MCP, admin — each an aiohttp sub-app.

Every transport calls the same kernel services with the caller's
``Accountability``; none reads or writes user data around them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
