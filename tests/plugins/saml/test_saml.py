"""SAML 2.0 sign-in over HTTP with a test IdP signing with xmlsec, both dialects."""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from callers import Api, TestCallers

from tests.plugins.saml.conftest import ACS, SP_ENTITY, idp_config
from tests.plugins.saml.saml_idp import TestIdP, key_and_cert

ACS_PATH = urlsplit(ACS).path
BASE = "/api/auth/saml/test"


@pytest.fixture
def serve(make_server: Any) -> Any:
    from aiohttp.test_utils import TestClient

    @asynccontextmanager
    async def run(**overrides: Any) -> AsyncIterator[Api]:
        extra = {k.replace(".", "__"): v for k, v in overrides.items()}
        async with make_server(TestCallers(), **extra) as server, TestClient(server) as client:
            yield Api(client)

    return run


async def post_acs(api: Api, saml_response: str, relay: str | None = None) -> tuple[int, Any, dict[str, Any] | None]:
    """Post to the ACS like a browser; (status, Location or error body, the
    signed-in user when a session was set)."""
    form = {"SAMLResponse": saml_response}
    if relay is not None:
        form["RelayState"] = relay
    client = api.client
    try:
        async with client.post(ACS_PATH, data=form, allow_redirects=False) as r:
            status = r.status
            where = r.headers.get("Location") if status == 303 else await r.json()
            has_cookie = "wos_session" in r.cookies
        user = None
        if has_cookie:
            async with client.get("/api/users/me") as me:
                assert me.status == 200
                user = (await me.json())["data"]
        return status, where, user
    finally:
        client.session.cookie_jar.clear()


def error_code(body: Any) -> str:
    return body["errors"][0]["extensions"]["code"]


async def test_sp_metadata(api: Api) -> None:
    async with api.client.get(f"{BASE}/metadata") as r:
        assert r.status == 200 and r.content_type == "application/samlmetadata+xml"
        xml = await r.text()
    assert f'entityID="{SP_ENTITY}"' in xml
    assert re.search(r'AssertionConsumerService[^>]*Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"', xml)
    assert f'Location="{ACS}"' in xml
    missing = await api.anonymous().get("/api/auth/saml/nope/metadata")
    assert (missing.status, missing.code) == (404, "NOT_FOUND")


async def test_sp_initiated_sign_in(api: Api, idp: TestIdP) -> None:
    async with api.client.get(f"{BASE}/login", params={"redirect": "/welcome"}, allow_redirects=False) as r:
        assert r.status == 302
        location = r.headers["Location"]
    assert location.startswith(f"{idp.url}/sso?")
    async with aiohttp.ClientSession() as browser, browser.get(location) as page:  # the browser at the IdP
        assert page.status == 200
        html = await page.text()
    sent = idp.requests[-1]
    assert (sent["issuer"], sent["acs"]) == (SP_ENTITY, ACS)
    action = re.search(r'action="([^"]+)"', html).group(1)
    saml_response = re.search(r'name="SAMLResponse" value="([^"]+)"', html).group(1)
    relay = re.search(r'name="RelayState" value="([^"]*)"', html).group(1)
    assert action == ACS
    status, where, user = await post_acs(api, saml_response, relay)
    assert (status, where) == (303, "/welcome")
    assert (user["email"], user["role"]) == ("ada@example.org", "admin")  # the very first account
    logins = [a for a in (await api.as_admin().get("/api/activity")).data if a["action"] == "auth.login"]
    assert [a["meta"] for a in logins] == [{"provider": "saml"}]
    # the answer to that request works once
    status, body, user = await post_acs(api, saml_response, relay)
    assert (status, error_code(body), user) == (401, "INVALID_CREDENTIALS", None)


async def start_at_the_sp(api: Api, redirect: str = "/welcome") -> tuple[str, str]:
    """SP-initiated sign-in up to the IdP's form: (SAMLResponse, RelayState)."""
    async with api.client.get(f"{BASE}/login", params={"redirect": redirect}, allow_redirects=False) as r:
        location = r.headers["Location"]
    async with aiohttp.ClientSession() as browser, browser.get(location) as page:
        html = await page.text()
    return (re.search(r'name="SAMLResponse" value="([^"]+)"', html).group(1),
            re.search(r'name="RelayState" value="([^"]*)"', html).group(1))


