"""LDAP sign-in over HTTP against a real slapd, on both dialects."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from callers import Api, TestCallers

from tests.plugins.ldap.slapd_server import SUFFIX, people_dn

LOGIN = "/api/auth/ldap/login"


@pytest.fixture
def serve(make_server: Any) -> Any:
    """``async with serve(**settings) as api`` — an app with these settings on
    the test's database (dots in names as in the config file)."""
    from aiohttp.test_utils import TestClient

    @asynccontextmanager
    async def run(**overrides: Any) -> AsyncIterator[Api]:
        extra = {k.replace(".", "__"): v for k, v in overrides.items()}
        async with make_server(TestCallers(), **extra) as server, TestClient(server) as client:
            yield Api(client)

    return run


async def login(api: Api, username: str, password: str, **extra: Any) -> Any:
    return await api.anonymous().post(LOGIN, json={"username": username, "password": password, "mode": "json",
                                                    **extra})


async def me(api: Api, r: Any) -> dict[str, Any]:
    assert r.status == 200, r
    return (await api.with_token(r.data["access_token"]).get("/api/users/me")).data


async def make_role(api: Api, name: str) -> str:
    r = await api.as_admin().post("/api/roles", json={"name": name})
    assert r.status == 201, r
    return r.data["id"]


async def test_first_directory_user_is_admin_and_signs_in_like_a_password_login(api: Api) -> None:
    r = await login(api, "ada", "ada-secret")
    assert r.status == 200 and set(r.data) == {"access_token", "refresh_token", "expires"}
    ada = await me(api, r)
    assert (ada["email"], ada["role"], ada["first_name"], ada["last_name"]) == (
        "ada@example.org", "admin", "Ada", "Lovelace")
    # the same account at the next sign-in (by mail too), and a cookie session by default
    again = await login(api, "ada@example.org", "ada-secret")
    assert (await me(api, again))["id"] == ada["id"]
    async with api.client.post(LOGIN, json={"username": "ada", "password": "ada-secret"}) as cookie:
        assert cookie.status == 200 and "wos_session" in cookie.cookies
    api.client.session.cookie_jar.clear()
    admin = api.with_token(r.data["access_token"])
    activity = (await admin.get("/api/activity")).data
    logins = [a for a in activity if a["action"] == "auth.login"]
    assert len(logins) == 3 and all(a["meta"] == {"provider": "ldap"} for a in logins)
    signups = [a for a in activity if a["action"] == "auth.sign_up"]
    assert [a["meta"] for a in signups] == [{"role": "admin", "provider": "ldap"}]


async def test_later_users_get_the_default_role(serve: Any, sign_up: Any) -> None:
    async with serve() as api:
        await sign_up("owner@example.com")
        reader = await make_role(api, "reader")
    async with serve(**{"auth.default_role": reader}) as api:
        grace = await me(api, await login(api, "grace", "grace-secret"))
        assert grace["role"] == reader


async def test_wrong_password_and_unknown_user_get_one_answer(api: Api, sign_up: Any) -> None:
    await sign_up("owner@example.com")
    wrong = await login(api, "ada", "not-her-password")
    nobody = await login(api, "nobody", "ada-secret")
    assert (wrong.status, wrong.code) == (nobody.status, nobody.code) == (401, "INVALID_CREDENTIALS")
    assert wrong.json["errors"][0]["message"] == nobody.json["errors"][0]["message"]
    owner = await api.sign_in("owner@example.com", "correct horse 42")
    failed = [a for a in (await owner.get("/api/activity")).data if a["action"] == "auth.login_failed"]
    assert sorted(a["meta"]["username"] for a in failed) == ["ada", "nobody"]
    assert all(a["meta"]["provider"] == "ldap" for a in failed)
    users = (await api.as_admin().get("/api/users")).data
    assert [u["email"] for u in users] == ["owner@example.com"]


async def test_bad_input_is_a_clear_400(api: Api) -> None:
    anon = api.anonymous()
    for body in ({"username": "ada"}, {"username": "ada", "password": ""}, {"password": "x"},
                 {"username": "a" * 300, "password": "x"}, {"username": "ada", "password": 5},
                 {"username": "ada\x00", "password": "x"}):
        r = await anon.post(LOGIN, json=body)
        assert (r.status, r.code) == (400, "INVALID_PAYLOAD"), body
    r = await anon.post(LOGIN, json=["ada", "ada-secret"])
    assert (r.status, r.code) == (400, "INVALID_PAYLOAD")


