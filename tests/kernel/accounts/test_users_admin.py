"""``/api/users`` admin CRUD over HTTP on both dialects."""

from __future__ import annotations


async def test_admin_creates_updates_and_deletes_users(api, sign_up, password):
    await sign_up("ada@example.com")
    admin = await api.sign_in("ada@example.com", password)
    r = await admin.post("/api/users", json={"email": "ed@example.com", "password": password, "role": "public",
                                             "first_name": "Ed"})
    assert r.status == 201 and r.data["role"] == "public" and "password_hash" not in r.data
    ed = r.data
    assert (await (await api.sign_in("ed@example.com", password)).get("/api/users/me")).data["first_name"] == "Ed"
    assert (await admin.post("/api/users", json={"email": "x@example.com", "role": "nope"})).code == \
        "INVALID_PAYLOAD"
    assert (await admin.post("/api/users", json={"email": "ED@example.com"})).code == "CONFLICT"
    assert (await admin.post("/api/users", json={"email": "z@example.com", "is_admin": True})).status == 400
    ed_api = await api.sign_in("ed@example.com", password)
    suspended = await admin.patch(f"/api/users/{ed['id']}", json={"status": "suspended"})
    assert suspended.status == 200 and suspended.data["status"] == "suspended"
    assert (await ed_api.get("/api/users/me")).status == 401
    again = await api.anonymous().post("/api/auth/login", json={"email": "ed@example.com", "password": password})
    assert again.status == 401
    listed = await admin.get("/api/users")
    assert [u["email"] for u in listed.data] == ["ada@example.com", "ed@example.com"]
    assert (await admin.delete(f"/api/users/{ed['id']}")).status == 204
    assert (await admin.get(f"/api/users/{ed['id']}")).status == 404
    assert (await admin.delete(f"/api/users/{ed['id']}")).status == 404


async def test_non_admins_cannot_manage_users(api, sign_up, password):
    ada = await sign_up("ada@example.com")
    await sign_up("bob@example.com")
    bob = await api.sign_in("bob@example.com", password)
    assert (await bob.get("/api/users")).status == 403
    assert (await bob.get(f"/api/users/{ada['id']}")).status == 403
    assert (await bob.post("/api/users", json={"email": "x@example.com"})).status == 403
    assert (await bob.patch(f"/api/users/{ada['id']}", json={"first_name": "x"})).status == 403
    assert (await bob.delete(f"/api/users/{ada['id']}")).status == 403
    promote = await bob.patch("/api/users/me", json={"role": "admin"})
    assert (promote.status, promote.code) == (403, "FORBIDDEN")
    assert (await api.anonymous().get("/api/users")).status == 403


async def test_a_missing_default_role_is_a_clear_503_not_a_crash(make_server, password):
    from aiohttp.test_utils import TestClient

    async with make_server(auth__default_role="ghost") as server, TestClient(server) as client:
        async with client.post("/api/auth/sign-up", json={"email": "a@example.com", "password": password}) as r:
            assert r.status == 201  # the first user is admin whatever the default role
        async with client.post("/api/auth/sign-up", json={"email": "b@example.com", "password": password}) as r:
            body = await r.json()
            assert r.status == 503 and body["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
            assert "ghost" not in body["errors"][0]["message"]


async def test_admin_searches_and_filters_users(api, sign_up, password):
    await sign_up("ada@example.com")
    await sign_up("bob_1@example.com")
    await sign_up("bobx1@example.com")
    admin = await api.sign_in("ada@example.com", password)
    found = await admin.get("/api/users", params={"search": "BOB_"})
    assert [u["email"] for u in found.data] == ["bob_1@example.com"]  # "_" is literal
    assert [u["email"] for u in (await admin.get("/api/users", params={"role": "admin"})).data] == \
        ["ada@example.com"]
    assert len((await admin.get("/api/users", params={"status": "active", "limit": "2"})).data) == 2
    assert (await admin.get("/api/users", params={"search": "%"})).data == []
    bad = await admin.get("/api/users", params={"limit": "x"})
    assert (bad.status, bad.code) == (400, "INVALID_QUERY")


async def test_the_last_active_admin_cannot_be_removed(api, sign_up, password):
    ada = await sign_up("ada@example.com")
    bob = await sign_up("bob@example.com")
    admin = await api.sign_in("ada@example.com", password)
    for change in ({"role": "public"}, {"status": "suspended"}):
        r = await admin.patch(f"/api/users/{ada['id']}", json=change)
        assert (r.status, r.code) == (409, "CONFLICT"), change
    r = await admin.delete(f"/api/users/{ada['id']}")
    assert (r.status, r.code) == (409, "CONFLICT")
    assert (await admin.get("/api/users/me")).data["role"] == "admin"
    # With a second admin, the first may step down.
    assert (await admin.patch(f"/api/users/{bob['id']}", json={"role": "admin"})).status == 200
    assert (await admin.patch(f"/api/users/{ada['id']}", json={"role": "public"})).status == 200
    bob_admin = await api.sign_in("bob@example.com", password)
    assert (await bob_admin.delete(f"/api/users/{ada['id']}")).status == 204
    assert (await bob_admin.delete(f"/api/users/{bob['id']}")).status == 409