async def test_an_sp_initiated_sign_in_must_finish_in_time(api: Api, idp: TestIdP, wos_services: Any) -> None:
    from workeros.api import one_time_tokens

    saml_response, relay = await start_at_the_sp(api)
    async with wos_services.db.transaction() as conn:
        await conn.execute(one_time_tokens.update().where(one_time_tokens.c.kind == "saml_request")
                           .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    status, body, user = await post_acs(api, saml_response, relay)
    assert (status, error_code(body), user) == (401, "INVALID_CREDENTIALS", None)
    assert "expired" in body["errors"][0]["message"]
    # the RelayState of an SP-initiated answer is not trusted: the stored target is used
    saml_response, _ = await start_at_the_sp(api, "/from-the-sp")
    status, where, user = await post_acs(api, saml_response, "https://evil.example.com/")
    assert (status, where) == (303, "/from-the-sp") and user["email"] == "ada@example.org"


async def test_idp_initiated_sign_in_and_where_it_may_lead(api: Api, idp: TestIdP, sign_up: Any) -> None:
    await sign_up("owner@example.com")
    status, where, user = await post_acs(api, idp.response(), "https://app.example.org/home")
    assert (status, where, user["email"], user["role"]) == (303, "https://app.example.org/home", "ada@example.org",
                                                            None)
    for relay in ("https://evil.example.com/", "//evil.example.com/x", "javascript:alert(1)", None):
        status, where, user = await post_acs(api, idp.response(), relay)
        assert (status, where) == (303, "/") and user["email"] == "ada@example.org"


async def test_unsolicited_responses_can_be_turned_off(serve: Any, idp: TestIdP) -> None:
    async with serve(**{"saml.idps": {"test": idp_config(idp, allow_idp_initiated=False)}}) as api:
        status, body, user = await post_acs(api, idp.response())
        assert (status, error_code(body), user) == (401, "INVALID_CREDENTIALS", None)
        assert "unsolicited" in body["errors"][0]["message"]


def _tampered(idp: TestIdP) -> str:
    xml = base64.b64decode(idp.response()).replace(b"ada@example.org", b"eve@example.org")
    return base64.b64encode(xml).decode()


BROKEN = {
    "unsigned": lambda idp: idp.response(signed=False),
    "wrong signer": lambda idp: idp.response(signer=key_and_cert("mallory")),
    "expired": lambda idp: idp.response(issued=dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)),
    "not yet valid": lambda idp: idp.response(issued=dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)),
    "another audience": lambda idp: idp.response(audience="https://other-sp.test/metadata"),
    "another destination": lambda idp: idp.response(destination="https://other-sp.test/acs"),
    "tampered after signing": _tampered,
    "answers no request of ours": lambda idp: idp.response(in_response_to="_never-sent"),
    "not base64": lambda idp: "%%%not base64%%%",
    "not XML": lambda idp: base64.b64encode(b"hello").decode(),
    "entity expansion": lambda idp: base64.b64encode(
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>'
        b'<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">&b;</samlp:Response>').decode(),
}


@pytest.mark.parametrize("case", list(BROKEN))
async def test_bad_responses_are_refused(api: Api, idp: TestIdP, case: str) -> None:
    status, body, user = await post_acs(api, BROKEN[case](idp))
    assert (status, error_code(body), user) == (401, "INVALID_CREDENTIALS", None), body
    assert (await api.as_admin().get("/api/users")).data == []
    failed = [a for a in (await api.as_admin().get("/api/activity")).data if a["action"] == "auth.login_failed"]
    assert [a["meta"]["provider"] for a in failed] == ["saml"]


async def test_a_replayed_response_is_refused(api: Api, idp: TestIdP) -> None:
    saml_response = idp.response()
    status, _, user = await post_acs(api, saml_response)
    assert status == 303 and user["email"] == "ada@example.org"
    status, body, user = await post_acs(api, saml_response)
    assert (status, error_code(body), user) == (401, "INVALID_CREDENTIALS", None)
    assert "replay" in body["errors"][0]["message"]
    # a fresh assertion still works
    assert (await post_acs(api, idp.response()))[0] == 303


