"""Malformed and hostile input to the auth routes: always a clear 4xx in the
contract's envelope, never a 500 or an anonymous pass (both dialects)."""

from __future__ import annotations

import base64
import json

import jwt


def _unsigned(claims):
    def part(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


async def test_malformed_bodies_are_400(api):
    anon = api.anonymous()
    for path in ("/api/auth/login", "/api/auth/sign-up", "/api/auth/password/request", "/api/auth/password/reset",
                 "/api/auth/refresh", "/api/auth/magic-link", "/api/auth/otp/verify"):
        for body in ([1, 2], "x", 5, None):
            r = await anon.post(path, json=body)
            assert r.status == 400 and r.code == "INVALID_PAYLOAD", (path, body, r)
    r = await anon.post("/api/auth/login", json={"email": ["a"], "password": {"x": 1}})
    assert (r.status, r.code) == (400, "INVALID_PAYLOAD")
    r = await anon.post("/api/auth/login", data="email=a", headers={"Content-Type": "text/plain"})
    assert (r.status, r.code) == (415, "UNSUPPORTED_MEDIA_TYPE")
    r = await anon.post("/api/auth/sign-up", json={"email": "a@example.com", "password": "p" * 100_000})
    assert (r.status, r.code) == (400, "INVALID_PAYLOAD")


async def test_forged_and_misused_tokens_are_401(api, sign_up, password, wos_services):
    ada = await sign_up("ada@example.com")
    session = (await api.sign_in("ada@example.com", password)).session
    claims = jwt.decode(session["access_token"], options={"verify_signature": False})
    cases = {
        "alg none": _unsigned(claims),
        "refresh token as bearer": session["refresh_token"],
        "tampered payload": session["access_token"][:-4] + "AAAA",
        "wrong type": jwt.encode({**claims, "typ": "refresh"}, wos_services.accounts.secret, algorithm="HS256"),
        "other user": jwt.encode({**claims, "sub": "someone-else"}, wos_services.accounts.secret,
                                 algorithm="HS256"),
        "unknown family": jwt.encode({**claims, "sid": "nope"}, wos_services.accounts.secret, algorithm="HS256"),
    }
    for name, token in cases.items():
        r = await api.with_token(token).get("/api/users/me")
        assert r.status == 401 and r.code in ("INVALID_CREDENTIALS", "TOKEN_EXPIRED"), (name, r)
    as_refresh = await api.anonymous().post("/api/auth/refresh", json={"refresh_token": session["access_token"]})
    assert as_refresh.status == 401
    assert ada["id"] == claims["sub"]


async def test_a_deleted_users_tokens_and_keys_stop_working(api, sign_up, password):
    await sign_up("ada@example.com")
    bob = await sign_up("bob@example.com")
    admin = await api.sign_in("ada@example.com", password)
    bob_api = await api.sign_in("bob@example.com", password)
    key = (await bob_api.post("/api/api-keys", json={"name": "k"})).data["key"]
    assert (await api.with_token(key).get("/api/users/me")).status == 200
    assert (await admin.delete(f"/api/users/{bob['id']}")).status == 204
    assert (await bob_api.get("/api/users/me")).status == 401
    assert (await api.with_token(key).get("/api/users/me")).status == 401
    refresh = await api.anonymous().post("/api/auth/refresh", json={"refresh_token": bob_api.session["refresh_token"]})
    assert refresh.status == 401


async def test_responses_never_leak_secrets_or_internals(api, sign_up, password):
    await sign_up("ada@example.com")
    admin = await api.sign_in("ada@example.com", password)
    await admin.post("/api/api-keys", json={"name": "k"})
    for path in ("/api/users", "/api/users/me", "/api/api-keys", "/api/activity"):
        raw = (await admin.get(path)).raw.decode()
        for word in ("password_hash", "argon2", "key_hash", "token_hash", "totp_secret", "Traceback", "SELECT"):
            assert word not in raw, (path, word)
