"""OAuth 2.0 / OpenID Connect sign-in (Google, GitHub, Apple, any OIDC issuer).

``GET /api/auth/oauth/{provider}?redirect=<url>`` answers 302 to the provider's
authorization page (authorization code with PKCE S256, ``state`` and, for
OpenID Connect, ``nonce``). The three values are stored server-side as a
one-time token that lives ``oauth.state_ttl`` seconds and is bound to this
browser by a random value in a short-lived HttpOnly cookie.

``GET`` (or ``POST``, for Apple's ``form_post``) ``/api/auth/oauth/{provider}/callback``
uses the state once, checks the cookie, exchanges the code (with the PKCE
verifier), verifies the ID token (signature against the provider's JWKS,
``iss``, ``aud``, ``exp``, ``nonce``), finds or creates the account and answers
303 to the redirect target with the session cookies set. Outside accounts are
remembered in ``wos_oauth_identities``; an existing account is linked by email
only when the provider says the address is verified. Redirect targets must be
relative paths on this server, under ``server.public_url``, or match an
``oauth.redirect_allowlist`` entry. Failures answer in the error envelope
(401 ``INVALID_CREDENTIALS`` with a ``reason``) and write an
``auth.login_failed`` activity row; every callback counts against the
``login`` rate limit of the client's IP.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from aiohttp import web

from workeros.api import (
    InvalidCredentials,
    InvalidPayload,
    NotFound,
    WorkerosError,
    client,
    keyed_hash,
    now,
    random_token,
    services,
    session_redirect,
)
from workeros.hookspecs import hookimpl
from workeros.hookspecs.auth import AuthProvider
from workeros.hookspecs.data import ExportSection
from workeros.hookspecs.lifecycle import ConfigKey, Migrations

from .providers import ConfigError, Identity, Provider
from .tables import identities

__all__ = ["OAuth", "Provider", "nest_providers"]

log = logging.getLogger("workeros.oauth")
STATE_KIND = "oauth_state"
STATE_COOKIE = "wos_oauth"
COOKIE_PATH = "/api/auth/oauth"

routes = web.RouteTableDef()


class OAuth:
    """The configured identity providers (``services.accounts.providers["oauth"]``)."""

    def __init__(self, svc: Any) -> None:
        self.services = svc
        self.settings = svc.settings
        self.providers: dict[str, Provider] = {}
        self.errors: dict[str, str] = {}
        for name, raw in nest_providers(self.settings["oauth.providers"] or {}).items():
            try:
                self.providers[name] = Provider.from_settings(name, raw)
            except ConfigError as exc:
                self.errors[name] = str(exc)
                log.error("%s", exc)

    def get(self, name: str) -> Provider:
        provider = self.providers.get(name)
        if provider is None:
            raise NotFound(f"No OAuth provider named {name[:64]!r} is configured")
        return provider

    def callback_url(self, name: str) -> str:
        return f"{self.settings['server.public_url'].rstrip('/')}{COOKIE_PATH}/{name}/callback"

    def redirect_target(self, value: str | None) -> str:
        """``value`` when it is allowed (else 400); the default target when absent."""
        if not value:
            return self.settings["oauth.default_redirect"] or "/"
        if len(value) > 2048 or any(c in value for c in "\r\n\\") or value.startswith("//"):
            raise InvalidPayload("redirect is not an allowed target", field="redirect")
        if value.startswith("/"):
            return value
        allowed = [self.settings["server.public_url"], *(self.settings["oauth.redirect_allowlist"] or [])]
        if any(entry and _under(value, entry) for entry in allowed):
            return value
        raise InvalidPayload("redirect is not an allowed target (see oauth.redirect_allowlist)", field="redirect")

    def entries(self) -> list[dict[str, Any]]:
        return [{"name": name, "type": "oauth", "label": p.label, "start_url": f"{COOKIE_PATH}/{name}"}
                for name, p in sorted(self.providers.items())]


def nest_providers(raw: dict[str, Any]) -> dict[str, Any]:
    """``oauth.providers`` as ``{name: {setting: value}}``. From the environment
    (JSON) it is nested already; from the config file's tables it arrives with
    dotted keys (``google.client_id``, ``keycloak.role_map./editors``)."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        name, dot, rest = str(key).partition(".")
        if not dot:
            out.setdefault(name, {}).update(value if isinstance(value, dict) else {"": value})
            continue
        field, dot, sub = rest.partition(".")
        entry = out.setdefault(name, {})
        if dot:
            entry.setdefault(field, {})[sub] = value
        else:
            entry[field] = value
    return out


