"""/api/relations: m2o (a foreign key), its o2m alias, m2m through a junction
created for you, and what on_delete does when the related row goes."""

from __future__ import annotations

from typing import Any

import pytest

from tests.kernel.schema.schema_helpers import (
    assert_error,
    catalog_rows,
    collection,
    columns,
    create,
    field_of,
    items,
    tables,
)


async def authors_and_books(api: Any, **relation: Any) -> None:
    await create(api, "authors", {"field": "name", "type": "string"})
    await create(api, "books", {"field": "title", "type": "string"})
    r = await api.as_admin().post("/api/relations", json={
        "collection": "books", "field": "author", "related_collection": "authors", **relation})
    assert r.status == 201, r
    r = await api.as_admin().post("/api/items/authors", json=[{"name": "Ada"}, {"name": "Brian"}])
    assert r.status == 200, r
    r = await api.as_admin().post("/api/items/books", json=[{"title": "A", "author": 1}, {"title": "B", "author": 1},
                                                             {"title": "C", "author": 2}])
    assert r.status == 200, r


async def test_m2o_creates_the_field_and_a_foreign_key(api: Any) -> None:
    await authors_and_books(api, one_field="books")
    admin = api.as_admin()
    author = field_of(await collection(api, "books"), "author")
    assert author["type"] == "integer" and author["nullable"] is True and author["indexed"] is True
    assert author["relation"] == {
        "collection": "books", "field": "author", "kind": "m2o", "related_collection": "authors",
        "related_field": "id", "junction_collection": None, "junction_field": None,
        "junction_related_field": None, "on_delete": "set null"}
    alias = field_of(await collection(api, "authors"), "books")
    assert alias["type"] == "alias" and alias["relation"]["kind"] == "o2m"
    assert alias["relation"]["related_collection"] == "books" and alias["relation"]["related_field"] == "author"
    assert "books" not in await columns(api, "c_authors")
    r = await admin.get("/api/relations")
    assert {(x["collection"], x["field"], x["kind"]) for x in r.data
            if not x["collection"].startswith("wos_")} == {
        ("authors", "books", "o2m"), ("books", "author", "m2o")}
    assert (await admin.get("/api/relations/books/author")).data["kind"] == "m2o"
    assert [x["field"] for x in (await admin.get("/api/relations/authors")).data] == ["books"]
    r = await admin.get("/api/items/authors", params={"fields": "name,books.title", "sort": "id"})
    assert r.data == [{"name": "Ada", "books": [{"title": "A"}, {"title": "B"}]},
                      {"name": "Brian", "books": [{"title": "C"}]}]
    # the foreign key is real: an unknown author is refused
    assert_error(await admin.post("/api/items/books", json={"title": "X", "author": 99}), 409, "CONFLICT")


async def test_m2o_on_an_existing_field_and_mismatches(api: Any) -> None:
    admin = api.as_admin()
    await create(api, "authors", {"field": "name", "type": "string"})
    await create(api, "books", {"field": "writer", "type": "integer"}, {"field": "label", "type": "string"})
    await admin.post("/api/items/authors", json={"name": "Ada"})
    await admin.post("/api/items/books", json=[{"writer": 1}, {"writer": 42}])
    before = await catalog_rows(api)
    # a value without a related row: refused, nothing changes
    r = await admin.post("/api/relations", json={"collection": "books", "field": "writer",
                                                 "related_collection": "authors"})
    assert_error(r, 409, "CONFLICT")
    assert await catalog_rows(api) == before
    assert [row["writer"] for row in await items(api, "books")] == [1, 42]
    r = await admin.post("/api/relations", json={"collection": "books", "field": "label",
                                                 "related_collection": "authors"})
    assert_error(r, 400, "INVALID_PAYLOAD")  # string vs integer key
    for bad in ({"collection": "nope", "field": "x", "related_collection": "authors"},
                {"collection": "books", "field": "x", "related_collection": "nope"},
                {"collection": "books", "field": "x", "related_collection": "authors", "on_delete": "explode"},
                {"collection": "books", "field": "Bad", "related_collection": "authors"},
                {"collection": "books", "field": "x", "related_collection": "authors", "kind": "weird"},
                {"collection": "books", "field": "id", "related_collection": "authors"},
                {"collection": "books", "field": "x", "related_collection": "authors", "extra": 1},
                []):
        assert_error(await admin.post("/api/relations", json=bad), 400, "INVALID_PAYLOAD")
    assert await catalog_rows(api) == before
    await admin.patch("/api/items/books/2", json={"writer": 1})
    r = await admin.post("/api/relations", json={"collection": "books", "field": "writer",
                                                 "related_collection": "authors"})
    assert r.status == 201, r
    r = await admin.post("/api/relations", json={"collection": "books", "field": "writer",
                                                 "related_collection": "authors"})
    assert_error(r, 409, "CONFLICT")


