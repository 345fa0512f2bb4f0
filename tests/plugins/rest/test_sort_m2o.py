"""Sorting through a many-to-one: into a collection whose read rule filters rows
(the rule applies inside the sort's subquery, no 500), and through a
self-referencing relation (the right order), on both dialects."""

from __future__ import annotations

from typing import Any

from tests.kernel.schema.schema_helpers import create


async def _role(admin: Any, *rules: dict[str, Any]) -> str:
    r = await admin.post("/api/roles", json={"name": "reader"})
    assert r.status in (200, 201), r
    for rule in rules:
        assert (await admin.post("/api/permissions", json={"role": r.data["id"], **rule})).status in (200, 201)
    return str(r.data["id"])


async def _blog(api: Any) -> Any:
    admin = api.as_admin()
    await create(api, "authors", {"field": "name", "type": "string"}, {"field": "active", "type": "boolean"},
                 {"field": "owner", "type": "string"})
    await create(api, "posts", {"field": "title", "type": "string"})
    assert (await admin.post("/api/relations", json={"collection": "posts", "field": "author",
                                                     "related_collection": "authors"})).status == 201
    assert (await admin.post("/api/relations", json={"collection": "authors", "field": "mentor",
                                                     "related_collection": "authors"})).status == 201
    authors = [("Cleo", True, "u1", None), ("Ada", False, "u1", 1), ("Brian", True, "u2", 2), ("Dora", True, "u1", 3)]
    for name, active, owner, mentor in authors:
        r = await admin.post("/api/items/authors", json={"name": name, "active": active, "owner": owner,
                                                         "mentor": mentor})
        assert r.status == 200, r
    for title, author in (("p1", 1), ("p2", 2), ("p3", 3), ("p4", 4), ("p5", None)):
        assert (await admin.post("/api/items/posts", json={"title": title, "author": author})).status == 200
    return admin


async def test_sort_through_m2o_into_a_row_filtered_collection(api: Any) -> None:
    admin = await _blog(api)
    role = await _role(admin, {"collection": "posts", "action": "read", "fields": "*"},
                       {"collection": "authors", "action": "read", "fields": "*",
                        "filter": {"_and": [{"active": {"_eq": True}}, {"owner": {"_eq": "$CURRENT_USER"}},
                                            {"mentor": {"name": {"_nnull": True}}}]}})
    reader = api.as_role(role, user="u1")
    r = await reader.get("/api/items/posts", params={"sort": "author.name,title", "fields": "title"})
    assert r.status == 200, r
    # authors the role cannot read (Ada: inactive; Brian: another owner; Cleo: no mentor) sort as null, last
    assert [p["title"] for p in r.data] == ["p4", "p1", "p2", "p3", "p5"]
    r = await reader.get("/api/items/posts", params={"sort": "-author.name,title", "fields": "title"})
    assert r.status == 200, r
    assert [p["title"] for p in r.data] == ["p1", "p2", "p3", "p5", "p4"]
    r = await reader.get("/api/items/posts", params={"sort": "author.mentor.name,title", "fields": "title"})
    assert r.status == 200, r
    r = await admin.get("/api/items/posts", params={"sort": "author.name", "fields": "title"})
    assert [p["title"] for p in r.data] == ["p2", "p3", "p1", "p4", "p5"]


async def test_sort_through_a_self_referencing_m2o(api: Any) -> None:
    admin = await _blog(api)
    # mentors: Cleo -> none, Ada -> Cleo, Brian -> Ada, Dora -> Brian (by name: Ada, Brian, Cleo, none)
    r = await admin.get("/api/items/authors", params={"sort": "mentor.name", "fields": "name"})
    assert r.status == 200, r
    assert [a["name"] for a in r.data] == ["Brian", "Dora", "Ada", "Cleo"]
    r = await admin.get("/api/items/authors", params={"sort": "-mentor.mentor.name", "fields": "name"})
    assert [a["name"] for a in r.data] == ["Cleo", "Ada", "Brian", "Dora"]
    r = await admin.post("/api/graphql", json={"query": '{ authors(sort: ["mentor.name"]) { name } }'})
    assert [a["name"] for a in r.json["data"]["authors"]] == ["Brian", "Dora", "Ada", "Cleo"]
