"""What the database's ``on_delete`` rules do (``set null``, ``cascade``) is recorded
like any write: a revision and an activity row per affected item, so history tells
the truth and a restore works; foreign key errors name the field and the direction.
Over HTTP, on both dialects."""

from __future__ import annotations

from typing import Any

from tests.kernel.schema.schema_helpers import assert_error, create


async def _setup(api: Any) -> Any:
    admin = api.as_admin()
    await create(api, "authors", {"field": "name", "type": "string"})
    await create(api, "posts", {"field": "title", "type": "string"})
    await create(api, "comments", {"field": "body", "type": "string"})
    await create(api, "awards", {"field": "label", "type": "string"})
    for body in ({"collection": "posts", "field": "author", "related_collection": "authors", "on_delete": "set null"},
                 {"collection": "comments", "field": "post", "related_collection": "posts", "on_delete": "cascade"},
                 {"collection": "comments", "field": "reply_to", "related_collection": "comments",
                  "on_delete": "cascade"},
                 {"collection": "awards", "field": "post", "related_collection": "posts", "on_delete": "restrict"}):
        r = await admin.post("/api/relations", json=body)
        assert r.status == 201, r
    assert (await admin.post("/api/items/authors", json={"name": "Ada"})).status == 200
    assert (await admin.post("/api/items/posts", json=[{"title": "p1", "author": 1}, {"title": "p2", "author": 1},
                                                      {"title": "p3", "author": None}])).status == 200
    r = await admin.post("/api/items/comments", json=[{"body": "c1", "post": 1}, {"body": "c2", "post": 2},
                                                      {"body": "c3", "post": 2, "reply_to": 2},
                                                      {"body": "c4", "post": 3, "reply_to": 3}])
    assert r.status == 200, r
    return admin


async def _revisions(admin: Any, collection: str, item: Any) -> list[dict[str, Any]]:
    r = await admin.get("/api/revisions", params={"collection": collection, "item": str(item)})
    assert r.status == 200, r
    return r.data


async def test_set_null_and_cascade_are_recorded(api: Any) -> None:
    admin = await _setup(api)
    assert (await admin.delete("/api/items/authors/1")).status == 204
    for key in (1, 2):
        latest = (await _revisions(admin, "posts", key))[0]
        assert latest["delta"] == {"author": None}, latest
        assert latest["data"]["author"] is None and latest["data"]["title"] == f"p{key}"
    assert len(await _revisions(admin, "posts", 3)) == 1  # untouched: only its create
    r = await admin.get("/api/activity", params={"filter[collection][_eq]": "posts", "sort": "-id", "limit": "2"})
    assert [a["action"] for a in r.data] == ["item.update", "item.update"], r

    # cascade: p4 deleted takes c4 with it, and c4's reply (via the self-referencing cascade)
    assert (await admin.post("/api/items/comments", json={"body": "c5", "post": 1, "reply_to": 4})).status == 200
    assert (await admin.delete("/api/items/posts/3")).status == 204
    for key in (4, 5):
        latest = (await _revisions(admin, "comments", key))[0]
        assert latest["data"] is None, latest
    assert [c["body"] for c in (await admin.get("/api/items/comments", params={"sort": "id"})).data] == \
        ["c1", "c2", "c3"]
    # ... so history can be restored: the post first, then its comments
    rev = (await _revisions(admin, "posts", 3))[-1]
    assert (await admin.post(f"/api/revisions/{rev['id']}/restore")).status == 200
    rev = [x for x in await _revisions(admin, "comments", 4) if x["data"] is not None][0]
    r = await admin.post(f"/api/revisions/{rev['id']}/restore")
    assert r.status == 200, r
    assert (await admin.get("/api/items/comments/4")).data["body"] == "c4"


async def test_foreign_key_errors_name_field_and_direction(api: Any) -> None:
    admin = await _setup(api)
    # outgoing: a written relational field whose item does not exist
    r = await admin.post("/api/items/posts", json={"title": "x", "author": 99})
    assert_error(r, 409, "CONFLICT")
    assert "'author'" in r.json["errors"][0]["message"] and "'authors'" in r.json["errors"][0]["message"]
    r = await admin.patch("/api/items/comments/1", json={"post": 42})
    assert_error(r, 409, "CONFLICT")
    assert "'post'" in r.json["errors"][0]["message"] and "does not exist" in r.json["errors"][0]["message"]
    # incoming: a restrict relation still holding rows
    assert (await admin.post("/api/items/awards", json={"label": "best", "post": 2})).status == 200
    r = await admin.delete("/api/items/posts/2")
    assert_error(r, 409, "CONFLICT")
    message = r.json["errors"][0]["message"]
    assert "'awards'" in message and "'post'" in message and "reference" in message, message
    assert (await admin.get("/api/items/posts/2")).status == 200
    assert len(await _revisions(admin, "comments", 2)) == 1  # nothing recorded for the refused delete
    # a restore whose related item is gone says which field
    assert (await admin.delete("/api/items/awards/1")).status == 204
    assert (await admin.delete("/api/items/comments/1")).status == 204
    assert (await admin.delete("/api/items/posts/1")).status == 204
    rev = [x for x in await _revisions(admin, "comments", 1) if x["data"] is not None][0]
    r = await admin.post(f"/api/revisions/{rev['id']}/restore")
    assert_error(r, 409, "CONFLICT")
    assert "'post'" in r.json["errors"][0]["message"], r