@pytest.mark.parametrize("username", [
    "*", "ad*", "*)(uid=*", "ada)(|(uid=*", "*)(|(objectClass=*)", "ada)(mail=*", "\\2a", "ada\\", "(uid=ada)",
])
async def test_filter_injection_in_the_username_is_refused(api: Api, username: str) -> None:
    """Each of these would find ada (or everyone) if pasted into the filter
    unescaped; the password is hers, so only the escaping stands between."""
    r = await login(api, username, "ada-secret")
    assert (r.status, r.code) == (401, "INVALID_CREDENTIALS"), username
    assert (await api.as_admin().get("/api/users")).data == []


async def test_a_filter_naming_several_entries_signs_nobody_in(serve: Any) -> None:
    async with serve(**{"ldap.user_filter": "(cn={username})"}) as api:
        r = await login(api, "Twin", "twin1-secret")
        assert (r.status, r.code) == (401, "INVALID_CREDENTIALS")
        assert (await me(api, await login(api, "Ada Lovelace", "ada-secret")))["email"] == "ada@example.org"


async def test_search_needs_the_service_account(serve: Any) -> None:
    # The directory lets only authenticated clients read: an anonymous search finds nobody.
    async with serve(**{"ldap.bind_dn": "", "ldap.bind_password": ""}) as api:
        r = await login(api, "ada", "ada-secret")
        assert (r.status, r.code) == (401, "INVALID_CREDENTIALS")
    async with serve(**{"ldap.bind_password": "wrong"}) as api:
        r = await login(api, "ada", "ada-secret")
        assert (r.status, r.code) == (503, "SERVICE_UNAVAILABLE")
        assert "wrong" not in str(r.data)


async def test_direct_bind_with_a_dn_template(serve: Any) -> None:
    async with serve(**{"ldap.user_base_dn": "", "ldap.user_dn_template": f"uid={{username}},ou=people,{SUFFIX}"}
                     ) as api:
        assert (await me(api, await login(api, "grace", "grace-secret")))["email"] == "grace@example.org"
        for username in ("grace,ou=people", "grace+cn=x", "*"):
            r = await login(api, username, "grace-secret")
            assert (r.status, r.code) == (401, "INVALID_CREDENTIALS"), username


async def test_groups_map_to_roles(serve: Any, sign_up: Any) -> None:
    async with serve() as api:
        await sign_up("owner@example.com")
        editor = await make_role(api, "editor")
        reader = await make_role(api, "reader")
    mapping = {"editors": "editor", f"cn=admins,ou=groups,{SUFFIX}": "admin"}
    async with serve(**{"ldap.role_map": mapping, "auth.default_role": reader}) as api:
        assert (await me(api, await login(api, "ada", "ada-secret")))["role"] == editor  # memberOf, by name
        assert (await me(api, await login(api, "grace", "grace-secret")))["role"] == "admin"  # by DN
    # groupOfNames searched under a base, nested groups followed on request
    staff = {"ldap.group_attribute": "", "ldap.group_base_dn": f"ou=groups,{SUFFIX}",
             "ldap.role_map": {"staff": "reader", "editors": "editor"}, "auth.default_role": ""}
    async with serve(**staff) as api:
        assert (await me(api, await login(api, "ada", "ada-secret")))["role"] == editor
    staff["ldap.role_map"] = {"staff": "reader"}
    async with serve(**staff) as api:
        # a role only through a group of groups: not followed, so the mapped role stays
        assert (await me(api, await login(api, "ada", "ada-secret")))["role"] == editor
    async with serve(**{**staff, "ldap.nested_groups": True}) as api:
        assert (await me(api, await login(api, "ada", "ada-secret")))["role"] == reader


async def test_a_mapping_to_a_missing_role_is_a_clear_503(serve: Any, sign_up: Any) -> None:
    async with serve(**{"ldap.role_map": {"editors": "no-such-role"}}) as api:
        await sign_up("owner@example.com")
        r = await login(api, "ada", "ada-secret")
        assert (r.status, r.code) == (503, "SERVICE_UNAVAILABLE")
        assert [u["email"] for u in (await api.as_admin().get("/api/users")).data] == ["owner@example.com"]


async def test_a_user_disabled_in_the_directory_cannot_sign_in(api: Api, slapd: Any) -> None:
    r = await login(api, "linus", "linus-secret")
    assert (r.status, r.code) == (401, "INVALID_CREDENTIALS")
    assert "disabled" in r.json["errors"][0]["message"]
    assert (await api.as_admin().get("/api/users")).data == []
    assert (await login(api, "ada", "ada-secret")).status == 200
    slapd.modify(f"dn: {people_dn('ada')}\nchangetype: modify\nadd: employeeType\nemployeeType: disabled\n")
    try:
        r = await login(api, "ada", "ada-secret")
        assert (r.status, r.code) == (401, "INVALID_CREDENTIALS")
    finally:
        slapd.modify(f"dn: {people_dn('ada')}\nchangetype: modify\ndelete: employeeType\n")
    assert (await login(api, "ada", "ada-secret")).status == 200


