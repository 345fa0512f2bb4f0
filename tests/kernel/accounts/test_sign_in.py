"""Sign-up, login, tokens, refresh rotation, logout, password change: over HTTP,
on both dialects."""

from __future__ import annotations

import asyncio

import jwt


async def test_first_user_is_admin_later_users_are_not(api, sign_up, password):
    first = await sign_up("Ada@Example.com")
    second = await sign_up("bob@example.com")
    assert first["role"] == "admin" and first["email"] == "ada@example.com"
    assert second["role"] is None
    me = await (await api.sign_in("ada@example.com", password)).get("/api/users/me")
    assert me.status == 200 and me.data["id"] == first["id"]
    assert "password_hash" not in me.data and "totp_secret" not in me.data


async def test_two_concurrent_first_sign_ups_make_one_admin(api, password):
    async def one(email):
        return await api.anonymous().post("/api/auth/sign-up", json={"email": email, "password": password})

    results = await asyncio.gather(*(one(f"u{i}@example.com") for i in range(4)))
    assert all(r.status == 201 for r in results), results
    assert sorted(r.data["role"] or "" for r in results) == ["", "", "", "admin"]


async def test_login_returns_tokens_and_sets_cookies(api, sign_up, password):
    await sign_up("ada@example.com")
    r = await api.anonymous().post("/api/auth/login", json={"email": "ada@example.com", "password": password})
    assert r.status == 200
    assert set(r.data) == {"access_token", "refresh_token", "expires"}
    assert r.data["expires"] == 900_000
    cookies = r.headers.getall("Set-Cookie")
    session = next(c for c in cookies if c.startswith("wos_session="))
    assert "HttpOnly" in session and "SameSite=Lax" in session and "Secure" not in session
    csrf = next(c for c in cookies if c.startswith("wos_csrf="))
    assert "HttpOnly" not in csrf


async def test_bad_credentials_and_tokens_are_401_never_anonymous(api, sign_up, password):
    await sign_up("ada@example.com")
    anon = api.anonymous()
    wrong = await anon.post("/api/auth/login", json={"email": "ada@example.com", "password": "nope-nope-nope"})
    unknown = await anon.post("/api/auth/login", json={"email": "who@example.com", "password": password})
    assert (wrong.status, wrong.code) == (401, "INVALID_CREDENTIALS")
    assert (unknown.status, unknown.code) == (401, "INVALID_CREDENTIALS")
    assert wrong.json["errors"][0]["message"] == unknown.json["errors"][0]["message"]
    garbage = await api.with_token("not-a-token").get("/api/users/me")
    assert (garbage.status, garbage.code) == (401, "INVALID_CREDENTIALS")
    forged = jwt.encode({"sub": "x", "sid": "y", "iat": 1, "exp": 4102444800, "typ": "access", "iss": "workeros"},
                        "another-secret-another-secret-xx", algorithm="HS256")
    assert (await api.with_token(forged).get("/api/users/me")).status == 401
    basic = await anon.get("/api/users/me", headers={"Authorization": "Basic YTpi"})
    assert basic.status == 401
    assert (await anon.get("/api/users/me")).status == 401


async def test_expired_access_token_is_token_expired(api, sign_up, password, wos_services):
    user = await sign_up("ada@example.com")
    session = (await api.sign_in("ada@example.com", password)).session
    claims = jwt.decode(session["access_token"], options={"verify_signature": False})
    expired = jwt.encode({**claims, "iat": 1000, "exp": 2000}, wos_services.accounts.secret, algorithm="HS256")
    r = await api.with_token(expired).get("/api/users/me")
    assert (r.status, r.code) == (401, "TOKEN_EXPIRED")
    assert user["id"] == claims["sub"]