async def test_o2m_alias(api: Any) -> None:
    admin = api.as_admin()
    await create(api, "authors", {"field": "name", "type": "string"})
    await create(api, "books", {"field": "title", "type": "string"})
    r = await admin.post("/api/relations", json={"kind": "o2m", "collection": "authors", "field": "works",
                                                 "related_collection": "books", "related_field": "author_id"})
    assert r.status == 201, r
    assert r.data["kind"] == "o2m" and r.data["collection"] == "authors" and r.data["related_field"] == "author_id"
    assert field_of(await collection(api, "books"), "author_id")["relation"]["kind"] == "m2o"
    await admin.post("/api/items/authors", json={"name": "Ada"})
    await admin.post("/api/items/books", json=[{"title": "A", "author_id": 1}, {"title": "B", "author_id": 1}])
    r = await admin.get("/api/items/authors/1", params={"fields": "name,works.title"})
    assert r.data == {"name": "Ada", "works": [{"title": "A"}, {"title": "B"}]}
    # renaming the alias keeps the relation; deleting it keeps the foreign key
    r = await admin.patch("/api/fields/authors/works", json={"field": "books"})
    assert r.status == 200, r
    assert (await admin.get("/api/items/authors/1", params={"fields": "books"})).data == {"books": [1, 2]}
    assert_error(await admin.patch("/api/fields/authors/books", json={"type": "integer"}), 400, "INVALID_PAYLOAD")
    assert (await admin.delete("/api/fields/authors/books")).status == 204
    assert "books" not in {f["field"] for f in (await collection(api, "authors"))["fields"]}
    assert field_of(await collection(api, "books"), "author_id")["relation"]["related_collection"] == "authors"


async def test_m2m_creates_the_junction(api: Any) -> None:
    admin = api.as_admin()
    await create(api, "posts", {"field": "title", "type": "string"})
    await create(api, "tags", {"field": "label", "type": "string"})
    r = await admin.post("/api/relations", json={"kind": "m2m", "collection": "posts", "field": "tags",
                                                 "related_collection": "tags"})
    assert r.status == 201, r
    assert r.data["kind"] == "m2m" and r.data["junction_collection"] == "posts_tags"
    assert r.data["junction_field"] == "posts_id" and r.data["junction_related_field"] == "tags_id"
    assert r.data["on_delete"] == "cascade"
    assert "c_posts_tags" in await tables(api)
    junction = await collection(api, "posts_tags")
    assert junction["meta"] == {"junction": True}
    assert {f["field"] for f in junction["fields"]} == {"id", "posts_id", "tags_id"}
    back = field_of(await collection(api, "tags"), "posts")
    assert back["type"] == "alias" and back["relation"]["kind"] == "m2m"
    await admin.post("/api/items/posts", json=[{"title": "P1"}, {"title": "P2"}])
    await admin.post("/api/items/tags", json=[{"label": "a"}, {"label": "b"}])
    r = await admin.post("/api/items/posts_tags", json=[{"posts_id": 1, "tags_id": 1}, {"posts_id": 1, "tags_id": 2},
                                                        {"posts_id": 2, "tags_id": 2}])
    assert r.status == 200, r
    r = await admin.get("/api/items/posts", params={"fields": "title,tags", "sort": "id"})
    assert r.data == [{"title": "P1", "tags": [1, 2]}, {"title": "P2", "tags": [2]}]
    r = await admin.get("/api/items/tags/2", params={"fields": "posts"})
    assert r.data == {"posts": [1, 2]}
    # deleting a post removes its links (cascade)
    assert (await admin.delete("/api/items/posts/1")).status == 204
    assert [(x["posts_id"], x["tags_id"]) for x in await items(api, "posts_tags")] == [(2, 2)]
    # a second m2m between the same collections needs another junction name
    r = await admin.post("/api/relations", json={"kind": "m2m", "collection": "posts", "field": "more",
                                                 "related_collection": "tags", "one_field": "more_posts"})
    assert_error(r, 409, "CONFLICT")
    r = await admin.post("/api/relations", json={"kind": "m2m", "collection": "posts", "field": "more",
                                                 "related_collection": "tags", "one_field": "more_posts",
                                                 "junction_collection": "post_more_tags"})
    assert r.status == 201, r
    # deleting the m2m removes the junction and both aliases
    assert (await admin.delete("/api/relations/posts/tags")).status == 204
    assert "c_posts_tags" not in await tables(api)
    assert "tags" not in {f["field"] for f in (await collection(api, "posts"))["fields"]}
    assert "posts" not in {f["field"] for f in (await collection(api, "tags"))["fields"]}
    assert (await admin.get("/api/relations/posts/more")).data["junction_collection"] == "post_more_tags"


async def test_self_m2m(api: Any) -> None:
    admin = api.as_admin()
    await create(api, "people", {"field": "name", "type": "string"})
    r = await admin.post("/api/relations", json={"kind": "m2m", "collection": "people", "field": "friends",
                                                 "related_collection": "people", "one_field": "friend_of"})
    assert r.status == 201, r
    await admin.post("/api/items/people", json=[{"name": "a"}, {"name": "b"}])
    junction = r.data["junction_collection"]
    r = await admin.post(f"/api/items/{junction}", json={"people_id": 1, "related_people_id": 2})
    assert r.status == 200, r
    assert (await admin.get("/api/items/people/1", params={"fields": "friends"})).data == {"friends": [2]}
    assert (await admin.get("/api/items/people/2", params={"fields": "friend_of"})).data == {"friend_of": [1]}


