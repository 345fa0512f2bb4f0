"""Email codes and the TOTP second factor, end to end over HTTP (both dialects)."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time

import pyotp

from workeros.db.tables.accounts import one_time_tokens


def code_in(inbox, address):
    return re.search(r"\b(\d{6})\b", inbox.last(address)["Subject"]).group(1)


def other(code):
    return f"{(int(code) + 1) % 1_000_000:06d}"


async def test_email_code_signs_in_once(api, sign_up, smtp_inbox):
    ada = await sign_up("ada@example.com")
    anon = api.anonymous()
    assert (await anon.post("/api/auth/otp/request", json={"email": "ada@example.com"})).status == 204
    code = code_in(smtp_inbox, "ada@example.com")
    assert code in smtp_inbox.text(smtp_inbox.last("ada@example.com"))
    r = await anon.post("/api/auth/otp/verify", json={"email": "ada@example.com", "code": code, "mode": "json"})
    assert r.status == 200
    assert (await api.with_token(r.data["access_token"]).get("/api/users/me")).data["id"] == ada["id"]
    again = await anon.post("/api/auth/otp/verify", json={"email": "ada@example.com", "code": code})
    assert (again.status, again.code) == (401, "INVALID_CREDENTIALS")


async def test_wrong_codes_kill_the_code(api, sign_up, smtp_inbox):
    await sign_up("ada@example.com")
    anon = api.anonymous()
    await anon.post("/api/auth/otp/request", json={"email": "ada@example.com"})
    code = code_in(smtp_inbox, "ada@example.com")
    for _ in range(5):
        r = await anon.post("/api/auth/otp/verify", json={"email": "ada@example.com", "code": other(code)})
        assert r.status == 401
    # Five wrong tries: even the right code no longer works.
    r = await anon.post("/api/auth/otp/verify", json={"email": "ada@example.com", "code": code})
    assert (r.status, r.code) == (401, "INVALID_CREDENTIALS")
    bad = await anon.post("/api/auth/otp/verify", json={"email": "ada@example.com", "code": "12ab56"})
    assert (bad.status, bad.code) == (400, "INVALID_PAYLOAD")


async def test_expired_code_is_token_expired(api, sign_up, smtp_inbox, wos_services):
    await sign_up("ada@example.com")
    await api.anonymous().post("/api/auth/otp/request", json={"email": "ada@example.com"})
    code = code_in(smtp_inbox, "ada@example.com")
    async with wos_services.db.transaction() as conn:
        await conn.execute(one_time_tokens.update().values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(1)))
    r = await api.anonymous().post("/api/auth/otp/verify", json={"email": "ada@example.com", "code": code})
    assert (r.status, r.code) == (401, "TOKEN_EXPIRED")


async def test_verify_attempts_are_rate_limited(api, sign_up, smtp_inbox):
    await sign_up("ada@example.com")
    statuses = [(await api.anonymous().post("/api/auth/otp/verify",
                                            json={"email": "ada@example.com", "code": "000000"})).status
                for _ in range(11)]
    assert statuses[-1] == 429 and set(statuses[:10]) == {401}


async def fresh_step():
    """Wait, if needed, so that the rest of the test runs well inside one 30 s
    step: codes of the previous, current and next step all stay valid."""
    left = 30 - time.time() % 30
    if left < 5:
        await asyncio.sleep(left + 0.1)
    return time.time()


async def test_totp_enrol_enable_login_disable(api, sign_up, password):
    await sign_up("ada@example.com")
    me = await api.sign_in("ada@example.com", password)
    enrol = await me.post("/api/auth/otp/totp/enrol")
    assert enrol.status == 200 and enrol.data["otpauth_url"].startswith("otpauth://totp/")
    totp = pyotp.TOTP(enrol.data["secret"])
    t = await fresh_step()
    previous, current, following = totp.at(t - 30), totp.at(t), totp.at(t + 30)
    wrong = await me.post("/api/auth/otp/totp/enable", json={"code": other(current)})
    assert wrong.status == 401
    assert (await me.post("/api/auth/otp/totp/enable", json={"code": previous})).status == 200
    assert (await me.get("/api/users/me")).data["totp_enabled"] is True
    anon = api.anonymous()
    body = {"email": "ada@example.com", "password": password, "mode": "json"}
    missing = await anon.post("/api/auth/login", json=body)
    assert missing.status == 401 and missing.json["errors"][0]["extensions"]["reason"] == "otp_required"
    bad = await anon.post("/api/auth/login", json={**body, "otp": other(current)})
    assert bad.status == 401 and bad.json["errors"][0]["extensions"]["reason"] == "otp_invalid"
    good = await anon.post("/api/auth/login", json={**body, "otp": current})
    assert good.status == 200
    # The same code again (a replay, e.g. shoulder-surfed) is refused.
    replay = await anon.post("/api/auth/login", json={**body, "otp": current})
    assert replay.status == 401 and replay.json["errors"][0]["extensions"]["reason"] == "otp_invalid"
    me = api.with_token(good.data["access_token"])
    assert (await me.post("/api/auth/otp/totp/disable", json={"code": other(following)})).status == 401
    assert (await me.post("/api/auth/otp/totp/disable", json={"code": following})).status == 200
    assert (await anon.post("/api/auth/login", json=body)).status == 200
    assert (await api.anonymous().post("/api/auth/otp/totp/enrol")).status == 401


async def test_totp_secret_is_never_shown(api, sign_up, password):
    ada = await sign_up("ada@example.com")
    me = await api.sign_in("ada@example.com", password)
    await me.post("/api/auth/otp/totp/enrol")
    for path in ("/api/users/me", f"/api/users/{ada['id']}", "/api/users"):
        r = await me.get(path)
        assert r.status == 200 and "totp_secret" not in r.raw.decode()
