"""Collections reference users (an m2o to ``wos_users``), and the optional special
fields ``user_created``, ``date_created``, ``user_updated``, ``date_updated`` are
filled by the write path (REST and GraphQL alike), on both dialects."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from tests.kernel.schema.schema_helpers import assert_error, create


def _ts(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_special_fields_and_relations_to_users(api: Any, sign_up: Any, password: str) -> None:
    ada_user = await sign_up("ada@example.com")  # the first user: admin
    bob_user = await sign_up("bob@example.com")
    ada = await api.sign_in("ada@example.com", password)
    await create(api, "posts", {"field": "title", "type": "string"},
                 {"field": "date_created", "type": "datetime", "options": {"special": "date_created"}},
                 {"field": "changed_at", "type": "datetime", "options": {"special": "date_updated"}},
                 {"field": "editor", "type": "string", "options": {"length": 36, "special": "user_updated"}})
    for field in ("user_created", "reviewer"):
        r = await ada.post("/api/relations", json={"collection": "posts", "field": field,
                                                   "related_collection": "wos_users"})
        assert r.status == 201, r
    r = await ada.patch("/api/fields/posts/user_created", json={"options": {"special": "user_created"}})
    assert r.status == 200 and r.data["options"]["special"] == "user_created", r
    assert r.data["relation"]["related_collection"] == "wos_users"

    # bob may create and update posts (not the special fields themselves, they are the service's)
    r = await ada.post("/api/roles", json={"name": "writer"})
    role = r.data["id"]
    for action in ("create", "read", "update"):
        fields = "*" if action == "read" else ["title", "reviewer"]
        r = await ada.post("/api/permissions", json={"role": role, "collection": "posts", "action": action,
                                                     "fields": fields})
        assert r.status in (200, 201), r
    # a key of a user is written only by a caller who may read that user (no existence oracle)
    r = await ada.post("/api/permissions", json={"role": role, "collection": "wos_users", "action": "read",
                                                 "fields": ["id", "email"]})
    assert r.status in (200, 201), r
    r = await ada.patch(f"/api/users/{bob_user['id']}", json={"role": role})
    assert r.status == 200, r
    bob = await api.sign_in("bob@example.com", password)

    before = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    r = await bob.post("/api/items/posts", json={"title": "hello", "reviewer": ada_user["id"]})
    assert r.status == 200, r
    post = r.data
    assert post["user_created"] == bob_user["id"] and post["reviewer"] == ada_user["id"]
    assert _ts(post["date_created"]) >= before
    assert post["changed_at"] is None and post["editor"] is None
    # the caller may not write them itself
    assert_error(await bob.post("/api/items/posts", json={"title": "x", "user_created": ada_user["id"]}), 403,
                 "FORBIDDEN")
    # an admin naming them is overruled by the service
    r = await ada.post("/api/items/posts", json={"title": "by ada", "user_created": bob_user["id"],
                                                 "date_created": "2000-01-01T00:00:00Z"})
    assert r.data["user_created"] == ada_user["id"] and _ts(r.data["date_created"]) >= before

    await asyncio.sleep(0.01)
    r = await ada.patch(f"/api/items/posts/{post['id']}", json={"title": "edited"})
    assert r.status == 200, r
    assert r.data["editor"] == ada_user["id"] and _ts(r.data["changed_at"]) > _ts(post["date_created"])
    assert r.data["user_created"] == bob_user["id"] and r.data["date_created"] == post["date_created"]
    r = await bob.post("/api/graphql", json={"query": f'mutation {{ update_posts_item(id: {post["id"]}, '
                                                      'data: {title: "gql"}) { editor user_created { id } } }'})
    assert r.status == 200 and not r.json.get("errors"), r
    assert r.json["data"]["update_posts_item"] == {"editor": bob_user["id"],
                                                        "user_created": {"id": bob_user["id"]}}, r

    # relations into users are followed (as the caller may read wos_users)
    r = await ada.get(f"/api/items/posts/{post['id']}", params={"fields": "title,user_created.email,reviewer.email"})
    assert r.data == {"title": "gql", "user_created": {"email": "bob@example.com"},
                      "reviewer": {"email": "ada@example.com"}}, r

    # bad markings are refused
    for body in ({"field": "x", "type": "integer", "options": {"special": "user_created"}},
                 {"field": "y", "type": "string", "options": {"special": "date_created"}},
                 {"field": "z", "type": "datetime", "options": {"special": "deleted_at"}}):
        assert_error(await ada.post("/api/fields/posts", json=body), 400, "INVALID_PAYLOAD")
    # and a marking can be removed
    r = await ada.patch("/api/fields/posts/editor", json={"options": {"special": None}})
    assert r.status == 200 and "special" not in r.data["options"] and r.data["options"]["length"] == 36, r


async def test_deleting_a_user_records_what_on_delete_does(api: Any, sign_up: Any, password: str) -> None:
    """A user deleted through /api/users: rows of collections pointing at users get
    the revisions of what their on_delete rule did (set null, cascade)."""
    await sign_up("ada@example.com")
    bob_user = await sign_up("bob@example.com")
    ada = await api.sign_in("ada@example.com", password)
    await create(api, "posts", {"field": "title", "type": "string"})
    await create(api, "drafts", {"field": "title", "type": "string"})
    for collection, on_delete in (("posts", "set null"), ("drafts", "cascade")):
        r = await ada.post("/api/relations", json={"collection": collection, "field": "owner",
                                                   "related_collection": "wos_users", "on_delete": on_delete})
        assert r.status == 201, r
        r = await ada.post(f"/api/items/{collection}", json={"title": "t", "owner": bob_user["id"]})
        assert r.status == 200, r
    assert (await ada.delete(f"/api/users/{bob_user['id']}")).status == 204
    post = (await ada.get("/api/revisions", params={"collection": "posts", "item": "1"})).data[0]
    assert post["delta"] == {"owner": None} and post["data"]["owner"] is None, post
    draft = (await ada.get("/api/revisions", params={"collection": "drafts", "item": "1"})).data[0]
    assert draft["data"] is None, draft
    assert (await ada.get("/api/items/drafts")).data == []
