"""A third-party auth provider of each kind fits the hookspec and ends in the
same session as a password login (both dialects)."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient

from workeros.api import client, session_redirect, session_response
from workeros.hookspecs import hookimpl
from workeros.hookspecs.auth import AuthProvider
from workeros.http.web import services


class FakeIdentityProvider:
    """A redirect provider whose 'outside party' is a route of its own: the
    callback names the email it vouches for (enough to exercise the kernel side)."""

    name = "fake-idp"

    @hookimpl
    def workeros_register_auth_providers(self):
        routes = web.RouteTableDef()

        @routes.get("/fake-idp/callback")
        async def callback(request):
            accounts = services(request).accounts
            user = await accounts.find_user(request.query["email"])
            session = await accounts.issue_session(user["id"], provider="fake-idp", **client(request))
            return session_redirect(request, session, "/app")

        @routes.post("/fake-idp/token")
        async def token(request):
            accounts = services(request).accounts
            user = await accounts.find_user((await request.json())["email"])
            await accounts.check_second_factor(await accounts.user_row(user["id"]), None)
            return session_response(request, await accounts.issue_session(user["id"], provider="fake-idp",
                                                                          browser=False, **client(request)),
                                    cookies=False)

        return [AuthProvider(name="fake-idp", kind="redirect", routes=lambda: routes,
                             factory=lambda services: {"ready": True})]


async def test_redirect_and_credential_providers_end_in_the_same_session(make_server, password):
    async with make_server(FakeIdentityProvider()) as server, TestClient(server) as c:
        async with c.post("/api/auth/sign-up", json={"email": "ada@example.com", "password": password}) as r:
            assert r.status == 201
        from workeros.http.keys import SERVICES

        assert server.app[SERVICES].accounts.providers["fake-idp"] == {"ready": True}
        async with c.get("/api/auth/fake-idp/callback", params={"email": "ada@example.com"},
                         allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"] == "/app"
            assert "access_token" not in r.headers["Location"]
        async with c.get("/api/users/me") as r:  # the cookie session
            assert r.status == 200 and (await r.json())["data"]["email"] == "ada@example.com"
        c.session.cookie_jar.clear()
        async with c.post("/api/auth/fake-idp/token", json={"email": "ada@example.com"}) as r:
            body = await r.json()
            assert r.status == 200 and "Set-Cookie" not in r.headers
        async with c.get("/api/users/me", headers={"Authorization": f"Bearer {body['data']['access_token']}"}) as r:
            assert r.status == 200
        async with c.get("/api/activity", headers={"Authorization": f"Bearer {body['data']['access_token']}"},
                         params={"filter": '{"action":{"_eq":"auth.login"}}'}) as r:
            providers = [row["meta"]["provider"] for row in (await r.json())["data"]]
        assert providers == ["fake-idp", "fake-idp"]
