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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import hookspec
from ._entries import Backend

if TYPE_CHECKING:
    from aiohttp import web
    from sqlalchemy.ext.asyncio import AsyncConnection

    from workeros.accountability import Accountability
    from workeros.services import Services


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
    ``ready(services) -> str | None``
        Optional: ``None`` when the provider can work with this instance's
        configuration, else the reason it cannot (for example "no email backend
        is configured"). ``GET /api/auth/providers`` lists only providers that
        can work and names the others with their reason.
    ``entries(services) -> list[dict]``
        Optional: what ``GET /api/auth/providers`` shows for this provider, one
        dict per way to sign in, each ``{name, type, label, start_url}`` (the
        ``oauth`` provider lists each configured identity provider). Default: one
        entry with the provider's name, ``kind`` as type, ``description`` as label
        and ``start_url``.
    ``start_url``
        The route that begins this provider's sign-in (``/api/auth/login``), for
        the default listing entry.

    The accounts service offers providers: ``issue_session``, ``user_row``,
    ``find_user``, ``check_second_factor``, ``external_login`` (find or create
    the account an outside party vouched for, then issue the session),
    ``create_external_user``, ``login_failed``, one-time tokens (``create_token``,
    ``peek_token``, ``consume_token``: stored hashed, expire, work once), mail
    (``send``, ``require_mailer``, ``url_for``) and ``limiter.hit(rule, account=,
    ip=)`` for rate limits. See ``docs/auth.md``.
    """

    kind: str = "credential"
    routes: Callable[[], Iterable[web.AbstractRouteDef]] | None = None
    factory: Callable[..., Any] = lambda services: None
    ready: Callable[[Any], str | None] | None = None
    entries: Callable[[Any], list[dict[str, Any]]] | None = None
    start_url: str | None = None


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


@dataclass
class AuthEvent:
    """One authentication event as the auth lifecycle hooks see it.

    ``name`` is ``login``, ``signup``, ``logout`` or ``password_reset``.
    ``user`` is the user's id (``None`` before a sign-up inserts it), ``email``
    their address where known, ``provider`` the auth provider (``password``,
    ``magic-link``, ``oauth``…), ``accountability`` the caller (ip and user
    agent), ``data`` what the event carries (sign-up profile fields, which
    filter hooks may change). ``connection`` is the open transaction in filter
    hooks (``None`` in action hooks).
    """

    name: str
    services: Services
    accountability: Accountability
    user: str | None = None
    email: str | None = None
    provider: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    connection: AsyncConnection | None = None


@hookspec
def workeros_auth_before_login(event: AuthEvent) -> None:
    """Filter: a user is about to be signed in (every provider ends in the same session issuance).

    Called inside the transaction that records it, before it happens. ``user`` and ``provider`` are set; ``data`` is empty.
    Raise a ``WorkerosError`` to refuse it: nothing changes and the caller gets
    that error.

    :param event: the event; ``connection`` is the open transaction.
    :return: nothing (an awaitable is awaited). Not firstresult.

    .. versionadded:: 0.2

    Example::

        @hookimpl
        def workeros_auth_before_login(event):
            if event.provider == "password" and event.user in LOCKED_OUT:
                raise Forbidden("This account is locked")
    """


@hookspec
def workeros_auth_after_login(event: AuthEvent) -> None:
    """Action: a user was signed in.

    Called after the commit, in a background task: the response does not wait
    for it, and an error is logged, never returned.

    :param event: the event (``connection`` is ``None``).
    :return: nothing (an awaitable is awaited in the background). Not
        firstresult.

    .. versionadded:: 0.2

    Example::

        @hookimpl
        def workeros_auth_after_login(event):
            log.info("%s signed in with %s", event.user, event.provider)
    """


@hookspec
def workeros_auth_before_signup(event: AuthEvent) -> None:
    """Filter: an account is about to be created (sign-up, invitation, or a first sign-in through an outside provider).

    Called inside the transaction that records it, before it happens. ``email`` and ``provider`` are set (``user`` too, after); before the insert ``data`` holds the profile fields (``first_name``, ``last_name``…) and may be changed in place.
    Raise a ``WorkerosError`` to refuse it: nothing changes and the caller gets
    that error.

    :param event: the event; ``connection`` is the open transaction.
    :return: nothing (an awaitable is awaited). Not firstresult.

    .. versionadded:: 0.2

    Example::

        @hookimpl
        def workeros_auth_before_signup(event):
            if not event.email.endswith("@example.com"):
                raise Forbidden("Sign-up is for example.com addresses")
    """


@hookspec
def workeros_auth_after_signup(event: AuthEvent) -> None:
    """Action: a user was created.

    Called after the commit, in a background task: the response does not wait
    for it, and an error is logged, never returned.

    :param event: the event (``connection`` is ``None``).
    :return: nothing (an awaitable is awaited in the background). Not
        firstresult.

    .. versionadded:: 0.2

    Example::

        @hookimpl
        def workeros_auth_after_signup(event):
            return crm.add_contact(event.email)
    """


@hookspec
def workeros_auth_before_logout(event: AuthEvent) -> None:
    """Filter: a session is about to end at the user's request.

    Called inside the transaction that records it, before it happens. ``user`` is set.
    Raise a ``WorkerosError`` to refuse it: nothing changes and the caller gets
    that error.

    :param event: the event; ``connection`` is the open transaction.
    :return: nothing (an awaitable is awaited). Not firstresult.

    .. versionadded:: 0.2

    Example::

        @hookimpl
        def workeros_auth_before_logout(event):
            audit.note("logout", event.user)
    """


@hookspec
def workeros_auth_after_logout(event: AuthEvent) -> None:
    """Action: a user was signed out.

    Called after the commit, in a background task: the response does not wait
    for it, and an error is logged, never returned.

    :param event: the event (``connection`` is ``None``).
    :return: nothing (an awaitable is awaited in the background). Not
        firstresult.

    .. versionadded:: 0.2

    Example::

        @hookimpl
        def workeros_auth_after_logout(event):
            return cache.forget(event.user)
    """


@hookspec
def workeros_auth_before_password_reset(event: AuthEvent) -> None:
    """Filter: a password is about to be set with a reset token.

    Called inside the transaction that records it, before it happens. ``user`` and ``email`` are set.
    Raise a ``WorkerosError`` to refuse it: nothing changes and the caller gets
    that error.

    :param event: the event; ``connection`` is the open transaction.
    :return: nothing (an awaitable is awaited). Not firstresult.

    .. versionadded:: 0.2

    Example::

        @hookimpl
        def workeros_auth_before_password_reset(event):
            if event.user in FROZEN:
                raise Forbidden("This account is frozen")
    """


@hookspec
def workeros_auth_after_password_reset(event: AuthEvent) -> None:
    """Action: a user's password was reset (every session of the user has ended).

    Called after the commit, in a background task: the response does not wait
    for it, and an error is logged, never returned.

    :param event: the event (``connection`` is ``None``).
    :return: nothing (an awaitable is awaited in the background). Not
        firstresult.

    .. versionadded:: 0.2

    Example::

        @hookimpl
        def workeros_auth_after_password_reset(event):
            return mailer.notify_security_team(event.email)
    """