def _under(url: str, entry: str) -> bool:
    """Same scheme, host and port as ``entry``, and its path under entry's path."""
    a, b = urlsplit(url), urlsplit(entry)
    if not a.scheme or not a.netloc or (a.scheme, a.netloc.lower()) != (b.scheme, b.netloc.lower()):
        return False
    base = b.path.rstrip("/")
    return a.path == base or a.path.startswith(base + "/") or not base


def _oauth(request: web.Request) -> OAuth:
    svc = services(request)
    oauth = svc.accounts.providers.get("oauth")
    if oauth is None:
        raise NotFound("OAuth sign-in is not enabled")
    if not svc.settings["server.public_url"]:
        # Not offered here (GET /api/auth/providers names the reason), like an unknown provider.
        raise NotFound("OAuth sign-in is not available: server.public_url is not set")
    return oauth


def _cookie_options(request: web.Request, provider: Provider) -> dict[str, Any]:
    s = services(request).settings
    # form_post callbacks (Apple) are cross-site POSTs: a Lax cookie would not come back.
    if provider.response_mode == "form_post":
        return {"path": COOKIE_PATH, "httponly": True, "samesite": "None", "secure": True}
    return {"path": COOKIE_PATH, "httponly": True, "samesite": "Lax", "secure": bool(s["auth.cookie_secure"])}


@routes.get("/oauth/{provider}")
async def start(request: web.Request) -> web.Response:
    oauth = _oauth(request)
    name = request.match_info["provider"]
    provider = oauth.get(name)
    redirect = oauth.redirect_target(request.query.get("redirect"))
    accounts = services(request).accounts
    state, nonce, verifier, binding = random_token(), random_token(), random_token(nbytes=48), random_token()
    url = await provider.authorization_url(redirect_uri=oauth.callback_url(name), state=state, nonce=nonce,
                                           verifier=verifier)
    ttl = oauth.settings["oauth.state_ttl"]
    async with accounts.db.transaction() as conn:
        await accounts.create_token(conn, STATE_KIND, user=None, email=None, ttl=ttl, token=state, meta={
            "provider": name, "nonce": nonce, "verifier": verifier, "redirect": redirect,
            "binding": keyed_hash(accounts.secret, "oauth-binding", binding)})
    response = web.Response(status=302, headers={"Location": url, "Cache-Control": "no-store"})
    response.set_cookie(STATE_COOKIE, binding, max_age=ttl, **_cookie_options(request, provider))
    return response


@routes.get("/oauth/{provider}/callback")
@routes.post("/oauth/{provider}/callback")
async def callback(request: web.Request) -> web.Response:
    oauth = _oauth(request)
    name = request.match_info["provider"]
    provider = oauth.get(name)
    params: dict[str, Any] = dict(request.query)
    if request.method == "POST":
        params.update({k: v for k, v in (await request.post()).items() if isinstance(v, str)})
    who = client(request)
    accounts = services(request).accounts
    await accounts.limiter.hit("login", ip=who["ip"])
    identity: Identity | None = None
    try:
        state = params.get("state")
        if not isinstance(state, str) or not state:
            raise InvalidCredentials("The sign-in has no state", reason="state_missing")
        async with accounts.db.transaction() as conn:
            row = await accounts.consume_token(conn, STATE_KIND, state)
        meta = row["meta"] or {}
        binding = request.cookies.get(STATE_COOKIE, "")
        if meta.get("provider") != name or not binding or \
                keyed_hash(accounts.secret, "oauth-binding", binding) != meta.get("binding"):
            raise InvalidCredentials("This sign-in was started in another browser or for another provider",
                                     reason="state_mismatch")
        if params.get("error"):
            raise InvalidCredentials(f"{provider.label} refused the sign-in: {str(params['error'])[:100]}",
                                     reason="provider_error")
        code = params.get("code")
        if not isinstance(code, str) or not code or len(code) > 4096:
            raise InvalidCredentials("The sign-in has no code", reason="code_missing")
        identity = await provider.identity(code=code, redirect_uri=oauth.callback_url(name), nonce=meta["nonce"],
                                           verifier=meta["verifier"])
        session = await _sign_in(accounts, provider, identity, who)
    except WorkerosError as exc:
        if isinstance(exc, InvalidCredentials):
            await accounts.login_failed(provider=f"oauth:{name}", reason=str(exc.extensions.get("reason", "refused")),
                                        email=identity.email if identity else None, **who)
        raise
    response = session_redirect(request, session, meta["redirect"])
    response.del_cookie(STATE_COOKIE, path=COOKIE_PATH)
    return response


