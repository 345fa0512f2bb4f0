"""Magic links end to end over HTTP with a real SMTP server, both dialects."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time
from urllib.parse import parse_qs, urlparse

import pyotp

from workeros.db.tables.accounts import one_time_tokens


def link_token(inbox, address):
    url = re.search(r"https?://\S+", inbox.text(inbox.last(address))).group(0)
    return url, parse_qs(urlparse(url).query)["token"][0]


async def test_link_signs_in_once(api, sign_up, smtp_inbox):
    ada = await sign_up("ada@example.com")
    anon = api.anonymous()
    assert (await anon.post("/api/auth/magic-link", json={"email": "Ada@example.com"})).status == 204
    message = smtp_inbox.last("ada@example.com")
    assert message["Subject"] == "Your sign-in link"
    url, token = link_token(smtp_inbox, "ada@example.com")
    assert url.startswith("http://wos.test/api/auth/magic-link/verify?token=")
    r = await anon.post("/api/auth/magic-link/verify", json={"token": token, "mode": "json"})
    assert r.status == 200 and set(r.data) == {"access_token", "refresh_token", "expires"}
    me = await api.with_token(r.data["access_token"]).get("/api/users/me")
    assert me.data["id"] == ada["id"]
    reused = await anon.post("/api/auth/magic-link/verify", json={"token": token})
    assert (reused.status, reused.code) == (401, "INVALID_CREDENTIALS")
    admin = api.with_token(r.data["access_token"])
    logins = [a for a in (await admin.get("/api/activity")).data if a["action"] == "auth.login"]
    assert logins[0]["meta"] == {"provider": "magic-link"}


async def test_get_link_sets_the_session_cookie(api, sign_up, smtp_inbox):
    await sign_up("ada@example.com")
    await api.anonymous().post("/api/auth/magic-link", json={"email": "ada@example.com"})
    _, token = link_token(smtp_inbox, "ada@example.com")
    try:
        async with api.client.get("/api/auth/magic-link/verify", params={"token": token}) as r:
            assert r.status == 200 and "wos_session" in r.cookies
        async with api.client.get("/api/users/me") as r:
            assert r.status == 200
    finally:
        api.client.session.cookie_jar.clear()


async def test_unknown_address_gets_the_same_answer_and_no_mail(api, smtp_inbox):
    r = await api.anonymous().post("/api/auth/magic-link", json={"email": "who@example.com"})
    assert r.status == 204 and smtp_inbox.messages == []
    bad = await api.anonymous().post("/api/auth/magic-link", json={"email": "not-an-address"})
    assert (bad.status, bad.code) == (400, "INVALID_PAYLOAD")


async def test_expired_link_and_voided_older_link(api, sign_up, smtp_inbox, wos_services):
    await sign_up("ada@example.com")
    anon = api.anonymous()
    await anon.post("/api/auth/magic-link", json={"email": "ada@example.com"})
    _, first = link_token(smtp_inbox, "ada@example.com")
    await anon.post("/api/auth/magic-link", json={"email": "ada@example.com"})
    _, second = link_token(smtp_inbox, "ada@example.com")
    assert (await anon.post("/api/auth/magic-link/verify", json={"token": first})).status == 401
    async with wos_services.db.transaction() as conn:
        await conn.execute(one_time_tokens.update().values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(1)))
    expired = await anon.post("/api/auth/magic-link/verify", json={"token": second})
    assert (expired.status, expired.code) == (401, "TOKEN_EXPIRED")


async def test_requests_are_rate_limited(api, sign_up, smtp_inbox):
    await sign_up("ada@example.com")
    statuses = [(await api.anonymous().post("/api/auth/magic-link", json={"email": "ada@example.com"})).status
                for _ in range(6)]
    assert statuses == [204] * 5 + [429]
    assert len(smtp_inbox.to("ada@example.com")) == 5


async def test_second_factor_is_required_and_a_failure_keeps_the_link(api, sign_up, password, smtp_inbox):
    await sign_up("ada@example.com")
    me = await api.sign_in("ada@example.com", password)
    secret = (await me.post("/api/auth/otp/totp/enrol")).data["secret"]
    left = 30 - time.time() % 30
    if left < 5:
        await asyncio.sleep(left + 0.1)
    t = time.time()
    assert (await me.post("/api/auth/otp/totp/enable", json={"code": pyotp.TOTP(secret).at(t - 30)})).status == 200
    await api.anonymous().post("/api/auth/magic-link", json={"email": "ada@example.com"})
    _, token = link_token(smtp_inbox, "ada@example.com")
    missing = await api.anonymous().post("/api/auth/magic-link/verify", json={"token": token})
    assert missing.status == 401 and missing.json["errors"][0]["extensions"]["reason"] == "otp_required"
    r = await api.anonymous().post("/api/auth/magic-link/verify",
                                   json={"token": token, "otp": pyotp.TOTP(secret).at(t), "mode": "json"})
    assert r.status == 200
