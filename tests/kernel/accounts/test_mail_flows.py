"""Password reset, email verification and invitations, end to end with a real
SMTP server on loopback (both dialects)."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

from workeros.http.keys import SERVICES


def token_from(inbox, address):
    text = inbox.text(inbox.last(address))
    url = re.search(r"https?://\S+", text).group(0)
    return url, parse_qs(urlparse(url).query)["token"][0]


async def test_password_reset_link_works_once_and_ends_sessions(api, sign_up, password, smtp_inbox):
    await sign_up("ada@example.com")
    before = await api.sign_in("ada@example.com", password)
    anon = api.anonymous()
    assert (await anon.post("/api/auth/password/request", json={"email": "ada@example.com"})).status == 204
    # Unknown addresses get the same answer and no mail.
    assert (await anon.post("/api/auth/password/request", json={"email": "who@example.com"})).status == 204
    await smtp_inbox.wait_for("ada@example.com")  # sent in the background, after the answer
    await api.server.app[SERVICES].background.drain(10)
    assert smtp_inbox.to("who@example.com") == []
    message = smtp_inbox.last("ada@example.com")
    assert message["Subject"] == "Reset your password" and message["From"] == "workeros <no-reply@wos.test>"
    url, token = token_from(smtp_inbox, "ada@example.com")
    assert url.startswith("http://wos.test/reset-password?token=")
    weak = await anon.post("/api/auth/password/reset", json={"token": token, "password": "short"})
    assert weak.code == "INVALID_PAYLOAD"
    r = await anon.post("/api/auth/password/reset", json={"token": token, "password": "brand new pass 9"})
    assert r.status == 204
    again = await anon.post("/api/auth/password/reset", json={"token": token, "password": "another pass 99"})
    assert (again.status, again.code) == (401, "INVALID_CREDENTIALS")
    assert (await before.get("/api/users/me")).status == 401
    assert (await (await api.sign_in("ada@example.com", "brand new pass 9")).get("/api/users/me")).status == 200
    admin = await api.sign_in("ada@example.com", "brand new pass 9")
    actions = [a["action"] for a in (await admin.get("/api/activity", params={"sort": "id"})).data]
    assert "auth.password_reset" in actions


async def test_an_older_reset_link_stops_working_when_a_new_one_is_sent(api, sign_up, smtp_inbox):
    await sign_up("ada@example.com")
    anon = api.anonymous()
    await anon.post("/api/auth/password/request", json={"email": "ada@example.com"})
    await smtp_inbox.wait_for("ada@example.com", 1)
    _, first = token_from(smtp_inbox, "ada@example.com")
    await anon.post("/api/auth/password/request", json={"email": "ada@example.com"})
    await smtp_inbox.wait_for("ada@example.com", 2)
    _, second = token_from(smtp_inbox, "ada@example.com")
    assert first != second
    assert (await anon.post("/api/auth/password/reset", json={"token": first, "password": "brand new 12"})).status \
        == 401
    assert (await anon.post("/api/auth/password/reset", json={"token": second, "password": "brand new 12"})).status \
        == 204


async def test_expired_reset_link_is_token_expired(api, sign_up, smtp_inbox, wos_services):
    import datetime as dt

    from workeros.db.tables.accounts import one_time_tokens

    await sign_up("ada@example.com")
    await api.anonymous().post("/api/auth/password/request", json={"email": "ada@example.com"})
    await smtp_inbox.wait_for("ada@example.com")
    _, token = token_from(smtp_inbox, "ada@example.com")
    async with wos_services.db.transaction() as conn:
        await conn.execute(one_time_tokens.update().values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(1)))
    r = await api.anonymous().post("/api/auth/password/reset", json={"token": token, "password": "brand new 12"})
    assert (r.status, r.code) == (401, "TOKEN_EXPIRED")


async def test_email_verification_when_required(api, make_server, password, smtp_inbox, wos_settings):
    from aiohttp.test_utils import TestClient

    async with make_server(settings=wos_settings, auth__email_verification=True) as server, \
            TestClient(server) as client:
        async def post(path, body):
            async with client.post(path, json=body) as r:
                return r.status, await r.json() if r.status != 204 else None

        assert (await post("/api/auth/sign-up", {"email": "ada@example.com", "password": password}))[0] == 201
        assert smtp_inbox.to("ada@example.com") == []  # the first user (admin) is trusted
        assert (await post("/api/auth/sign-up", {"email": "bob@example.com", "password": password}))[0] == 201
        status, body = await post("/api/auth/login", {"email": "bob@example.com", "password": password})
        assert status == 401 and body["errors"][0]["extensions"]["reason"] == "email_not_verified"
        url, token = token_from(smtp_inbox, "bob@example.com")
        assert url.startswith("http://wos.test/api/auth/verify-email?token=")
        async with client.get("/api/auth/verify-email", params={"token": token}) as r:
            assert r.status == 200
        async with client.get("/api/auth/verify-email", params={"token": token}) as r:
            assert r.status == 401
        assert (await post("/api/auth/login", {"email": "bob@example.com", "password": password,
                                               "mode": "json"}))[0] == 200


async def test_invite_only_sign_up(api, make_server, password, smtp_inbox, wos_settings):
    from aiohttp.test_utils import TestClient

    from workeros.db.tables.access import roles

    async with make_server(settings=wos_settings, auth__sign_up="invite") as server, TestClient(server) as client:
        async def call(method, path, body=None, token=None):
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            async with client.request(method, path, json=body, headers=headers) as r:
                return r.status, (await r.json()) if r.status != 204 else None

        assert (await call("POST", "/api/auth/sign-up", {"email": "ada@example.com", "password": password}))[0] \
            == 201
        status, _ = await call("POST", "/api/auth/sign-up", {"email": "bob@example.com", "password": password})
        assert status == 403  # no invitation
        _, login = await call("POST", "/api/auth/login", {"email": "ada@example.com", "password": password,
                                                          "mode": "json"})
        admin = login["data"]["access_token"]
        from workeros.http.keys import SERVICES

        async with server.app[SERVICES].db.transaction() as conn:
            import datetime as dt

            await conn.execute(roles.insert().values(id="editor", name="editor",
                                                     created_at=dt.datetime.now(dt.UTC)))
        status, body = await call("POST", "/api/users/invite", {"email": "bob@example.com", "role": "editor"},
                                  token=admin)
        assert status == 201, body
        url, token = token_from(smtp_inbox, "bob@example.com")
        assert url.startswith("http://wos.test/sign-up?token=")
        wrong = await call("POST", "/api/auth/sign-up", {"email": "eve@example.com", "password": password,
                                                         "invite": token})
        assert wrong[0] == 401
        status, body = await call("POST", "/api/auth/sign-up", {"email": "bob@example.com", "password": password,
                                                                "invite": token})
        assert status == 201 and body["data"]["role"] == "editor"
        again = await call("POST", "/api/auth/sign-up", {"email": "bob@example.com", "password": password,
                                                         "invite": token})
        assert again[0] == 401


async def test_closed_sign_up_still_lets_the_first_user_in(make_server, password, wos_settings):
    from aiohttp.test_utils import TestClient

    async with make_server(settings=wos_settings, auth__sign_up="closed") as server, TestClient(server) as client:
        async with client.post("/api/auth/sign-up", json={"email": "a@example.com", "password": password}) as r:
            assert r.status == 201 and (await r.json())["data"]["role"] == "admin"
        async with client.post("/api/auth/sign-up", json={"email": "b@example.com", "password": password}) as r:
            assert r.status == 403


async def test_mail_features_without_an_email_backend_are_503(make_server, wos_settings, password):
    from aiohttp.test_utils import TestClient

    async with make_server(settings=wos_settings, smtp__host="") as server, \
            TestClient(server) as client:
        async with client.post("/api/auth/password/request", json={"email": "a@example.com"}) as r:
            assert r.status == 503
            assert (await r.json())["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
