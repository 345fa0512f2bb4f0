"""Revisions and point-in-time restore over HTTP, on both dialects."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import sqlalchemy as sa

from workeros.db.tables.audit import activity, revisions
from workeros.http.keys import SERVICES


def _services(api: Any) -> Any:
    return api.server.app[SERVICES]


async def _setup(admin: Any) -> None:
    r = await admin.post("/api/collections", json={"collection": "notes", "fields": [
        {"field": "title", "type": "string", "nullable": False},
        {"field": "score", "type": "integer"},
        {"field": "price", "type": "decimal", "options": {"precision": 8, "scale": 2}},
        {"field": "seen_at", "type": "datetime"},
    ]})
    assert r.status == 201, r


async def _moment() -> str:
    """A time strictly between the changes before and after it."""
    await asyncio.sleep(0.01)
    at = dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
    await asyncio.sleep(0.01)
    return at


async def _all(admin: Any) -> dict[int, dict]:
    r = await admin.get("/api/items/notes", params={"sort": "id", "limit": "-1"})
    assert r.status == 200, r
    return {row["id"]: row for row in r.data}


async def test_restore_item_to_a_time_and_to_a_revision(api: Any) -> None:
    admin = api.as_admin()
    await _setup(admin)
    r = await admin.post("/api/items/notes", json={"title": "one", "score": 1, "price": "1.50",
                                                     "seen_at": "2024-01-01T00:00:00Z"})
    key = r.data["id"]
    t1 = await _moment()
    assert (await admin.patch(f"/api/items/notes/{key}", json={"title": "two", "score": 2})).status == 200
    t2 = await _moment()
    assert (await admin.patch(f"/api/items/notes/{key}", json={"title": "three", "price": None})).status == 200

    r = await admin.post(f"/api/items/notes/{key}/restore", params={"at": t1})
    assert r.status == 200, r
    assert r.data == {"created": [], "updated": [key], "deleted": []}
    row = (await admin.get(f"/api/items/notes/{key}")).data
    assert (row["title"], row["score"], row["price"], row["seen_at"]) == ("one", 1, "1.50", "2024-01-01T00:00:00Z")

    # the restore is itself a revision, with an activity row saying where from
    revs = (await admin.get("/api/revisions", params={"collection": "notes", "item": str(key)})).data
    assert [x["action"] for x in revs] == ["item.update", "item.update", "item.update", "item.create"]
    assert revs[0]["data"]["title"] == "one" and revs[0]["delta"] == {"title": "one", "score": 1, "price": "1.50"}

    # back to the revision written at t2's state ("two")
    second = next(x for x in revs if x["data"]["title"] == "two")
    r = await admin.post(f"/api/revisions/{second['id']}/restore")
    assert r.status == 200, r
    assert (await admin.get(f"/api/items/notes/{key}")).data["title"] == "two"

    # restoring to "now" changes nothing
    r = await admin.post(f"/api/items/notes/{key}/restore", params={"at": await _moment()})
    assert r.data == {"created": [], "updated": [], "deleted": []}
    assert t2  # the later moment exists between the two updates


async def test_restore_recreates_a_deleted_item_and_removes_a_later_one(api: Any) -> None:
    admin = api.as_admin()
    await _setup(admin)
    key = (await admin.post("/api/items/notes", json={"title": "kept"})).data["id"]
    t1 = await _moment()
    assert (await admin.delete(f"/api/items/notes/{key}")).status == 204
    r = await admin.post(f"/api/items/notes/{key}/restore", params={"at": t1})
    assert r.status == 200 and r.data["created"] == [key], r
    assert (await admin.get(f"/api/items/notes/{key}")).data["title"] == "kept"

    later = (await admin.post("/api/items/notes", json={"title": "later"})).data["id"]
    r = await admin.post(f"/api/items/notes/{later}/restore", params={"at": t1})
    assert r.data["deleted"] == [later]
    assert (await admin.get(f"/api/items/notes/{later}")).status == 404

    # new rows after a re-creation still get fresh keys
    fresh = (await admin.post("/api/items/notes", json={"title": "fresh"})).data["id"]
    assert fresh > max(key, later)


async def test_restore_whole_collection_to_a_point_in_time(api: Any) -> None:
    admin = api.as_admin()
    wos_services = _services(api)
    await _setup(admin)
    created = (await admin.post("/api/items/notes", json=[
        {"title": f"n{i}", "score": i} for i in range(1, 6)])).data
    keys = [row["id"] for row in created]
    before = await _all(admin)
    t1 = await _moment()

    assert (await admin.patch("/api/items/notes", json={"keys": keys[:2], "data": {"score": 100}})).status == 200
    assert (await admin.delete("/api/items/notes", json=keys[2:4])).status == 204
    extra = (await admin.post("/api/items/notes", json=[{"title": "x"}, {"title": "y"}])).data
    untouched_after = keys[4]

    r = await admin.post("/api/collections/notes/restore", params={"at": t1})
    assert r.status == 200, r
    assert sorted(r.data["updated"]) == keys[:2]
    assert sorted(r.data["created"]) == keys[2:4]
    assert sorted(r.data["deleted"]) == sorted(row["id"] for row in extra)
    assert await _all(admin) == before
    assert untouched_after in before

    # one audited action for the whole restore, in the same transaction as the rows
    async with wos_services.db.read() as conn:
        rows = (await conn.execute(sa.select(activity.c.action, activity.c.meta)
                                   .where(activity.c.action == "collection.restore"))).all()
        assert len(rows) == 1 and rows[0].meta["at"].startswith(t1[:19])
        count = (await conn.execute(sa.select(sa.func.count()).select_from(revisions)
                                    .where(revisions.c.collection == "notes"))).scalar()
    assert count == 5 + 2 + 2 + 2 + 2 + 2 + 2  # creates, updates, deletes, extra creates, then the restore's 6

    # and it can be undone the same way
    t2 = await _moment()
    assert (await admin.post("/api/items/notes", json={"title": "z"})).status == 200
    r = await admin.post("/api/collections/notes/restore", params={"at": t2})
    assert len(r.data["deleted"]) == 1 and await _all(admin) == before


async def test_restore_errors(api: Any) -> None:
    admin = api.as_admin()
    await _setup(admin)
    key = (await admin.post("/api/items/notes", json={"title": "a"})).data["id"]
    cases = [
        (admin.post(f"/api/items/notes/{key}/restore"), 400, "INVALID_QUERY"),
        (admin.post(f"/api/items/notes/{key}/restore", params={"at": "yesterday"}), 400, "INVALID_QUERY"),
        (admin.post("/api/items/notes/999/restore", params={"at": "2020-01-01T00:00:00Z"}), 404, "NOT_FOUND"),
        (admin.post("/api/items/nope/1/restore", params={"at": "2020-01-01T00:00:00Z"}), 404, "NOT_FOUND"),
        (admin.post("/api/revisions/999999/restore"), 404, "NOT_FOUND"),
        (admin.post("/api/revisions/abc/restore"), 404, "NOT_FOUND"),
        (admin.get("/api/revisions", params={"limit": "5000"}), 400, "INVALID_QUERY"),
        (admin.get("/api/revisions", params={"before": "soon"}), 400, "INVALID_QUERY"),
        (api.anonymous().post("/api/collections/notes/restore", params={"at": "2020-01-01T00:00:00Z"}),
         403, "FORBIDDEN"),
        (api.anonymous().get("/api/revisions"), 403, "FORBIDDEN"),
    ]
    for call, status, code in cases:
        r = await call
        assert (r.status, r.code) == (status, code), r
    # a unique value taken by another item since then: 409, and nothing changes
    r = await admin.post("/api/fields/notes", json={"field": "code", "type": "string", "unique": True})
    assert r.status == 201, r
    await admin.patch(f"/api/items/notes/{key}", json={"code": "A"})
    t1 = await _moment()
    await admin.patch(f"/api/items/notes/{key}", json={"code": "B", "title": "changed"})
    other = (await admin.post("/api/items/notes", json={"title": "b", "code": "A"})).data["id"]
    r = await admin.post(f"/api/items/notes/{key}/restore", params={"at": t1})
    assert (r.status, r.code) == (409, "CONFLICT"), r
    assert "SQL" not in r.json["errors"][0]["message"]
    row = (await admin.get(f"/api/items/notes/{key}")).data
    assert (row["code"], row["title"]) == ("B", "changed")
    assert (await admin.get(f"/api/items/notes/{other}")).data["code"] == "A"


async def test_retention_purges_old_revisions(api: Any) -> None:
    admin = api.as_admin()
    wos_services = _services(api)
    await _setup(admin)
    await admin.post("/api/items/notes", json={"title": "old"})
    service = wos_services.revisions
    service.retention_days = 1
    assert (await service.purge())["revisions"] == 0
    result = await service.purge(now=dt.datetime.now(dt.UTC) + dt.timedelta(days=2))
    assert result["revisions"] == 1
    r = await admin.post("/api/items/notes/1/restore", params={"at": "2000-01-01T00:00:00Z"})
    assert (r.status, r.code) == (400, "INVALID_QUERY")


async def test_non_admins_see_revisions_only_of_items_and_fields_they_may_read(api: Any) -> None:
    admin = api.as_admin()
    await _setup(admin)
    r = await admin.post("/api/collections", json={"collection": "secrets", "fields": [
        {"field": "title", "type": "string"}]})
    assert r.status == 201, r
    r = await admin.post("/api/roles", json={"name": "viewer"})
    role = str(r.data["id"])
    r = await admin.post("/api/permissions", json={"role": role, "collection": "notes", "action": "read",
                                                   "filter": {"score": {"_gt": 0}}, "fields": ["id", "title"]})
    assert r.status in (200, 201), r
    visible = (await admin.post("/api/items/notes", json={"title": "shown", "score": 1, "price": "2.50"})).data["id"]
    hidden = (await admin.post("/api/items/notes", json={"title": "hidden", "score": 0})).data["id"]
    await admin.patch(f"/api/items/notes/{visible}", json={"title": "shown 2", "price": "3.00"})
    await admin.post("/api/items/secrets", json={"title": "x"})
    viewer = api.as_role(role, user="u1")

    r = await viewer.get("/api/revisions")
    assert r.status == 200, r
    assert {(row["collection"], row["item"]) for row in r.data} == {("notes", str(visible))}
    assert [row["data"] for row in r.data] == [{"id": visible, "title": "shown 2"}, {"id": visible, "title": "shown"}]
    assert r.data[0]["delta"] == {"title": "shown 2"}  # the price change is cut, not shown
    r = await viewer.get("/api/revisions", params={"collection": "notes", "item": str(hidden)})
    assert r.status == 200 and r.data == []
    for params in ({"collection": "secrets"}, {"collection": "nope"}):
        r = await viewer.get("/api/revisions", params=params)
        assert r.status == 403 and r.code == "FORBIDDEN", r
    # an item that leaves the caller's view takes its history with it
    await admin.patch(f"/api/items/notes/{visible}", json={"score": 0})
    r = await viewer.get("/api/revisions")
    assert r.status == 200 and r.data == []


# -- a restore is an ordinary write: every rule of the action it performs ------------------

async def _editor(api: Any, admin: Any, *, read: Any = None, create: dict | None = None,
                  update: dict | None = None, delete: Any = "none") -> Any:
    """A role with the given rules on ``notes`` (``None`` = no rule for that action)."""
    role = (await admin.post("/api/roles", json={"name": "editor"})).data["id"]
    rules = {"read": {"filter": read}, "create": create, "update": update,
             "delete": None if delete == "none" else {"filter": delete}}
    for action, rule in rules.items():
        if rule is None:
            continue
        r = await admin.post("/api/permissions", json={"role": role, "collection": "notes", "action": action, **rule})
        assert r.status in (200, 201), r
    return api.as_role(role, user="u1")


async def _revision_ids(admin: Any, key: Any) -> list[int]:
    r = await admin.get("/api/revisions", params={"collection": "notes", "item": str(key), "sort": "id"})
    return sorted(row["id"] for row in r.data)


async def test_restore_applies_the_update_rules_validation_and_presets(api: Any) -> None:
    admin = api.as_admin()
    await _setup(admin)
    assert (await admin.post("/api/fields/notes", json={"field": "touched_by", "type": "string"})).status == 201
    editor = await _editor(api, admin, update={"fields": ["title", "score"], "validation": {"score": {"_lt": 100}},
                                               "presets": {"touched_by": "$CURRENT_USER"}})
    key = (await admin.post("/api/items/notes", json={"title": "a", "score": 150})).data["id"]
    assert (await admin.patch(f"/api/items/notes/{key}", json={"score": 50})).status == 200
    first, _ = await _revision_ids(admin, key)
    r = await editor.post(f"/api/revisions/{first}/restore")  # back to score 150: the validation refuses
    assert (r.status, r.code) == (400, "INVALID_PAYLOAD"), r
    assert (await admin.get(f"/api/items/notes/{key}")).data["score"] == 50
    assert (await admin.patch(f"/api/items/notes/{key}", json={"title": "b"})).status == 200
    middle = (await _revision_ids(admin, key))[1]  # title a, score 50
    r = await editor.post(f"/api/revisions/{middle}/restore")
    assert (r.status, r.data) == (200, {"created": [], "updated": [key], "deleted": []}), r
    row = (await admin.get(f"/api/items/notes/{key}")).data
    assert (row["title"], row["score"], row["touched_by"]) == ("a", 50, "u1")  # the preset applied


async def test_restore_never_writes_fields_outside_the_allowlist_and_never_names_them(api: Any) -> None:
    admin = api.as_admin()
    await _setup(admin)
    editor = await _editor(api, admin, update={"fields": ["title"]}, create={"fields": ["title"]})
    key = (await admin.post("/api/items/notes", json={"title": "a", "score": 7})).data["id"]
    assert (await admin.patch(f"/api/items/notes/{key}", json={"title": "b", "score": 8})).status == 200
    first = (await _revision_ids(admin, key))[0]
    r = await editor.post(f"/api/revisions/{first}/restore")
    assert (r.status, r.code) == (403, "FORBIDDEN"), r
    assert "score" not in r.json["errors"][0]["message"]
    assert (await admin.get(f"/api/items/notes/{key}")).data["score"] == 8
    # Re-creating a deleted item: its non-empty fields outside the create allowlist refuse it too.
    assert (await admin.delete(f"/api/items/notes/{key}")).status == 204
    r = await editor.post(f"/api/revisions/{first}/restore")
    assert (r.status, r.code) == (403, "FORBIDDEN"), r
    assert "score" not in r.json["errors"][0]["message"]
    assert (await admin.get(f"/api/items/notes/{key}")).status == 404


async def test_restore_cannot_recreate_what_the_caller_could_never_create(api: Any) -> None:
    admin = api.as_admin()
    await _setup(admin)
    assert (await admin.post("/api/fields/notes", json={"field": "owner", "type": "string"})).status == 201
    mine = {"owner": {"_eq": "$CURRENT_USER"}}
    editor = await _editor(api, admin, read=mine, update={"filter": mine}, delete=mine,
                           create={"validation": mine, "presets": {"owner": "$CURRENT_USER"}})
    theirs = (await admin.post("/api/items/notes", json={"title": "theirs", "owner": "u2"})).data["id"]
    own = (await editor.post("/api/items/notes", json={"title": "own"})).data["id"]
    theirs_rev = (await _revision_ids(admin, theirs))[0]
    own_rev = (await _revision_ids(admin, own))[0]
    assert (await admin.delete(f"/api/items/notes/{theirs}")).status == 204
    assert (await editor.delete(f"/api/items/notes/{own}")).status == 204
    # Another owner's row: the caller cannot read its revision, so it does not exist for them.
    r = await editor.post(f"/api/revisions/{theirs_rev}/restore")
    assert (r.status, r.code) == (404, "NOT_FOUND"), r
    r = await editor.post(f"/api/items/notes/{theirs}/restore", params={"at": "2999-01-01T00:00:00Z"})
    assert (r.status, r.code) == (404, "NOT_FOUND"), r
    assert (await admin.get(f"/api/items/notes/{theirs}")).status == 404
    # Their own row comes back, under the create rule.
    r = await editor.post(f"/api/revisions/{own_rev}/restore")
    assert (r.status, r.data["created"]) == (200, [own]), r
    assert (await editor.get(f"/api/items/notes/{own}")).data["title"] == "own"


async def test_restore_needs_read_access_and_a_signed_in_caller(api: Any) -> None:
    admin = api.as_admin()
    await _setup(admin)
    editor = await _editor(api, admin, read={"score": {"_gt": 10}}, update={})
    hidden = (await admin.post("/api/items/notes", json={"title": "a", "score": 1})).data["id"]
    assert (await admin.patch(f"/api/items/notes/{hidden}", json={"title": "b"})).status == 200
    first = (await _revision_ids(admin, hidden))[0]
    r = await editor.post(f"/api/revisions/{first}/restore")
    assert (r.status, r.code) == (404, "NOT_FOUND"), r
    r = await api.anonymous().post(f"/api/revisions/{first}/restore")
    assert (r.status, r.code) == (403, "FORBIDDEN"), r
    r = await api.anonymous().post(f"/api/items/notes/{hidden}/restore", params={"at": "2999-01-01T00:00:00Z"})
    assert (r.status, r.code) == (403, "FORBIDDEN"), r
    assert (await admin.get(f"/api/items/notes/{hidden}")).data["title"] == "b"