async def test_clock_skew_is_a_setting(serve: Any, idp: TestIdP) -> None:
    ahead = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=90)  # the IdP's clock runs 90 s fast
    async with serve(**{"saml.clock_skew": 0}) as api:
        assert (await post_acs(api, idp.response(issued=ahead)))[0] == 401
    async with serve(**{"saml.clock_skew": 180}) as api:
        assert (await post_acs(api, idp.response(issued=ahead)))[0] == 303


async def test_attributes_map_to_email_name_and_role(serve: Any, idp: TestIdP, sign_up: Any) -> None:
    async with serve() as api:
        await sign_up("owner@example.com")
        editor = (await api.as_admin().post("/api/roles", json={"name": "editor"})).data["id"]
        reader = (await api.as_admin().post("/api/roles", json={"name": "reader"})).data["id"]
    config = idp_config(idp, email_attribute="mail", groups_attribute="memberOf",
                        role_map={"wos-editors": "editor", "wos-admins": "admin"})
    async with serve(**{"saml.idps": {"test": config}, "auth.default_role": reader}) as api:
        attributes = {"mail": ["Grace@Example.org"], "firstName": ["Grace"], "lastName": ["Hopper"],
                      "memberOf": ["everyone", "wos-editors"]}
        _, _, grace = await post_acs(api, idp.response(email="g.hopper@idp.test", attributes=attributes))
        assert (grace["email"], grace["first_name"], grace["last_name"], grace["role"]) == (
            "grace@example.org", "Grace", "Hopper", editor)
        # no group that maps: auth.default_role for a new account
        _, _, alan = await post_acs(api, idp.response(email="alan@example.org",
                                                      attributes={"memberOf": ["everyone"]}))
        assert alan["role"] == reader
        # the directory moved grace: the role follows at the next sign-in
        attributes["memberOf"] = ["wos-admins"]
        _, _, grace = await post_acs(api, idp.response(email="g.hopper@idp.test", attributes=attributes))
        assert grace["role"] == "admin"


async def test_an_address_is_required(api: Api, idp: TestIdP) -> None:
    status, body, _ = await post_acs(api, idp.response(email="not-an-address"))
    assert (status, error_code(body)) == (401, "INVALID_CREDENTIALS")
    assert "email" in body["errors"][0]["message"]


async def test_failed_attempts_are_rate_limited(serve: Any, idp: TestIdP) -> None:
    async with serve(**{"ratelimit.login.per_ip": 3}) as api:
        statuses = [(await post_acs(api, idp.response(signed=False)))[0] for _ in range(3)]
        status, body, _ = await post_acs(api, idp.response())
        assert statuses + [status] == [401, 401, 401, 429] and error_code(body) == "RATE_LIMITED"


async def test_bad_requests_are_clear(api: Api) -> None:
    async with api.client.post(ACS_PATH, data={"RelayState": "/"}) as r:
        assert r.status == 400 and error_code(await r.json()) == "INVALID_PAYLOAD"
    async with api.client.post("/api/auth/saml/nope/acs", data={"SAMLResponse": "x"}) as r:
        assert r.status == 404
    async with api.client.get("/api/auth/saml/nope/login", allow_redirects=False) as r:
        assert r.status == 404


async def test_listed_among_the_providers(serve: Any) -> None:
    async with serve() as api:
        listed = (await api.anonymous().get("/api/auth/providers")).data
        assert {"name": "saml", "kind": "redirect"} in [{k: p[k] for k in ("name", "kind")} for p in listed]
        # One entry per identity provider, each with the route that starts its sign-in.
        entries = [p for p in listed if p["name"] == "saml"]
        assert entries and all(p["type"] == "saml" and p["start_url"] == f"/api/auth/saml/{p['idp']}/login"
                               for p in entries)
        async with api.client.get(entries[0]["start_url"], allow_redirects=False) as r:
            assert r.status in (302, 303), await r.text()
    async with serve(**{"saml.idps": {"broken": {"entity_id": "x"}}}) as api:
        r = await api.anonymous().get("/api/auth/providers")
        assert "saml" not in [p["name"] for p in r.data]
        reasons = [u["reason"] for u in r.json["meta"]["unavailable"] if u["name"] == "saml"]
        assert reasons and "sso_url" in reasons[0]
        missing = await api.anonymous().get("/api/auth/saml/broken/metadata")
        assert (missing.status, missing.code) == (503, "SERVICE_UNAVAILABLE")