async def test_a_suspended_account_cannot_sign_in_through_the_directory(api: Api, sign_up: Any) -> None:
    await sign_up("owner@example.com")
    ada = await me(api, await login(api, "ada", "ada-secret"))
    r = await api.as_admin().patch(f"/api/users/{ada['id']}", json={"status": "suspended"})
    assert r.status == 200, r
    r = await login(api, "ada", "ada-secret")
    assert (r.status, r.code) == (401, "INVALID_CREDENTIALS")


async def test_an_existing_account_with_the_same_address_is_used(api: Api, sign_up: Any) -> None:
    await sign_up("owner@example.com")
    existing = await sign_up("grace@example.org")
    grace = await me(api, await login(api, "grace", "grace-secret"))
    assert grace["id"] == existing["id"]


async def test_users_without_an_address(serve: Any) -> None:
    async with serve() as api:
        r = await login(api, "ken", "ken-secret")
        assert (r.status, r.code) == (401, "INVALID_CREDENTIALS")
    async with serve(**{"ldap.email_domain": "example.net"}) as api:
        assert (await me(api, await login(api, "ken", "ken-secret")))["email"] == "ken@example.net"


async def test_no_account_is_created_when_that_is_off(serve: Any, sign_up: Any) -> None:
    async with serve(**{"ldap.create_users": False}) as api:
        await sign_up("owner@example.com")
        r = await login(api, "ada", "ada-secret")
        assert (r.status, r.code) == (403, "FORBIDDEN")
        await sign_up("ada@example.org")
        assert (await login(api, "ada", "ada-secret")).status == 200


async def test_failed_attempts_are_rate_limited(serve: Any) -> None:
    async with serve(**{"ratelimit.login.per_account": 3}) as api:
        statuses = [(await login(api, "ada", "wrong")).status for _ in range(4)]
        assert statuses == [401, 401, 401, 429]
        r = await login(api, "ada", "ada-secret")
        assert (r.status, r.code) == (429, "RATE_LIMITED")
        assert (await login(api, "grace", "grace-secret")).status == 200


async def test_listed_among_the_providers_and_503_when_not_configured(serve: Any) -> None:
    async with serve() as api:
        listed = (await api.anonymous().get("/api/auth/providers")).data
        assert {"name": "ldap", "kind": "credential"} in [{k: p[k] for k in ("name", "kind")} for p in listed]
        assert next(p for p in listed if p["name"] == "ldap")["start_url"] == "/api/auth/ldap/login"
    async with serve(**{"ldap.url": ""}) as api:
        r = await api.anonymous().get("/api/auth/providers")
        assert "ldap" not in [p["name"] for p in r.data]
        unavailable = r.json["meta"]["unavailable"]
        assert [u["reason"] for u in unavailable if u["name"] == "ldap"] == ["ldap.url is not set"]
        r = await login(api, "ada", "ada-secret")
        assert (r.status, r.code) == (503, "SERVICE_UNAVAILABLE")


async def test_an_unreachable_directory_is_a_503(serve: Any) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    async with serve(**{"ldap.url": f"ldap://127.0.0.1:{port}", "ldap.timeout": 2.0}) as api:
        r = await login(api, "ada", "ada-secret")
        assert (r.status, r.code) == (503, "SERVICE_UNAVAILABLE")


async def test_starttls_and_ldaps_verify_the_directory(serve: Any, slapd: Any) -> None:
    async with serve(**{"ldap.start_tls": True, "ldap.tls_ca_file": slapd.ca_file}) as api:
        assert (await me(api, await login(api, "ada", "ada-secret")))["email"] == "ada@example.org"
    async with serve(**{"ldap.url": slapd.ldaps_url, "ldap.tls_ca_file": slapd.ca_file}) as api:
        assert (await login(api, "grace", "grace-secret")).status == 200
    # a certificate the system does not trust is refused unless verification is turned off
    async with serve(**{"ldap.url": slapd.ldaps_url}) as api:
        r = await login(api, "grace", "grace-secret")
        assert (r.status, r.code) == (503, "SERVICE_UNAVAILABLE")
    async with serve(**{"ldap.start_tls": True}) as api:
        r = await login(api, "grace", "grace-secret")
        assert (r.status, r.code) == (503, "SERVICE_UNAVAILABLE")
    async with serve(**{"ldap.url": slapd.ldaps_url, "ldap.tls_verify": False}) as api:
        assert (await login(api, "grace", "grace-secret")).status == 200
