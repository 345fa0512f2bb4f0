"""API keys over HTTP on both dialects: shown once, stored hashed, act with the
user's role, expire, revoke, throttled last-used time, MCP guards."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from workeros.accounts.tokens import sha256_hex
from workeros.db.tables.accounts import api_keys


async def test_key_is_shown_once_stored_hashed_and_acts_as_its_user(api, sign_up, password, wos_services):
    admin_user = await sign_up("ada@example.com")
    bob = await sign_up("bob@example.com")
    admin = await api.sign_in("ada@example.com", password)
    r = await admin.post("/api/api-keys", json={"name": "ci", "user": bob["id"]})
    assert r.status == 201, r
    key = r.data["key"]
    assert key.startswith("pak_") and len(key) > 40
    assert r.data["user"] == bob["id"] and r.data["prefix"] == key[:12]
    async with wos_services.db.read() as conn:
        stored = (await conn.execute(sa.select(api_keys).where(api_keys.c.id == r.data["id"]))).mappings().one()
    assert stored["key_hash"] == sha256_hex(key) and key not in str(dict(stored))
    listed = await admin.get("/api/api-keys")
    assert [k["id"] for k in listed.data] == [r.data["id"]] and "key" not in listed.data[0]
    me = await api.with_token(key).get("/api/users/me")
    assert me.status == 200 and me.data["id"] == bob["id"]
    # Bob's key does not make him an admin.
    assert (await api.with_token(key).get("/api/users")).status == 403
    assert (await admin.get("/api/users")).status == 200
    assert admin_user["role"] == "admin"


async def test_revoked_expired_and_unknown_keys_are_401(api, sign_up, password, wos_services):
    await sign_up("ada@example.com")
    admin = await api.sign_in("ada@example.com", password)
    key = (await admin.post("/api/api-keys", json={"name": "k"})).data
    assert (await api.with_token(key["key"]).get("/api/users/me")).status == 200
    assert (await admin.delete(f"/api/api-keys/{key['id']}")).status == 204
    revoked = await api.with_token(key["key"]).get("/api/users/me")
    assert (revoked.status, revoked.code) == (401, "INVALID_CREDENTIALS")
    unknown = await api.with_token("pak_" + "x" * 43).get("/api/users/me")
    assert (unknown.status, unknown.code) == (401, "INVALID_CREDENTIALS")
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    short = (await admin.post("/api/api-keys", json={"name": "short", "expires_at": soon})).data
    async with wos_services.db.transaction() as conn:
        await conn.execute(api_keys.update().where(api_keys.c.id == short["id"])
                           .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    expired = await api.with_token(short["key"]).get("/api/users/me")
    assert (expired.status, expired.code) == (401, "TOKEN_EXPIRED")
    past = await admin.post("/api/api-keys", json={"name": "past", "expires_at": "2000-01-01T00:00:00Z"})
    assert (past.status, past.code) == (400, "INVALID_PAYLOAD")


async def test_last_used_is_recorded_and_throttled(api, sign_up, password, wos_services):
    await sign_up("ada@example.com")
    admin = await api.sign_in("ada@example.com", password)
    key = (await admin.post("/api/api-keys", json={"name": "k"})).data
    assert key["last_used_at"] is None
    assert (await api.with_token(key["key"]).get("/api/users/me")).status == 200
    first = (await admin.get(f"/api/api-keys/{key['id']}")).data["last_used_at"]
    assert first is not None
    assert (await api.with_token(key["key"]).get("/api/users/me")).status == 200
    assert (await admin.get(f"/api/api-keys/{key['id']}")).data["last_used_at"] == first


async def test_mcp_guards_are_stored_and_editable(api, sign_up, password):
    await sign_up("ada@example.com")
    admin = await api.sign_in("ada@example.com", password)
    key = (await admin.post("/api/api-keys", json={"name": "agent", "mcp_read_only": True})).data
    assert key["mcp_read_only"] is True and key["mcp_tools"] is None
    r = await admin.patch(f"/api/api-keys/{key['id']}/mcp-guards", json={"mcp_tools": ["items_read", "schema"]})
    assert r.status == 200 and r.data["mcp_tools"] == ["items_read", "schema"] and r.data["mcp_read_only"] is True
    r = await admin.patch(f"/api/api-keys/{key['id']}/mcp-guards", json={"mcp_read_only": False, "mcp_tools": None})
    assert r.data["mcp_read_only"] is False and r.data["mcp_tools"] is None
    bad = await admin.patch(f"/api/api-keys/{key['id']}/mcp-guards", json={"mcp_tools": "all"})
    assert (bad.status, bad.code) == (400, "INVALID_PAYLOAD")
    assert (await admin.patch("/api/api-keys/nope/mcp-guards", json={"mcp_read_only": True})).status == 404


async def test_users_manage_only_their_own_keys(api, sign_up, password):
    await sign_up("ada@example.com")
    bob = await sign_up("bob@example.com")
    await sign_up("cy@example.com")
    admin = await api.sign_in("ada@example.com", password)
    bob_api = await api.sign_in("bob@example.com", password)
    cy_api = await api.sign_in("cy@example.com", password)
    own = await bob_api.post("/api/api-keys", json={"name": "mine"})
    assert own.status == 201 and own.data["user"] == bob["id"]
    other = await cy_api.post("/api/api-keys", json={"name": "steal", "user": bob["id"]})
    assert other.status == 403
    assert (await cy_api.get(f"/api/api-keys/{own.data['id']}")).status == 404
    assert (await cy_api.delete(f"/api/api-keys/{own.data['id']}")).status == 404
    assert (await cy_api.get("/api/api-keys")).data == []
    assert len((await admin.get("/api/api-keys")).data) == 1
    assert (await api.anonymous().post("/api/api-keys", json={"name": "x"})).status == 403
