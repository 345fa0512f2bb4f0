"""Auth events write activity rows; ``GET /api/activity`` shows admins every
row and anyone else only their own (both dialects)."""

from __future__ import annotations

import json


async def test_auth_events_are_recorded(api, sign_up, password):
    ada = await sign_up("ada@example.com")
    await api.anonymous().post("/api/auth/login", json={"email": "ada@example.com", "password": "wrong-wrong"},
                               headers={"User-Agent": "probe/1"})
    admin = await api.sign_in("ada@example.com", password)
    await admin.post("/api/api-keys", json={"name": "k"})
    await admin.post("/api/auth/logout")
    admin = await api.sign_in("ada@example.com", password)
    rows = (await admin.get("/api/activity", params={"sort": "id"})).data
    actions = [r["action"] for r in rows]
    assert actions == ["auth.sign_up", "auth.login_failed", "auth.login", "api_key.create", "auth.logout",
                       "auth.login"]
    failed = rows[1]
    assert failed["user"] == ada["id"] and failed["user_agent"] == "probe/1" and failed["ip"]
    assert failed["meta"]["reason"] == "credentials"
    assert all(r["timestamp"].endswith("Z") for r in rows)


async def test_non_admin_sees_only_their_own_rows(api, sign_up, password):
    await sign_up("ada@example.com")
    bob = await sign_up("bob@example.com")
    admin = await api.sign_in("ada@example.com", password)
    bob_api = await api.sign_in("bob@example.com", password)
    mine = (await bob_api.get("/api/activity")).data
    assert mine and {r["user"] for r in mine} == {bob["id"]}
    # Asking for someone else's rows through the filter still shows only one's own.
    others = await bob_api.get("/api/activity", params={"filter": json.dumps({"user": {"_neq": bob["id"]}})})
    assert others.status == 200 and others.data == []
    everyone = (await admin.get("/api/activity")).data
    assert len({r["user"] for r in everyone}) == 2
    assert (await api.anonymous().get("/api/activity")).status == 403


async def test_filter_sort_and_limit(api, sign_up, password):
    await sign_up("ada@example.com")
    for _ in range(3):
        await api.sign_in("ada@example.com", password)
    admin = await api.sign_in("ada@example.com", password)
    logins = await admin.get("/api/activity", params={"filter": json.dumps({"action": {"_eq": "auth.login"}}),
                                                      "limit": "2", "sort": "-id"})
    assert logins.status == 200 and len(logins.data) == 2
    assert logins.data[0]["id"] > logins.data[1]["id"]
    assert {r["action"] for r in logins.data} == {"auth.login"}
    starts = await admin.get("/api/activity", params={"filter": json.dumps(
        {"_or": [{"action": {"_starts_with": "auth.sign"}}, {"action": {"_in": ["nothing"]}}]})})
    assert [r["action"] for r in starts.data] == ["auth.sign_up"]
    since = await admin.get("/api/activity", params={"filter": json.dumps(
        {"timestamp": {"_gte": "2000-01-01T00:00:00Z"}}), "page": "2", "limit": "2"})
    assert len(since.data) == 2
    for bad in ({"secret": {"_eq": 1}}, {"action": {"_regex": "x"}}, "[", {"timestamp": {"_gt": "soon"}}):
        r = await admin.get("/api/activity", params={"filter": bad if isinstance(bad, str) else json.dumps(bad)})
        assert (r.status, r.code) == (400, "INVALID_QUERY"), bad
    assert (await admin.get("/api/activity", params={"sort": "meta"})).code == "INVALID_QUERY"
    assert (await admin.get("/api/activity", params={"limit": "abc"})).code == "INVALID_QUERY"
