"""Identity-provider configuration: presets (Google, GitHub, Apple) and any
OpenID Connect issuer found by discovery; the token exchange and the ID token
check (authlib).

``oauth.providers`` maps a name (the one in the URLs) to its settings::

    [oauth.providers.google]
    client_id = "…apps.googleusercontent.com"
    client_secret = "…"

    [oauth.providers.keycloak]
    preset = "oidc"
    issuer = "https://sso.example.com/realms/main"
    client_id = "workeros"
    client_secret = "…"
    role_claim = "groups"
    role_map = { "/admins" = "<role id>" }
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from authlib.integrations.httpx_client import AsyncOAuth2Client
from joserfc import jwt
from joserfc.errors import ExpiredTokenError, InvalidKeyIdError, JoseError
from joserfc.jwk import ECKey, KeySet

from workeros.api import BadGateway, InvalidCredentials

#: Preset name -> defaults. ``issuer`` means OpenID Connect with discovery.
PRESETS: dict[str, dict[str, Any]] = {
    "google": {"label": "Google", "issuer": "https://accounts.google.com", "scopes": ["openid", "email", "profile"]},
    "github": {"label": "GitHub", "authorize_url": "https://github.com/login/oauth/authorize",
               "token_url": "https://github.com/login/oauth/access_token",
               "userinfo_url": "https://api.github.com/user", "emails_url": "https://api.github.com/user/emails",
               "scopes": ["read:user", "user:email"]},
    "apple": {"label": "Apple", "issuer": "https://appleid.apple.com", "scopes": ["openid", "name", "email"],
              "response_mode": "form_post"},
    "oidc": {"scopes": ["openid", "email", "profile"]},
}

KNOWN_KEYS = frozenset({
    "preset", "label", "client_id", "client_secret", "issuer", "discovery_url", "scopes", "authorize_url",
    "token_url", "userinfo_url", "emails_url", "jwks_uri", "team_id", "key_id", "private_key", "role_claim",
    "role_map", "allow_sign_up", "trust_email", "extra_params", "response_mode",
})
#: Seconds discovery documents and key sets are reused.
CACHE_SECONDS = 3600
#: Seconds of clock skew accepted on ``exp``/``iat``.
LEEWAY = 60
HTTP_TIMEOUT = 10.0
ALGORITHMS = ["RS256", "RS384", "RS512", "ES256", "ES384", "PS256", "EdDSA"]


class ConfigError(ValueError):
    """A provider's settings cannot work (named in GET /api/auth/providers)."""


@dataclass
class Identity:
    """Who the provider says signed in."""

    subject: str
    email: str | None
    email_verified: bool
    profile: dict[str, Any] = field(default_factory=dict)
    claims: dict[str, Any] = field(default_factory=dict)