async def test_refresh_rotates_and_replay_revokes_the_family(api, sign_up, password):
    await sign_up("ada@example.com")
    first = (await api.sign_in("ada@example.com", password)).session
    anon = api.anonymous()
    r = await anon.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert r.status == 200 and r.data["refresh_token"] != first["refresh_token"]
    second = r.data
    assert (await api.with_token(second["access_token"]).get("/api/users/me")).status == 200
    # Replaying the first (rotated) token: refused, and the whole family ends.
    replay = await anon.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert (replay.status, replay.code) == (401, "INVALID_CREDENTIALS")
    after = await anon.post("/api/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert after.status == 401
    assert (await api.with_token(second["access_token"]).get("/api/users/me")).status == 401
    bad = await anon.post("/api/auth/refresh", json={})
    assert (bad.status, bad.code) == (400, "INVALID_PAYLOAD")


async def test_logout_ends_the_session(api, sign_up, password):
    await sign_up("ada@example.com")
    me = await api.sign_in("ada@example.com", password)
    other = await api.sign_in("ada@example.com", password)
    r = await me.post("/api/auth/logout")
    assert r.status == 204
    assert (await me.get("/api/users/me")).status == 401
    refused = await api.anonymous().post("/api/auth/refresh", json={"refresh_token": me.session["refresh_token"]})
    assert refused.status == 401
    assert (await other.get("/api/users/me")).status == 200  # another session is untouched


async def test_password_change_revokes_every_session(api, sign_up, password):
    await sign_up("ada@example.com")
    me = await api.sign_in("ada@example.com", password)
    other = await api.sign_in("ada@example.com", password)
    wrong = await me.patch("/api/users/me", json={"password": "new password 1", "current_password": "x"})
    assert wrong.status == 401
    weak = await me.patch("/api/users/me", json={"password": "short", "current_password": password})
    assert (weak.status, weak.code) == (400, "INVALID_PAYLOAD")
    r = await me.patch("/api/users/me", json={"password": "new password 1", "current_password": password})
    assert r.status == 200
    assert (await me.get("/api/users/me")).status == 401
    assert (await other.get("/api/users/me")).status == 401
    old = await api.anonymous().post("/api/auth/login", json={"email": "ada@example.com", "password": password})
    assert old.status == 401
    assert (await (await api.sign_in("ada@example.com", "new password 1")).get("/api/users/me")).status == 200


async def test_cookie_session_needs_csrf_token_on_unsafe_methods(api, sign_up, password):
    await sign_up("ada@example.com")
    client = api.client
    async with client.post("/api/auth/login", json={"email": "ada@example.com", "password": password}) as r:
        assert r.status == 200
        csrf = r.cookies["wos_csrf"].value
    try:
        async with client.get("/api/users/me") as r:
            assert r.status == 200
        async with client.patch("/api/users/me", json={"first_name": "Ada"}) as r:
            assert r.status == 403
            assert (await r.json())["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        async with client.patch("/api/users/me", json={"first_name": "Ada"},
                                headers={"X-CSRF-Token": "0" * 64}) as r:
            assert r.status == 403
        async with client.patch("/api/users/me", json={"first_name": "Ada"}, headers={"X-CSRF-Token": csrf}) as r:
            assert r.status == 200 and (await r.json())["data"]["first_name"] == "Ada"
        async with client.post("/api/auth/logout", headers={"X-CSRF-Token": csrf}) as r:
            assert r.status == 204
        async with client.get("/api/users/me") as r:
            assert r.status == 401  # the cookie is gone (and revoked)
    finally:
        client.session.cookie_jar.clear()


async def test_sign_up_modes_and_validation(api, sign_up, make_server, password):
    anon = api.anonymous()
    assert (await anon.post("/api/auth/sign-up", json={"email": "nope", "password": password})).code == \
        "INVALID_PAYLOAD"
    assert (await anon.post("/api/auth/sign-up", json={"email": "a@example.com", "password": "x"})).status == 400
    assert (await anon.post("/api/auth/sign-up", data=b"{")).code == "INVALID_PAYLOAD"
    await sign_up("a@example.com")
    dup = await anon.post("/api/auth/sign-up", json={"email": "A@example.com", "password": password})
    assert (dup.status, dup.code) == (409, "CONFLICT")


async def test_concurrent_first_sign_ups_on_two_instances_make_one_admin(make_server, password):
    from aiohttp.test_utils import TestClient

    async with make_server() as one, make_server() as two, TestClient(one) as a, TestClient(two) as b:
        async def sign_up(client, email):
            async with client.post("/api/auth/sign-up", json={"email": email, "password": password}) as r:
                return r.status, (await r.json())["data"]["role"]

        results = await asyncio.gather(*(sign_up(c, f"u{i}@example.com") for i, c in enumerate((a, b, a, b))))
    assert [s for s, _ in results] == [201] * 4
    assert sorted(role or "" for _, role in results) == ["", "", "", "admin"]


async def _status(client, path, token):
    async with client.get(path, headers={"Authorization": f"Bearer {token}"}) as r:
        return r.status


async def test_revocation_reaches_another_instance_within_the_cache_ttl(make_server, password):
    """Two instances on one database, without a shared event bus: a logout on one
    is seen by the other at the latest ``auth.cache_ttl`` seconds later (and at
    once with the cache off)."""
    from aiohttp.test_utils import TestClient

    async with make_server(auth__cache_ttl=0.5) as one, make_server(auth__cache_ttl=0.5) as two, \
            make_server(auth__cache_ttl=0) as three, TestClient(one) as a, TestClient(two) as b, \
            TestClient(three) as c:
        async with a.post("/api/auth/sign-up", json={"email": "ada@example.com", "password": password}) as r:
            assert r.status == 201
        async with a.post("/api/auth/login", json={"email": "ada@example.com", "password": password,
                                                   "mode": "json"}) as r:
            token = (await r.json())["data"]["access_token"]
        assert await _status(b, "/api/users/me", token) == 200  # now cached on b
        assert await _status(c, "/api/users/me", token) == 200
        async with a.post("/api/auth/logout", headers={"Authorization": f"Bearer {token}"}) as r:
            assert r.status == 204
        assert await _status(a, "/api/users/me", token) == 401  # the revoking instance: at once
        assert await _status(c, "/api/users/me", token) == 401  # no cache: at once
        await asyncio.sleep(0.6)
        assert await _status(b, "/api/users/me", token) == 401  # within the TTL


async def test_concurrent_refreshes_with_one_token_let_at_most_one_through(api, sign_up, password):
    await sign_up("ada@example.com")
    session = (await api.sign_in("ada@example.com", password)).session
    results = await asyncio.gather(*(api.anonymous().post("/api/auth/refresh",
                                                          json={"refresh_token": session["refresh_token"]})
                                     for _ in range(4)))
    statuses = sorted(r.status for r in results)
    assert statuses.count(200) <= 1 and set(statuses) <= {200, 401}, results
    # Whatever the interleaving, the token was presented twice: the family is revoked.
    for r in results:
        if r.status == 200:
            assert (await api.with_token(r.data["access_token"]).get("/api/users/me")).status == 401


async def test_enabled_providers_are_listed(api):
    r = await api.anonymous().get("/api/auth/providers")
    assert r.status == 200
    assert {"name": "password", "kind": "credential"} in r.data
    assert {p["name"] for p in r.data} >= {"password", "magic-link", "otp"}
    # Providers that need an outside party (a directory, an identity provider) wait
    # for their configuration and say so; nothing else is missing here.
    assert {p["name"] for p in r.json["meta"]["unavailable"]} <= {"ldap", "saml"}


async def test_providers_that_cannot_work_are_left_out_with_the_reason(make_server):
    """Without a mail backend a magic link cannot be sent: the provider is not
    offered to sign-in screens, and the listing says why."""
    from aiohttp.test_utils import TestClient

    async with make_server(smtp__host="") as server, TestClient(server) as client:
        async with client.get("/api/auth/providers") as r:
            assert r.status == 200
            body = await r.json()
    names = {p["name"] for p in body["data"]}
    assert "password" in names and "magic-link" not in names
    reasons = {p["name"]: p["reason"] for p in body["meta"]["unavailable"]}
    assert "email backend" in reasons["magic-link"]


async def test_json_mode_sets_no_cookie_and_stores_no_browser_session(api, sign_up, password, wos_services):
    import sqlalchemy as sa

    from workeros.db.tables.accounts import sessions

    await sign_up("ada@example.com")
    r = await api.anonymous().post("/api/auth/login", json={"email": "ada@example.com", "password": password,
                                                            "mode": "json"})
    assert r.status == 200 and "Set-Cookie" not in r.headers
    async with wos_services.db.read() as conn:
        kinds = [row.kind for row in await conn.execute(sa.select(sessions.c.kind))]
    assert kinds == ["refresh"]
    bad = await api.anonymous().post("/api/auth/login", json={"email": "ada@example.com", "password": password,
                                                              "mode": "jwt"})
    assert (bad.status, bad.code) == (400, "INVALID_PAYLOAD")


async def test_expired_sessions_are_swept_at_the_next_sign_in(api, sign_up, password, wos_services):
    import datetime as dt

    import sqlalchemy as sa

    from workeros.db.tables.accounts import sessions

    await sign_up("ada@example.com")
    await api.sign_in("ada@example.com", password)
    await api.sign_in("ada@example.com", password)
    async with wos_services.db.transaction() as conn:
        await conn.execute(sessions.update().values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=1)))
    me = await api.sign_in("ada@example.com", password)
    async with wos_services.db.read() as conn:
        families = {row.family for row in await conn.execute(sa.select(sessions.c.family))}
    assert families == {jwt.decode(me.session["access_token"], options={"verify_signature": False})["sid"]}
    assert (await me.get("/api/users/me")).data["email"] == "ada@example.com"


