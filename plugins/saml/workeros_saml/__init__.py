"""SAML 2.0 single sign-on (this server is the service provider).

Each identity provider is an entry of ``saml.idps`` (Okta, Azure AD / Entra ID,
Keycloak, Google…). For an IdP named ``okta``:

- ``GET /api/auth/saml/okta/metadata``: this server's SP metadata (entity ID,
  assertion consumer service) to give the IdP;
- ``GET /api/auth/saml/okta/login?redirect=<page>``: SP-initiated sign-in, a
  302 to the IdP with an AuthnRequest (remembered for ``saml.request_ttl``
  seconds, answered once);
- ``POST /api/auth/saml/okta/acs``: the IdP posts its response here (answering
  our request, or unsolicited: IdP-initiated). The assertion must be signed by
  the configured certificate, addressed to this server, within its validity
  (``saml.clock_skew``), and new: assertion IDs are remembered until they
  expire, so a replayed response is refused. The person is signed in like a
  password login (account created at the first sign-in; the very first
  account is admin; group/role attributes map to roles) and sent on with a
  303 to the page, which must be on ``saml.redirect_allowlist``.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from workeros.api import (
    ExternalIdentity,
    InvalidCredentials,
    InvalidPayload,
    NotFound,
    ServiceUnavailable,
    WorkerosError,
    client,
    identity_login,
    keyed_hash,
    services,
    session_redirect,
)
from workeros.hookspecs import hookimpl
from workeros.hookspecs.auth import AuthProvider
from workeros.hookspecs.lifecycle import ConfigKey

from .sp import IdentityProvider, SamlConfigError, SamlRefused, seconds_until

NAME = "saml"
REQUEST_KIND = "saml_request"
ASSERTION_KIND = "saml_assertion"
MAX_RESPONSE = 512 * 1024
log = logging.getLogger("workeros.saml")
routes = web.RouteTableDef()


class Saml:
    """The configured IdPs (built once; a broken entry is named at use, not at boot)."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.idps: dict[str, IdentityProvider] = {}
        self.errors: dict[str, str] = {}
        for name, config in (settings["saml.idps"] or {}).items():
            try:
                self.idps[name] = IdentityProvider(str(name), config, settings)
            except SamlConfigError as exc:
                log.error("SAML: %s", exc)
                self.errors[str(name)] = str(exc)

    def get(self, name: str) -> IdentityProvider:
        if name in self.errors:
            raise ServiceUnavailable(f"SAML sign-in with {name!r} is misconfigured: {self.errors[name]}")
        idp = self.idps.get(name)
        if idp is None:
            raise NotFound(f"No SAML identity provider named {name!r}")
        return idp

    def redirect_target(self, value: Any) -> str:
        """Where to send the browser after sign-in: ``value`` when it is on the
        allowlist (a path on this server, or a URL starting with an allowed
        prefix), else ``saml.default_redirect``."""
        default = self.settings["saml.default_redirect"]
        if not isinstance(value, str) or not value or len(value) > 2048:
            return default
        if value.startswith("/") and not value.startswith("//") and "\\" not in value:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https"):
            return default
        for allowed in self.settings["saml.redirect_allowlist"] or []:
            a = urlsplit(allowed)
            if (parts.scheme, parts.netloc) == (a.scheme, a.netloc) and parts.path.startswith(a.path or "/"):
                return value
        return default


def _saml(request: web.Request) -> Saml:
    svc = services(request)
    saml = svc.accounts.providers.get(NAME)
    if saml is None:
        raise ServiceUnavailable("SAML sign-in is not enabled")
    return saml


@routes.get("/saml/{idp}/metadata")
async def metadata(request: web.Request) -> web.Response:
    idp = _saml(request).get(request.match_info["idp"])
    return web.Response(text=idp.metadata(), content_type="application/samlmetadata+xml")


@routes.get("/saml/{idp}/login")
async def login(request: web.Request) -> web.Response:
    saml = _saml(request)
    idp = saml.get(request.match_info["idp"])
    target = saml.redirect_target(request.query.get("redirect"))
    url, request_id = idp.login_redirect(target)
    accounts = services(request).accounts
    async with accounts.db.transaction() as conn:
        await accounts.create_token(conn, REQUEST_KIND, user=None, email=None, token=f"{idp.name}:{request_id}",
                                    ttl=saml.settings["saml.request_ttl"], meta={"redirect": target})
    raise web.HTTPFound(url)


async def _failed(svc: Any, idp: str, reason: str, ip: str | None, user_agent: str | None) -> None:
    from workeros.api import Accountability, activity

    async with svc.db.transaction() as conn:
        await activity.record(conn, action="auth.login_failed", collection="wos_users", item=None,
                              accountability=Accountability(user=None, role=None, ip=ip, user_agent=user_agent,
                                                            origin="auth"),
                              meta={"provider": NAME, "idp": idp, "reason": reason[:255]})


@routes.post("/saml/{idp}/acs")
async def acs(request: web.Request) -> web.Response:
    saml = _saml(request)
    idp = saml.get(request.match_info["idp"])
    svc = services(request)
    who = client(request)
    if request.content_length and request.content_length > MAX_RESPONSE:
        raise InvalidPayload("SAMLResponse is too large")
    form = await request.post()
    saml_response = form.get("SAMLResponse")
    if not isinstance(saml_response, str) or not saml_response.strip():
        raise InvalidPayload("SAMLResponse is required (an HTML form post from the identity provider)",
                             field="SAMLResponse")
    await svc.accounts.limiter.hit("login", ip=who["ip"])
    try:
        return await _consume(request, saml, idp, saml_response, form.get("RelayState"), who)
    except SamlRefused as exc:
        log.warning("SAML response from %s refused: %s", idp.name, exc)
        await _failed(svc, idp.name, str(exc), **who)
        raise InvalidCredentials(f"SAML response refused: {exc}") from None
    except InvalidCredentials as exc:
        await _failed(svc, idp.name, exc.message, **who)
        raise


