"""OAuth 2.0 / OpenID Connect sign-in over real HTTP against an OIDC provider on
loopback (``oidc_idp.py``), both dialects."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import orjson
import sqlalchemy as sa
from callers import ApiResponse
from oidc_idp import TestIdP

from workeros.db.tables.accounts import users
from workeros.http.keys import SERVICES


def services(api: Any) -> Any:
    return api.server.app[SERVICES]


async def start(api: Any, name: str = "test", **params: str) -> tuple[int, str | None, ApiResponse]:
    async with api.client.get(f"/api/auth/oauth/{name}", params=params, allow_redirects=False) as r:
        return r.status, r.headers.get("Location"), ApiResponse(r.status, r.headers, await r.read())


async def at_idp(url: str) -> str:
    """The browser at the provider: it approves and sends the browser back."""
    async with aiohttp.ClientSession() as s, s.get(url, allow_redirects=False) as r:
        assert r.status == 302, await r.text()
        return r.headers["Location"]


async def callback(api: Any, url: str) -> ApiResponse:
    parts = urlsplit(url)
    assert parts.netloc == "wos.test"
    async with api.client.get(f"{parts.path}?{parts.query}", allow_redirects=False) as r:
        return ApiResponse(r.status, r.headers, await r.read())


async def sign_in(api: Any, idp: TestIdP, via: str = "test", redirect: str | None = None, **claims: Any
                  ) -> ApiResponse:
    idp.approve(**claims)
    status, location, body = await start(api, via, **({"redirect": redirect} if redirect else {}))
    assert status == 302, body
    return await callback(api, await at_idp(location))


async def me(api: Any) -> ApiResponse:
    return await api.anonymous().get("/api/users/me")


def ada(**extra: Any) -> dict[str, Any]:
    return {"sub": "ada-1", "email": "ada@example.com", "email_verified": True, "given_name": "Ada",
            "family_name": "Lovelace", **extra}


async def test_listed_with_label_and_start_url(api, idp):
    r = await api.anonymous().get("/api/auth/providers")
    entries = {p["name"]: p for p in r.data}
    assert entries["test"] == {"name": "test", "kind": "redirect", "type": "oauth", "label": "Test IdP",
                               "start_url": "/api/auth/oauth/test"}
    assert entries["hub"]["label"] == "GitHub" and entries["hub"]["start_url"] == "/api/auth/oauth/hub"
    assert "oauth" not in entries


async def test_authorization_request_uses_pkce_state_and_nonce(api, idp):
    status, location, _ = await start(api)
    assert status == 302
    q = parse_qs(urlsplit(location).query)
    assert location.startswith(f"{idp.url}/authorize?")
    assert q["code_challenge_method"] == ["S256"] and len(q["code_challenge"][0]) == 43
    assert q["redirect_uri"] == ["http://wos.test/api/auth/oauth/test/callback"]
    assert q["state"][0] and q["nonce"][0] and q["state"] != q["nonce"]
    assert set(q["scope"][0].split()) == {"openid", "email", "profile"}
    cookie = api.client.session.cookie_jar.filter_cookies(api.client.make_url("/api/auth/oauth/test/callback"))
    assert "wos_oauth" in cookie


async def test_first_user_is_admin_then_default_role_and_login_activity(api, idp):
    r = await sign_in(api, idp, redirect="/welcome", **ada())
    assert r.status == 303 and r.headers["Location"] == "/welcome"
    set_cookies = " ".join(r.headers.getall("Set-Cookie"))
    assert "wos_session=" in set_cookies and "wos_csrf=" in set_cookies and "HttpOnly" in set_cookies
    assert "access_token" not in r.headers["Location"]
    first = await me(api)
    assert first.status == 200 and first.data["email"] == "ada@example.com"
    assert first.data["role"] == "admin" and first.data["first_name"] == "Ada"
    # The token exchange sent the PKCE verifier.
    assert idp.token_requests[-1]["code_verifier"]
    api.client.session.cookie_jar.clear()
    r = await sign_in(api, idp, sub="bob-1", email="bob@example.com", email_verified=True)
    assert r.status == 303
    second = await me(api)
    assert second.data["email"] == "bob@example.com" and second.data["role"] is None
    activity = (await api.as_admin().get("/api/activity", params={"limit": "50"})).data
    logins = [a for a in activity if a["action"] == "auth.login"]
    assert {a["meta"]["provider"] for a in logins} == {"oauth:test"}
    # The password column stays empty: the account has no password.
    async with services(api).db.read() as conn:
        hashes = (await conn.execute(sa.select(users.c.password_hash))).scalars().all()
    assert hashes == [None, None]


async def test_same_subject_signs_in_to_same_account(api, idp):
    await sign_in(api, idp, **ada())
    first = (await me(api)).data["id"]
    api.client.session.cookie_jar.clear()
    # The address changed at the provider: the link by subject still holds.
    await sign_in(api, idp, **ada(email="ada@new.example"))
    assert (await me(api)).data["id"] == first


async def test_links_existing_account_by_verified_email_only(api, idp, sign_up):
    owner = await sign_up("owner@example.com")  # first user (admin)
    existing = await sign_up("ada@example.com")
    r = await sign_in(api, idp, **ada(email_verified=False))
    assert (r.status, r.code) == (401, "INVALID_CREDENTIALS")
    assert r.json["errors"][0]["extensions"]["reason"] == "email_unverified"
    assert (await me(api)).status == 401
    r = await sign_in(api, idp, **ada())
    assert r.status == 303
    signed_in = (await me(api)).data
    assert signed_in["id"] == existing["id"] != owner["id"]
    failed = [a for a in (await api.as_admin().get("/api/activity")).data if a["action"] == "auth.login_failed"]
    assert failed and failed[0]["meta"]["reason"] == "email_unverified"


async def test_misbehaving_id_tokens_are_refused(api, idp):
    for fault, reason in [("nonce", "id_token_invalid"), ("aud", "id_token_invalid"),
                          ("expired", "id_token_expired"), ("signature", "id_token_invalid"),
                          ("iss", "id_token_invalid")]:
        idp.misbehave = fault
        r = await sign_in(api, idp, **ada())
        assert (r.status, r.code) == (401, "INVALID_CREDENTIALS"), (fault, r)
        assert r.json["errors"][0]["extensions"]["reason"] == reason, fault
        assert (await me(api)).status == 401
    assert (await sign_in(api, idp, **ada())).status == 303


async def test_state_is_single_use_and_bound_to_the_browser(api, idp):
    idp.approve(**ada())
    _, location, _ = await start(api)
    back = await at_idp(location)
    # Another browser (no state cookie) cannot finish this sign-in.
    async with aiohttp.ClientSession() as other:
        parts = urlsplit(back)
        async with other.get(api.client.make_url(f"{parts.path}?{parts.query}"), allow_redirects=False) as r:
            body = await r.json()
            assert r.status == 401 and body["errors"][0]["extensions"]["reason"] == "state_mismatch"
    # The state was used by that attempt: the rightful browser cannot replay it either.
    r = await callback(api, back)
    assert (r.status, r.code) == (401, "INVALID_CREDENTIALS")
    # A forged or missing state.
    r = await callback(api, "http://wos.test/api/auth/oauth/test/callback?code=x&state=forged")
    assert r.status == 401
    r = await callback(api, "http://wos.test/api/auth/oauth/test/callback?code=x")
    assert r.status == 401 and r.json["errors"][0]["extensions"]["reason"] == "state_missing"


async def test_pkce_verifier_must_match(api, idp):
    """The provider refuses a token request whose verifier does not match the
    challenge; the sign-in fails cleanly."""
    idp.approve(**ada())
    _, location, _ = await start(api)
    back = await at_idp(location)
    code = parse_qs(urlsplit(back).query)["code"][0]
    idp.codes[code]["challenge"] = "A" * 43
    r = await callback(api, back)
    assert (r.status, r.code) == (401, "INVALID_CREDENTIALS")
    assert r.json["errors"][0]["extensions"]["reason"] == "code_refused"


async def test_redirect_allowlist(api, idp):
    for bad in ("https://evil.example/", "//evil.example/x", "https://app.example.com/afterlife",
                "javascript:alert(1)", "https://app.example.com.evil.example/after"):
        status, _, body = await start(api, redirect=bad)
        assert (status, body.code) == (400, "INVALID_PAYLOAD"), bad
    r = await sign_in(api, idp, redirect="https://app.example.com/after/ok?x=1", **ada())
    assert r.status == 303 and r.headers["Location"] == "https://app.example.com/after/ok?x=1"
    status, _, _ = await start(api, redirect="http://wos.test/dashboard")
    assert status == 302


async def test_unknown_provider_and_provider_error(api, idp):
    status, _, body = await start(api, "nope")
    assert (status, body.code) == (404, "NOT_FOUND")
    _, location, _ = await start(api)
    state = parse_qs(urlsplit(location).query)["state"][0]
    r = await callback(api, f"http://wos.test/api/auth/oauth/test/callback?error=access_denied&state={state}")
    assert r.status == 401 and r.json["errors"][0]["extensions"]["reason"] == "provider_error"


async def test_a_provider_that_cannot_be_reached_is_a_502(api, idp):
    status, _, body = await start(api, "down")
    assert (status, body.code) == (502, "BAD_GATEWAY")
    assert "127.0.0.1" not in body.raw.decode()


async def test_github_style_provider_uses_the_verified_primary_email(api, idp):
    idp.emails = [{"email": "old@example.com", "verified": False, "primary": False},
                         {"email": "ada@example.com", "verified": True, "primary": True}]
    r = await sign_in(api, idp, "hub", id=42, login="ada", name="Ada Lovelace", email="old@example.com")
    assert r.status == 303
    data = (await me(api)).data
    assert data["email"] == "ada@example.com" and data["last_name"] == "Lovelace"
    # No verified address at all: it cannot be linked to anything, nor create an account.
    api.client.session.cookie_jar.clear()
    idp.emails = [{"email": "eve@example.com", "verified": False, "primary": True}]
    r = await sign_in(api, idp, "hub", id=43, login="eve", email=None)
    assert r.status == 401 and r.json["errors"][0]["extensions"]["reason"] == "email_missing"


async def test_group_claim_maps_to_a_role(api, idp, sign_up):
    await sign_up("owner@example.com")
    editor = (await api.as_admin().post("/api/roles", json={"name": "editor"})).data["id"]
    services(api).accounts.providers["oauth"].providers["groups"].role_map = {"wos-editors": editor}
    r = await sign_in(api, idp, "groups", **ada(groups=["staff", "wos-editors"]))
    assert r.status == 303
    assert (await me(api)).data["role"] == editor


async def test_closed_sign_up_refuses_strangers_but_not_the_first_user(make_server, idp):
    from aiohttp.test_utils import TestClient
    from callers import Api

    async with make_server(auth__sign_up="closed") as server, TestClient(server) as client:
        api = Api(client)
        assert (await sign_in(api, idp, **ada())).status == 303
        client.session.cookie_jar.clear()
        r = await sign_in(api, idp, sub="eve", email="eve@example.com", email_verified=True)
        assert (r.status, r.code) == (403, "FORBIDDEN")


async def test_failed_callbacks_are_rate_limited(make_server, idp):
    from aiohttp.test_utils import TestClient
    from callers import Api

    async with make_server(ratelimit__login__per_ip=3) as server, TestClient(server) as client:
        api = Api(client)
        statuses = [(await callback(api, "http://wos.test/api/auth/oauth/test/callback?code=x&state=bad")).status
                    for _ in range(5)]
    assert statuses == [401, 401, 401, 429, 429]


def test_providers_from_the_config_file_and_the_environment():
    """TOML tables arrive as dotted keys, the environment as JSON: both give the same providers."""
    import workeros_oauth
    from workeros_oauth import Provider, nest_providers

    from workeros.config import Settings

    toml = {"oauth": {"providers": {
        "github": {"client_id": "gh", "client_secret": "s"},
        "keycloak": {"issuer": "https://sso.example.com/realms/main", "client_id": "wos", "client_secret": "s",
                     "role_claim": "groups", "role_map": {"/editors": "r1", "a.b": "r2"}}}}}
    env = {"WORKEROS_OAUTH_PROVIDERS": orjson.dumps(toml["oauth"]["providers"]).decode()}
    for settings in (Settings(file=toml, env={}), Settings(env=env)):
        settings.declare(workeros_oauth.workeros_register_config_keys(), "workeros-oauth")
        providers = nest_providers(settings["oauth.providers"])
        assert Provider.from_settings("github", providers["github"]).preset == "github"
        keycloak = Provider.from_settings("keycloak", providers["keycloak"])
        assert keycloak.preset == "oidc" and keycloak.role_map == {"/editors": "r1", "a.b": "r2"}
