"""The REST shapes Directus clients send, on both dialects, with their bad
inputs (the SDK itself drives the good paths in tests/sdk/test_directus_sdk.py):
SEARCH, PATCH with an array of items, DELETE by filter, ``fields`` on users,
cookie-mode refresh and session mode, the server endpoints."""

from __future__ import annotations

from typing import Any

from tests.plugins.rest.items_setup import create_blog

CREDENTIALS = {"email": "a@example.com", "password": "correct horse battery"}


async def test_search_reads_the_query_from_the_body(api: Any) -> None:
    await create_blog(api)
    admin = api.as_admin()
    r = await admin.request("SEARCH", "/api/items/posts", json={"query": {
        "filter": {"id": {"_in": [1, 2]}}, "fields": ["id", "title"], "sort": ["-id"], "limit": 1, "meta": "*"}})
    assert r.status == 200, r
    assert [row["id"] for row in r.data] == [2] and set(r.data[0]) == {"id", "title"}
    assert r.json["meta"]["filter_count"] == 2
    assert (await admin.request("SEARCH", "/api/items/posts", json={"filter": {}})).code == "INVALID_PAYLOAD"
    bad = await admin.request("SEARCH", "/api/items/posts", json={"query": {"filter": {"nope": {"_eq": 1}}}})
    assert bad.code == "INVALID_QUERY"
    assert (await api.anonymous().request("SEARCH", "/api/items/posts", json={"query": {}})).status == 403


async def test_patch_with_an_array_updates_each_item_with_its_own_fields(api: Any) -> None:
    await create_blog(api)
    admin = api.as_admin()
    r = await admin.patch("/api/items/posts", json=[{"id": 1, "title": "one"}, {"id": 2, "title": "two"}])
    assert r.status == 200, r
    assert sorted((row["id"], row["title"]) for row in r.data) == [(1, "one"), (2, "two")]
    # all or nothing: a missing item, or one without its key, changes nothing
    missing = await admin.patch("/api/items/posts", json=[{"id": 1, "title": "x"}, {"id": 999, "title": "y"}])
    assert missing.code == "NOT_FOUND"
    no_key = await admin.patch("/api/items/posts", json=[{"id": 1, "title": "x"}, {"title": "y"}])
    assert no_key.code == "INVALID_PAYLOAD"
    assert (await admin.patch("/api/items/posts", json=[1, 2])).code == "INVALID_PAYLOAD"
    assert (await admin.get("/api/items/posts/1")).data["title"] == "one"


async def test_delete_by_filter(api: Any) -> None:
    await create_blog(api)
    admin = api.as_admin()
    before = len((await admin.get("/api/items/posts", params={"limit": "-1"})).data)
    r = await admin.delete("/api/items/posts", json={"query": {"filter": {"id": {"_in": [1, 2]}}}})
    assert r.status == 204, r
    after = (await admin.get("/api/items/posts", params={"limit": "-1", "fields": "id"})).data
    assert len(after) == before - 2 and {1, 2}.isdisjoint(row["id"] for row in after)
    for body in ({"query": {"filter": {}}}, {"query": {}}, {"query": "x"}):
        assert (await admin.delete("/api/items/posts", json=body)).code == "INVALID_PAYLOAD", body
    assert (await admin.delete("/api/items/posts", json={"query": {"filter": {"nope": {"_eq": 1}}}})).code \
        == "INVALID_QUERY"
    # a caller who may not delete learns nothing
    r = await api.anonymous().delete("/api/items/posts", json={"query": {"filter": {"id": {"_gt": 0}}}})
    assert r.status == 403


async def test_fields_on_users(api: Any) -> None:
    await api.anonymous().post("/api/auth/sign-up", json=CREDENTIALS)
    user = await api.sign_in(**CREDENTIALS)
    me = await user.get("/api/users/me", params={"fields": "id,email"})
    assert set(me.data) == {"id", "email"}
    assert set((await user.get("/api/users/me", params={"fields": "*"})).data) > {"id", "email", "role"}
    listed = await user.get("/api/users", params={"fields[]": "email"})
    assert listed.data == [{"email": CREDENTIALS["email"]}]
    assert (await user.get("/api/users/me", params={"fields": "password_hash"})).code == "INVALID_QUERY"


async def test_cookie_mode_refresh_and_session_mode(api: Any) -> None:
    anonymous = api.anonymous()
    await anonymous.post("/api/auth/sign-up", json=CREDENTIALS)
    client = api.client
    # session mode: the cookie is the credential, no token in the body
    r = await client.post("/api/auth/login", json={**CREDENTIALS, "mode": "session"})
    body = (await r.json())["data"]
    assert r.status == 200 and body["access_token"] is None and body["refresh_token"] is None
    assert body["expires"] > 0
    assert (await client.get("/api/users/me")).status == 200  # by the cookie
    # refresh from the cookie alone, without the CSRF header
    r = await client.post("/api/auth/refresh", json={"mode": "cookie"})
    refreshed = (await r.json())["data"]
    assert r.status == 200 and refreshed["access_token"] and refreshed["refresh_token"] is None
    me = await client.get("/api/users/me", headers={"Authorization": f"Bearer {refreshed['access_token']}"})
    assert me.status == 200
    r = await client.post("/api/auth/refresh", json={"mode": "session"})
    assert r.status == 200 and (await r.json())["data"]["access_token"] is None
    # a write by the cookie still needs the CSRF header
    assert (await client.patch("/api/users/me", json={"first_name": "A"})).status == 403
    # sign-out by the cookie, then the cookie refreshes nothing
    assert (await client.post("/api/auth/logout", json={"mode": "cookie"})).status == 204
    r = await client.post("/api/auth/refresh", json={"mode": "cookie"})
    assert r.status in (400, 401)
    assert (await anonymous.post("/api/auth/login", json={**CREDENTIALS, "mode": "other"})).code == "INVALID_PAYLOAD"


async def test_server_endpoints_directus_clients_call(api: Any) -> None:
    anonymous = api.anonymous()
    r = await api.client.get("/api/server/ping")
    assert r.status == 200 and await r.text() == "pong"
    info = await anonymous.get("/api/server/info")
    assert info.data == {"project": {"project_name": "workeros"}}  # no version for anonymous callers
    assert "version" in (await api.as_admin().get("/api/server/info")).data
    spec = await anonymous.get("/api/server/specs/oas")
    assert spec.status == 200 and spec.json["openapi"].startswith("3.")
    providers = await anonymous.get("/api/auth")
    assert {"name": "password", "driver": "credential", "icon": None} in providers.data
    gql = await api.as_admin().post("/api/graphql/system", json={"query": "{ __typename }"})
    assert gql.status == 200 and gql.json["data"] == {"__typename": "Query"}