async def _consume(request: web.Request, saml: Saml, idp: IdentityProvider, saml_response: str, relay: Any,
                   who: dict[str, Any]) -> web.Response:
    svc = services(request)
    accounts = svc.accounts
    in_response_to = _in_response_to(idp, saml_response)
    stored = None
    if in_response_to is not None:
        # An answer to a request of ours: it must be one we sent and have not seen answered.
        try:
            stored = await accounts.peek_token(REQUEST_KIND, f"{idp.name}:{in_response_to}")
        except (InvalidCredentials, InvalidPayload):
            raise SamlRefused("it answers a sign-in request this server did not make, or one already "
                              "answered") from None
        except WorkerosError:
            raise SamlRefused("it answers a sign-in request that has expired") from None
    elif not idp.allow_idp_initiated:
        raise SamlRefused("unsolicited (IdP-initiated) responses are not accepted from this provider")
    assertion = idp.parse(saml_response, expected_request=in_response_to)
    ttl = seconds_until(assertion.not_on_or_after, saml.settings["saml.request_ttl"])
    marker = keyed_hash(accounts.secret, NAME, idp.name, assertion.assertion_id)
    if not await accounts.use_once(ASSERTION_KIND, None, marker, ttl=ttl + saml.settings["saml.clock_skew"]):
        raise SamlRefused("this assertion was already used (replay)")
    if stored is not None:
        async with accounts.db.transaction() as conn:
            await accounts.consume_token(conn, REQUEST_KIND, f"{idp.name}:{in_response_to}")
        target = (stored.get("meta") or {}).get("redirect") or saml.redirect_target(None)
    else:
        target = saml.redirect_target(relay)
    profile = idp.profile(assertion)
    if not profile["email"]:
        raise InvalidCredentials("The identity provider sent no email address (map an email attribute, or "
                                 "use the emailAddress NameID format)")
    identity = ExternalIdentity(provider=NAME, subject=f"{idp.name}:{assertion.name_id}", email=profile["email"],
                                first_name=profile["first_name"], last_name=profile["last_name"],
                                role=profile["role"], extra={"idp": idp.name})
    session = await identity_login(accounts, identity, browser=True, create=saml.settings["saml.create_users"],
                                   sync_role=saml.settings["saml.sync_role"], check_second_factor=False, **who)
    return session_redirect(request, session, target)


def _in_response_to(idp: IdentityProvider, saml_response: str) -> str | None:
    from onelogin.saml2.response import OneLogin_Saml2_Response

    try:
        value = OneLogin_Saml2_Response(idp.settings, saml_response).get_in_response_to()
    except Exception:
        raise SamlRefused("SAMLResponse is not a SAML response") from None
    if value is not None and (not isinstance(value, str) or len(value) > 256):
        raise SamlRefused("InResponseTo is not valid")
    return value or None


@hookimpl
def workeros_register_config_keys() -> list[ConfigKey]:
    return [
        ConfigKey("saml.idps", "dict", {},
                  "Identity providers by name: {entity_id, sso_url, x509cert, label?, email_attribute?, "
                  "first_name_attribute?, last_name_attribute?, groups_attribute?, role_map?, "
                  "allow_idp_initiated?, want_messages_signed?, name_id_format?} (see docs/auth.md)"),
        ConfigKey("saml.sp_entity_id", "str", None, "This server's entity ID ({idp} is replaced by the IdP's name; "
                  "default: <server.public_url>/api/auth/saml/<idp>/metadata)"),
        ConfigKey("saml.sp_x509cert", "str", None, "Certificate (PEM) of this server, published in the metadata "
                  "(with saml.sp_private_key: AuthnRequests are signed)"),
        ConfigKey("saml.sp_private_key", "str", None, "Private key (PEM) signing AuthnRequests", secret=True),
        ConfigKey("saml.clock_skew", "int", 120, "Seconds the IdP's clock may be off from ours"),
        ConfigKey("saml.request_ttl", "int", 600, "Seconds an SP-initiated sign-in may take at the IdP"),
        ConfigKey("saml.default_redirect", "str", "/", "Page the browser is sent to after sign-in"),
        ConfigKey("saml.redirect_allowlist", "list", [],
                  "Other places (URL prefixes) a sign-in may send the browser to (paths on this server always may)"),
        ConfigKey("saml.create_users", "bool", True, "Create an account at a person's first SAML sign-in"),
        ConfigKey("saml.sync_role", "bool", True, "Apply the mapped role at every sign-in (when a group matches)"),
    ]


def _ready(svc: Any) -> str | None:
    saml = svc.accounts.providers.get(NAME) if svc.accounts is not None else None
    if not svc.settings["saml.idps"]:
        return "no identity provider is configured (saml.idps)"
    if saml is not None and not saml.idps:
        return "; ".join(saml.errors.values())
    return None


def _entries(svc: Any) -> list[dict[str, Any]]:
    """One sign-in button per configured identity provider."""
    saml = svc.accounts.providers.get(NAME) if svc.accounts is not None else None
    idps = saml.idps if saml is not None else {}
    return [{"name": NAME, "idp": name, "type": "saml", "label": idp.label,
             "start_url": f"/api/auth/saml/{name}/login"} for name, idp in sorted(idps.items())]


@hookimpl
def workeros_register_auth_providers() -> list[AuthProvider]:
    return [AuthProvider(name=NAME, kind="redirect", routes=lambda: routes, factory=lambda svc: Saml(svc.settings),
                         ready=_ready, entries=_entries, description="SAML 2.0 single sign-on")]
