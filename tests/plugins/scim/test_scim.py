"""SCIM 2.0 over HTTP, driven the way Okta and Azure AD drive it, both dialects."""

from __future__ import annotations

from typing import Any

import orjson
from callers import ApiResponse
from conftest import SCIM_TOKEN

from workeros.http.keys import SERVICES

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


async def scim(api: Any, method: str, path: str, body: Any = None, token: str | None = SCIM_TOKEN,
               **params: str) -> ApiResponse:
    headers = {"Content-Type": "application/scim+json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = orjson.dumps(body) if body is not None else None
    async with api.client.request(method, f"/scim/v2{path}", headers=headers, data=data, params=params) as r:
        return ApiResponse(r.status, r.headers, await r.read())


def okta_user(email: str, **extra: Any) -> dict[str, Any]:
    return {"schemas": [USER], "userName": email, "name": {"givenName": "Ada", "familyName": "Lovelace"},
            "emails": [{"primary": True, "value": email, "type": "work"}], "displayName": "Ada Lovelace",
            "locale": "en-US", "externalId": "00u1okta", "groups": [], "password": "Ignored-1234",
            "active": True, **extra}


async def session_for(api: Any, user: str) -> str:
    session = await api.server.app[SERVICES].accounts.issue_session(user, provider="oauth:okta", browser=False)
    return session.access_token


async def test_okta_sequence(api, sign_up):
    await sign_up("owner@example.com")
    found = await scim(api, "GET", "/Users", filter='userName eq "ada@example.com"', startIndex="1", count="100")
    assert found.status == 200 and found.json["totalResults"] == 0 and found.json["Resources"] == []
    created = await scim(api, "POST", "/Users", okta_user("ada@example.com"))
    assert created.status == 201 and created.headers["Content-Type"].startswith("application/scim+json")
    ada = created.json
    assert ada["userName"] == "ada@example.com" and ada["active"] is True and ada["externalId"] == "00u1okta"
    assert ada["name"] == {"givenName": "Ada", "familyName": "Lovelace"}
    assert ada["meta"]["location"] == f"http://wos.test/scim/v2/Users/{ada['id']}"
    again = await scim(api, "POST", "/Users", okta_user("ada@example.com"))
    assert again.status == 409 and again.json["scimType"] == "uniqueness"
    found = await scim(api, "GET", "/Users", filter='userName eq "ADA@example.com"')
    assert found.json["totalResults"] == 1 and found.json["Resources"][0]["id"] == ada["id"]
    assert (await scim(api, "GET", f"/Users/{ada['id']}")).json["userName"] == "ada@example.com"
    user = (await api.as_admin().get(f"/api/users/{ada['id']}")).data
    assert user["role"] is None and user["first_name"] == "Ada"  # default role; the owner was first
    # She signs in (through the identity provider); then Okta deactivates her.
    token = await session_for(api, ada["id"])
    assert (await api.with_token(token).get("/api/users/me")).status == 200
    off = await scim(api, "PATCH", f"/Users/{ada['id']}",
                     {"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": False}}]})
    assert off.status == 200 and off.json["active"] is False
    assert (await api.with_token(token).get("/api/users/me")).status == 401
    assert (await api.as_admin().get(f"/api/users/{ada['id']}")).data["status"] == "suspended"
    on = await scim(api, "PATCH", f"/Users/{ada['id']}",
                    {"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": True}}]})
    assert on.json["active"] is True
    # Okta updates profiles with PUT.
    put = await scim(api, "PUT", f"/Users/{ada['id']}", okta_user("ada@example.com", name={
        "givenName": "Augusta", "familyName": "King"}))
    assert put.status == 200 and put.json["name"]["givenName"] == "Augusta"
    gone = await scim(api, "DELETE", f"/Users/{ada['id']}")
    assert gone.status == 204
    missing = await scim(api, "GET", f"/Users/{ada['id']}")
    assert missing.status == 404 and missing.json["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]
    assert missing.json["status"] == "404"


async def test_azure_style_patches(api, sign_up):
    await sign_up("owner@example.com")
    ada = (await scim(api, "POST", "/Users", okta_user("ada@example.com"))).json
    token = await session_for(api, ada["id"])
    r = await scim(api, "PATCH", f"/Users/{ada['id']}", {"schemas": [PATCH], "Operations": [
        {"op": "Replace", "path": "active", "value": "False"},
        {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "ada@new.example"},
        {"op": "Replace", "path": "name.familyName", "value": "Byron"},
        {"op": "Add", "path": "externalId", "value": "azure-1"},
        {"op": "Replace", "path": "displayName", "value": "ignored"}]})
    assert r.status == 200, r
    assert (r.json["active"], r.json["userName"], r.json["name"]["familyName"], r.json["externalId"]) == (
        False, "ada@new.example", "Byron", "azure-1")
    assert (await api.with_token(token).get("/api/users/me")).status == 401
    found = await scim(api, "GET", "/Users", filter='externalId eq "azure-1"')
    assert found.json["totalResults"] == 1
    bad = await scim(api, "PATCH", f"/Users/{ada['id']}", {"Operations": [{"op": "move", "path": "active"}]})
    assert bad.status == 400 and bad.json["scimType"] == "invalidValue"
    bad = await scim(api, "PATCH", f"/Users/{ada['id']}", {"Operations": [{"op": "replace", "path": "active",
                                                                           "value": "maybe"}]})
    assert bad.status == 400


async def test_groups_map_to_roles(api, sign_up):
    await sign_up("owner@example.com")
    editor = (await api.as_admin().post("/api/roles", json={"name": "editor"})).data["id"]
    ada = (await scim(api, "POST", "/Users", okta_user("ada@example.com"))).json
    bob = (await scim(api, "POST", "/Users", okta_user("bob@example.com", externalId="00u2"))).json
    group = await scim(api, "POST", "/Groups", {"schemas": [GROUP], "displayName": "Editors",
                                                "members": [{"value": ada["id"]}]})
    assert group.status == 201 and [m["value"] for m in group.json["members"]] == [ada["id"]]
    gid = group.json["id"]

    async def role(user: dict[str, Any]) -> Any:
        return (await api.as_admin().get(f"/api/users/{user['id']}")).data["role"]

    assert await role(ada) == editor and await role(bob) is None
    # Okta adds and removes members with PATCH.
    r = await scim(api, "PATCH", f"/Groups/{gid}", {"schemas": [PATCH], "Operations": [
        {"op": "add", "path": "members", "value": [{"value": bob["id"], "display": "bob@example.com"}]}]})
    assert r.status == 200 and await role(bob) == editor
    r = await scim(api, "PATCH", f"/Groups/{gid}", {"schemas": [PATCH], "Operations": [
        {"op": "remove", "path": f'members[value eq "{ada["id"]}"]'}]})
    assert r.status == 200 and await role(ada) is None and await role(bob) == editor
    assert (await scim(api, "GET", f"/Users/{bob['id']}")).json["groups"] == [{"value": gid, "display": "Editors"}]
    found = await scim(api, "GET", "/Groups", filter='displayName eq "Editors"')
    assert found.json["totalResults"] == 1
    # An unmapped group changes no role; deleting the mapped one gives back the default.
    other = await scim(api, "POST", "/Groups", {"displayName": "Staff", "members": [{"value": ada["id"]}]})
    assert other.status == 201 and await role(ada) is None
    assert (await scim(api, "DELETE", f"/Groups/{gid}")).status == 204
    assert await role(bob) is None
    bad = await scim(api, "POST", "/Groups", {"displayName": "Ghosts", "members": [{"value": "nobody"}]})
    assert bad.status == 400
    dup = await scim(api, "POST", "/Groups", {"displayName": "Staff"})
    assert dup.status == 409


async def test_first_provisioned_user_is_admin(api):
    ada = (await scim(api, "POST", "/Users", okta_user("ada@example.com"))).json
    assert (await api.as_admin().get(f"/api/users/{ada['id']}")).data["role"] == "admin"


async def test_token_filters_and_discovery(api):
    for token in (None, "wrong", ""):
        r = await scim(api, "GET", "/Users", token=token)
        assert r.status == 401 and r.json["status"] == "401", token
    r = await scim(api, "GET", "/Users", filter='userName co "ada"')
    assert r.status == 400 and r.json["scimType"] == "invalidFilter"
    r = await scim(api, "GET", "/Users", startIndex="x")
    assert r.status == 400
    r = await scim(api, "POST", "/Users", {"userName": "not an address"})
    assert r.status == 400
    r = await scim(api, "POST", "/Users", [1, 2])
    assert r.status == 400
    config = await scim(api, "GET", "/ServiceProviderConfig")
    assert config.json["patch"]["supported"] is True and config.json["bulk"]["supported"] is False
    types = await scim(api, "GET", "/ResourceTypes")
    assert {t["id"] for t in types.json["Resources"]} == {"User", "Group"}
    schemas = await scim(api, "GET", "/Schemas")
    assert {s["id"] for s in schemas.json["Resources"]} == {USER, GROUP}
    # A user's access token is not a SCIM token.
    r = await scim(api, "GET", "/Users", token="pak_not-a-scim-token")
    assert r.status == 401


async def test_without_a_token_configured_scim_is_off(make_server):
    from aiohttp.test_utils import TestClient
    from callers import Api

    async with make_server(scim__token="") as server, TestClient(server) as client:
        r = await scim(Api(client), "GET", "/Users")
    assert r.status == 503