@dataclass
class Provider:
    name: str
    preset: str
    label: str
    client_id: str
    client_secret: str | None
    scopes: list[str]
    issuer: str | None = None
    discovery_url: str | None = None
    authorize_url: str | None = None
    token_url: str | None = None
    userinfo_url: str | None = None
    emails_url: str | None = None
    jwks_uri: str | None = None
    team_id: str | None = None
    key_id: str | None = None
    private_key: str | None = None
    role_claim: str | None = None
    role_map: dict[str, str] = field(default_factory=dict)
    allow_sign_up: bool = True
    trust_email: bool = False
    extra_params: dict[str, str] = field(default_factory=dict)
    response_mode: str | None = None
    _discovery: tuple[float, dict[str, Any]] | None = None
    _jwks: tuple[float, Any] | None = None

    @property
    def oidc(self) -> bool:
        return bool(self.issuer or self.discovery_url)

    # -- configuration -------------------------------------------------------------------
    @classmethod
    def from_settings(cls, name: str, raw: Any) -> Provider:
        if not isinstance(raw, dict):
            raise ConfigError(f"oauth.providers.{name} must be a table of settings")
        unknown = set(raw) - KNOWN_KEYS
        if unknown:
            raise ConfigError(f"oauth.providers.{name}: unknown setting(s) {', '.join(sorted(unknown))}")
        preset = raw.get("preset") or (name if name in PRESETS else "oidc")
        if preset not in PRESETS:
            raise ConfigError(f"oauth.providers.{name}: preset must be one of {', '.join(PRESETS)}")
        merged = {**PRESETS[preset], **{k: v for k, v in raw.items() if v is not None}}
        if not merged.get("client_id"):
            raise ConfigError(f"oauth.providers.{name}: client_id is not set")
        if preset == "apple":
            if not all(merged.get(k) for k in ("team_id", "key_id", "private_key")):
                raise ConfigError(f"oauth.providers.{name}: Apple needs team_id, key_id and private_key")
        elif not merged.get("client_secret"):
            raise ConfigError(f"oauth.providers.{name}: client_secret is not set")
        if preset == "oidc" and not (merged.get("issuer") or merged.get("discovery_url")):
            raise ConfigError(f"oauth.providers.{name}: an OpenID Connect provider needs issuer or discovery_url")
        if not (merged.get("issuer") or merged.get("discovery_url")) and not (
                merged.get("authorize_url") and merged.get("token_url") and merged.get("userinfo_url")):
            raise ConfigError(f"oauth.providers.{name}: needs authorize_url, token_url and userinfo_url")
        scopes = merged.get("scopes")
        if isinstance(scopes, str):
            scopes = scopes.split()
        role_map = merged.get("role_map") or {}
        if not isinstance(role_map, dict):
            raise ConfigError(f"oauth.providers.{name}: role_map must map claim values to role ids")
        return cls(name=name, preset=preset, label=str(merged.get("label") or name), client_id=str(merged["client_id"]),
                   client_secret=merged.get("client_secret"), scopes=list(scopes or []),
                   issuer=merged.get("issuer"), discovery_url=merged.get("discovery_url"),
                   authorize_url=merged.get("authorize_url"), token_url=merged.get("token_url"),
                   userinfo_url=merged.get("userinfo_url"), emails_url=merged.get("emails_url"),
                   jwks_uri=merged.get("jwks_uri"), team_id=merged.get("team_id"), key_id=merged.get("key_id"),
                   private_key=merged.get("private_key"), role_claim=merged.get("role_claim"),
                   role_map={str(k): str(v) for k, v in role_map.items()},
                   allow_sign_up=bool(merged.get("allow_sign_up", True)), trust_email=bool(merged.get("trust_email")),
                   extra_params={str(k): str(v) for k, v in (merged.get("extra_params") or {}).items()},
                   response_mode=merged.get("response_mode"))

    # -- endpoints -----------------------------------------------------------------------
    async def _get_json(self, url: str, **kwargs: Any) -> Any:
        try:
            async with httpx.AsyncClient(timeout=HTTP_TIMEOUT) as http:
                response = await http.get(url, **kwargs)
        except httpx.HTTPError as exc:
            raise BadGateway(f"The identity provider {self.label} cannot be reached ({type(exc).__name__})") from None
        if response.status_code != 200:
            raise BadGateway(f"The identity provider {self.label} answered {response.status_code}")
        try:
            return response.json()
        except ValueError:
            raise BadGateway(f"The identity provider {self.label} answered something that is not JSON") from None

    async def discovery(self) -> dict[str, Any]:
        if not self.oidc:
            return {}
        if self._discovery is None or self._discovery[0] < time.monotonic():
            url = self.discovery_url or self.issuer.rstrip("/") + "/.well-known/openid-configuration"  # type: ignore[union-attr]
            doc = await self._get_json(url)
            if not isinstance(doc, dict) or not doc.get("issuer"):
                raise BadGateway(f"The discovery document of {self.label} has no issuer")
            if self.issuer and doc["issuer"].rstrip("/") != self.issuer.rstrip("/"):
                raise BadGateway(f"The discovery document of {self.label} names another issuer")
            self._discovery = (time.monotonic() + CACHE_SECONDS, doc)
        return self._discovery[1]

    async def endpoint(self, name: str) -> str:
        own = getattr(self, name)
        if own:
            return own
        key = {"authorize_url": "authorization_endpoint", "token_url": "token_endpoint",
               "userinfo_url": "userinfo_endpoint", "jwks_uri": "jwks_uri"}[name]
        value = (await self.discovery()).get(key)
        if not value:
            raise BadGateway(f"The identity provider {self.label} does not publish {key}")
        return value

    async def keys(self, refresh: bool = False) -> Any:
        if refresh or self._jwks is None or self._jwks[0] < time.monotonic():
            doc = await self._get_json(await self.endpoint("jwks_uri"))
            try:
                self._jwks = (time.monotonic() + CACHE_SECONDS, KeySet.import_key_set(doc))
            except (JoseError, ValueError, TypeError, KeyError):
                raise BadGateway(f"The key set of {self.label} cannot be read") from None
        return self._jwks[1]

    def secret(self) -> str | None:
        """The client secret; for Apple a short-lived ES256 JWT made with the key."""
        if self.preset != "apple":
            return self.client_secret
        t = int(time.time())
        return jwt.encode(
            {"alg": "ES256", "kid": self.key_id},
            {"iss": self.team_id, "iat": t, "exp": t + 300, "aud": "https://appleid.apple.com", "sub": self.client_id},
            ECKey.import_key(self.private_key), algorithms=["ES256"])

    def client(self, redirect_uri: str) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(client_id=self.client_id, client_secret=self.secret(), scope=" ".join(self.scopes),
                                 redirect_uri=redirect_uri, code_challenge_method="S256", timeout=HTTP_TIMEOUT)

    async def authorization_url(self, *, redirect_uri: str, state: str, nonce: str, verifier: str) -> str:
        async with self.client(redirect_uri) as client:
            extra = dict(self.extra_params)
            if self.oidc:
                extra["nonce"] = nonce
            if self.response_mode:
                extra["response_mode"] = self.response_mode
            url, _ = client.create_authorization_url(await self.endpoint("authorize_url"), state=state,
                                                     code_verifier=verifier, **extra)
        return url

    # -- the callback ----------------------------------------------------------------------
    async def identity(self, *, code: str, redirect_uri: str, nonce: str, verifier: str) -> Identity:
        token_url = await self.endpoint("token_url")
        try:
            async with self.client(redirect_uri) as client:
                token = await client.fetch_token(token_url, code=code, code_verifier=verifier,
                                                 headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise BadGateway(f"The identity provider {self.label} cannot be reached ({type(exc).__name__})") from None
        except Exception as exc:  # authlib raises OAuthError and friends for refusals
            raise InvalidCredentials(f"The identity provider {self.label} refused the code",
                                     reason="code_refused") from exc
        if self.oidc:
            id_token = token.get("id_token")
            if not isinstance(id_token, str):
                raise InvalidCredentials(f"{self.label} sent no ID token", reason="id_token_invalid")
            claims = await self.verify_id_token(id_token, nonce)
            if self.userinfo_url and not claims.get("email"):
                claims.update(await self._get_json(self.userinfo_url, headers=_bearer(token)))
            return _from_claims(claims, trust_email=self.trust_email)
        return await self._github_like(token)

    async def verify_id_token(self, id_token: str, nonce: str) -> dict[str, Any]:
        """Signature (JWKS), ``iss``, ``aud`` (and ``azp``), ``exp``, ``iat`` and ``nonce``."""
        issuer = (await self.discovery()).get("issuer") or self.issuer
        token = None
        for attempt in (0, 1):
            try:
                token = jwt.decode(id_token, await self.keys(refresh=attempt == 1), algorithms=ALGORITHMS)
                break
            except InvalidKeyIdError as exc:  # the provider may have rotated its keys: fetch them once more
                if attempt == 1:
                    raise _invalid(self, "id_token_invalid", exc) from None
            except (JoseError, ValueError) as exc:
                raise _invalid(self, "id_token_invalid", exc) from None
        assert token is not None
        registry = jwt.JWTClaimsRegistry(
            leeway=LEEWAY, iss={"essential": True, "value": issuer}, sub={"essential": True},
            aud={"essential": True, "value": self.client_id}, exp={"essential": True}, iat={"essential": True},
            nonce={"essential": True, "value": nonce})
        try:
            registry.validate(token.claims)
        except ExpiredTokenError as exc:
            raise _invalid(self, "id_token_expired", exc) from None
        except (JoseError, ValueError) as exc:
            raise _invalid(self, "id_token_invalid", exc) from None
        aud = token.claims.get("aud")
        if isinstance(aud, list) and len(aud) > 1 and token.claims.get("azp") != self.client_id:
            raise _invalid(self, "id_token_invalid", ValueError("azp is not this client"))
        return dict(token.claims)

    async def _github_like(self, token: dict[str, Any]) -> Identity:
        headers = {**_bearer(token), "Accept": "application/json"}
        user = await self._get_json(await self.endpoint("userinfo_url"), headers=headers)
        if not isinstance(user, dict) or user.get("id") is None:
            raise BadGateway(f"{self.label} did not say who signed in")
        email, verified = None, False
        if self.emails_url:
            emails = await self._get_json(self.emails_url, headers=headers)
            chosen = [e for e in emails if isinstance(e, dict) and e.get("verified")] if isinstance(emails, list) else []
            chosen.sort(key=lambda e: not e.get("primary"))
            if chosen:
                email, verified = chosen[0].get("email"), True
        if email is None and user.get("email"):
            email, verified = user["email"], self.trust_email
        name = str(user.get("name") or "").split(" ", 1)
        profile = {"first_name": name[0], "last_name": name[1] if len(name) > 1 else None}
        return Identity(subject=str(user["id"]), email=email, email_verified=verified, profile=profile, claims=user)

    def role_for(self, identity: Identity) -> str | None:
        """The first ``role_map`` entry matching the ``role_claim`` value(s)."""
        if not self.role_claim or not self.role_map:
            return None
        value = identity.claims.get(self.role_claim)
        values = value if isinstance(value, list) else [value]
        for v in values:
            if str(v) in self.role_map:
                return self.role_map[str(v)]
        return None


def _invalid(provider: Provider, reason: str, exc: Exception) -> InvalidCredentials:
    detail = getattr(exc, "description", None) or str(exc)
    return InvalidCredentials(f"The ID token from {provider.label} is not valid: {detail[:200]}", reason=reason)


def _bearer(token: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token.get('access_token', '')}"}


def _from_claims(claims: dict[str, Any], *, trust_email: bool) -> Identity:
    verified = claims.get("email_verified")
    if isinstance(verified, str):  # Apple sends "true"
        verified = verified.lower() == "true"
    profile = {"first_name": claims.get("given_name"), "last_name": claims.get("family_name")}
    return Identity(subject=str(claims["sub"]), email=claims.get("email"),
                    email_verified=bool(verified) or (trust_email and bool(claims.get("email"))),
                    profile=profile, claims=claims)