@pytest.mark.parametrize("on_delete", ["set null", "cascade", "restrict"])
async def test_on_delete(api: Any, on_delete: str) -> None:
    await authors_and_books(api, on_delete=on_delete)
    admin = api.as_admin()
    assert field_of(await collection(api, "books"), "author")["relation"]["on_delete"] == on_delete
    r = await admin.delete("/api/items/authors/1")
    if on_delete == "restrict":
        assert_error(r, 409, "CONFLICT")
        assert [row["name"] for row in await items(api, "authors")] == ["Ada", "Brian"]
        assert [row["author"] for row in await items(api, "books")] == [1, 1, 2]
        return
    assert r.status == 204, r
    rows = await items(api, "books")
    if on_delete == "set null":
        assert [(row["title"], row["author"]) for row in rows] == [("A", None), ("B", None), ("C", 2)]
    else:
        assert [(row["title"], row["author"]) for row in rows] == [("C", 2)]


async def test_change_on_delete(api: Any) -> None:
    await authors_and_books(api, one_field="books")
    admin = api.as_admin()
    r = await admin.patch("/api/relations/books/author", json={"on_delete": "restrict"})
    assert r.status == 200 and r.data["on_delete"] == "restrict", r
    assert_error(await admin.delete("/api/items/authors/1"), 409, "CONFLICT")
    r = await admin.patch("/api/relations/authors/books", json={"on_delete": "cascade"})  # through the alias
    assert r.status == 200, r
    assert field_of(await collection(api, "books"), "author")["relation"]["on_delete"] == "cascade"
    assert (await admin.delete("/api/items/authors/1")).status == 204
    assert [row["title"] for row in await items(api, "books")] == ["C"]
    assert_error(await admin.patch("/api/relations/books/author", json={"on_delete": "nope"}), 400,
                 "INVALID_PAYLOAD")
    assert_error(await admin.patch("/api/relations/books/title", json={"on_delete": "cascade"}), 404, "NOT_FOUND")


async def test_set_null_needs_a_nullable_field(api: Any) -> None:
    admin = api.as_admin()
    await create(api, "authors")
    await create(api, "books", {"field": "author", "type": "integer", "nullable": False})
    before = await catalog_rows(api)
    r = await admin.post("/api/relations", json={"collection": "books", "field": "author",
                                                 "related_collection": "authors", "on_delete": "set null"})
    assert_error(r, 400, "INVALID_PAYLOAD")
    assert await catalog_rows(api) == before
    r = await admin.post("/api/relations", json={"collection": "books", "field": "author",
                                                 "related_collection": "authors", "on_delete": "cascade"})
    assert r.status == 201, r


async def test_delete_m2o_relation_keeps_the_column(api: Any) -> None:
    await authors_and_books(api, one_field="books")
    admin = api.as_admin()
    assert (await admin.delete("/api/relations/books/author")).status == 204
    books = await collection(api, "books")
    assert field_of(books, "author")["relation"] is None and field_of(books, "author")["type"] == "integer"
    assert "books" not in {f["field"] for f in (await collection(api, "authors"))["fields"]}
    assert [row["author"] for row in await items(api, "books")] == [1, 1, 2]
    assert (await admin.post("/api/items/books", json={"title": "X", "author": 99})).status == 200
    assert [x for x in (await admin.get("/api/relations")).data if not x["collection"].startswith("wos_")] == []
    assert_error(await admin.delete("/api/relations/books/author"), 404, "NOT_FOUND")


async def test_deleting_the_m2o_field_drops_its_relation(api: Any) -> None:
    await authors_and_books(api, one_field="books")
    admin = api.as_admin()
    assert (await admin.delete("/api/fields/books/author")).status == 204
    assert "author" not in await columns(api, "c_books")
    assert "books" not in {f["field"] for f in (await collection(api, "authors"))["fields"]}
    assert [x for x in (await admin.get("/api/relations")).data if not x["collection"].startswith("wos_")] == []
    assert (await admin.delete("/api/items/authors/1")).status == 204


async def test_uuid_keys_follow_the_related_primary_key(api: Any) -> None:
    admin = api.as_admin()
    await create(api, "teams", {"field": "name", "type": "string"}, pk_type="uuid")
    await create(api, "players", {"field": "name", "type": "string"})
    r = await admin.post("/api/relations", json={"collection": "players", "field": "team",
                                                 "related_collection": "teams", "on_delete": "cascade"})
    assert r.status == 201, r
    assert field_of(await collection(api, "players"), "team")["type"] == "uuid"
    team = (await admin.post("/api/items/teams", json={"name": "t"})).data["id"]
    assert (await admin.post("/api/items/players", json={"name": "p", "team": team})).status == 200
    r = await admin.get("/api/items/players", params={"fields": "name,team.name"})
    assert r.data == [{"name": "p", "team": {"name": "t"}}]
    assert (await admin.delete(f"/api/items/teams/{team}")).status == 204
    assert await items(api, "players") == []
