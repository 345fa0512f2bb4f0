"""Authentication providers: password, magic link, OTP, OAuth, passkeys, SAML, LDAP.

Every provider ends in the same place: it establishes *which user* is signing in and
asks the kernel's accounts service to issue a session
(``await services.accounts.issue_session(user_id, provider=name, ip=..., user_agent=...)``,
answered over HTTP with ``workeros_rest.users.session_response``). How it gets
there is its own business: verify a credential in one request (password, LDAP),
send something and verify it later (magic link, OTP), or redirect to an outside
party and handle its callback (OAuth, SAML). Providers contribute HTTP routes under
``/api/auth/``; the REST transport mounts them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import hookspec
from ._entries import Backend

if TYPE_CHECKING:
    from aiohttp import web


@dataclass(frozen=True)
class AuthProvider(Backend):
    """An authentication provider.

    ``kind``
        ``credential`` (verifies something sent in one request), ``challenge``
        (sends a link or code, verifies it later) or ``redirect`` (an outside
        identity provider and a callback).
    ``routes()``
        Route definitions (``aiohttp.web.RouteDef``) whose paths are relative to
        ``/api/auth`` (``/login`` is served at ``/api/auth/login``). Handlers reach
        the services through ``request.config_dict[workeros.http.keys.SERVICES]``.
    ``factory(services) -> Any``
        Optional provider object (may be awaitable), built once when the accounts
        service opens and kept in ``services.accounts.providers[name]`` for other
        transports (GraphQL, MCP) that sign users in without HTTP routes. It may
        also extend the accounts service: the ``otp`` provider installs
        ``services.accounts.second_factor``, which every sign-in of a user with
        TOTP enrolled must pass.

    The accounts service offers providers: ``issue_session``, ``user_row``,
    ``find_user``, ``check_second_factor``, one-time tokens (``create_token``,
    ``peek_token``, ``consume_token``: stored hashed, expire, work once), mail
    (``send``, ``require_mailer``, ``url_for``) and ``limiter.hit(rule, account=,
    ip=)`` for rate limits. See ``docs/auth.md``.
    """

    kind: str = "credential"
    routes: Callable[[], Iterable[web.AbstractRouteDef]] | None = None
    factory: Callable[..., Any] = lambda services: None


@hookspec
def workeros_register_auth_providers() -> Sequence[AuthProvider]:
    """Register authentication providers.

    Called once per boot. Every registered provider named in the
    ``auth.providers`` setting is enabled (the default enables every installed
    provider); the ``password`` provider is essential. Two providers with one name is
    a startup error naming both distributions.

    :return: provider entries. Not firstresult.

    .. versionadded:: 0.1

    Example::

        @hookimpl
        def workeros_register_auth_providers():
            routes = web.RouteTableDef()

            @routes.post("/ldap/login")
            async def login(request): ...

            return [AuthProvider(name="ldap", kind="credential", routes=lambda: routes)]
    """