async def test_users_list_and_end_their_own_sessions(api, sign_up, password):
    await sign_up("ada@example.com")
    await sign_up("bob@example.com")
    laptop = await api.sign_in("ada@example.com", password)
    phone = await api.sign_in("ada@example.com", password)
    bob = await api.sign_in("bob@example.com", password)
    listed = await phone.get("/api/users/me/sessions")
    assert listed.status == 200 and len(listed.data) == 2
    assert {s["provider"] for s in listed.data} == {"password"}
    assert all(s["ip"] and s["browser"] is False for s in listed.data)
    laptop_family = jwt.decode(laptop.session["access_token"], options={"verify_signature": False})["sid"]
    assert laptop_family in {s["id"] for s in listed.data}
    # Someone else's session is not found, not ended.
    assert (await bob.delete(f"/api/users/me/sessions/{laptop_family}")).status == 404
    assert (await laptop.get("/api/users/me")).status == 200
    assert (await phone.delete(f"/api/users/me/sessions/{laptop_family}")).status == 204
    assert (await laptop.get("/api/users/me")).status == 401
    assert (await phone.get("/api/users/me")).status == 200
    remaining = [s["id"] for s in (await phone.get("/api/users/me/sessions")).data]
    assert len(remaining) == 1 and laptop_family not in remaining
    assert (await api.anonymous().get("/api/users/me/sessions")).status == 401