async def _sign_in(accounts: Any, provider: Provider, identity: Identity, who: dict[str, Any]) -> Any:
    key = f"oauth:{provider.name}"[:32]
    async with accounts.db.read() as conn:
        linked = (await conn.execute(sa.select(identities.c.id, identities.c.user).where(
            identities.c.provider == provider.name, identities.c.subject == identity.subject[:255]))).first()
    if linked is not None and await accounts.user_row(linked.user) is None:
        async with accounts.db.transaction() as conn:  # the account was deleted: forget the stale link
            await conn.execute(identities.delete().where(identities.c.id == linked.id))
        linked = None

    async def remember(conn: Any, user: str) -> None:
        t = now()
        if linked is not None:
            await conn.execute(identities.update().where(identities.c.id == linked.id)
                               .values(last_login_at=t, email=identity.email and identity.email[:255]))
        else:
            await conn.execute(identities.insert().values(
                id=str(uuid.uuid4()), provider=provider.name, subject=identity.subject[:255], user=user,
                email=identity.email and identity.email[:255], created_at=t, last_login_at=t))

    if linked is None and not identity.email:
        raise InvalidCredentials(f"{provider.label} did not share an email address", reason="email_missing")
    return await accounts.external_login(
        provider=key, user=linked.user if linked else None, email=identity.email,
        email_verified=identity.email_verified, role=provider.role_for(identity), profile=identity.profile,
        create=provider.allow_sign_up, on_user=remember, **who)


def _ready(svc: Any) -> str | None:
    if not svc.settings["server.public_url"]:
        return "server.public_url is not set, so OAuth callbacks cannot be built"
    oauth = svc.accounts.providers.get("oauth")
    if oauth is None or not oauth.providers:
        errors = "; ".join(oauth.errors.values()) if oauth is not None and oauth.errors else ""
        return f"no OAuth provider is configured (oauth.providers){': ' + errors if errors else ''}"
    return None


def _entries(svc: Any) -> list[dict[str, Any]]:
    return svc.accounts.providers["oauth"].entries()


@hookimpl
def workeros_register_config_keys() -> list[ConfigKey]:
    return [
        ConfigKey("oauth.providers", "dict", {}, "Identity providers by name: {client_id, client_secret, preset "
                  "(google, github, apple, oidc), issuer, scopes, role_claim, role_map, …}; see docs/auth.md",
                  secret=True),
        ConfigKey("oauth.redirect_allowlist", "list", [], "Absolute URLs (prefixes) a sign-in may return to besides "
                  "relative paths and server.public_url"),
        ConfigKey("oauth.default_redirect", "str", "/", "Where a sign-in returns when it names no redirect"),
        ConfigKey("oauth.state_ttl", "int", 600, "Seconds a started sign-in may take to come back"),
    ]


@hookimpl
def workeros_register_export_sections() -> list[ExportSection]:
    """Full exports carry the oauth plugin's rows."""
    return [ExportSection("oauth", tables=[identities])]


@hookimpl
def workeros_register_migrations() -> list[Migrations]:
    return [Migrations("oauth", str(Path(__file__).parent / "migrations"))]


@hookimpl
def workeros_register_auth_providers() -> list[AuthProvider]:
    return [AuthProvider(name="oauth", kind="redirect", routes=lambda: routes, factory=OAuth, ready=_ready,
                         entries=_entries, description="OAuth 2.0 / OpenID Connect identity providers")]
