"""/api/collections: create, read, alter, rename and drop collections, on both
dialects, and who may do it."""

from __future__ import annotations

from typing import Any

from tests.kernel.schema.schema_helpers import (
    assert_error,
    catalog_rows,
    collection,
    create,
    field_of,
    items,
    tables,
)


async def test_create_collection_makes_a_table_and_describes_it(api: Any) -> None:
    described = await create(api, "books", {"field": "title", "type": "string", "nullable": False},
                             note="Library", meta={"icon": "book"})
    assert described["collection"] == "books" and described["table"] == "c_books"
    assert described["primary_key"] == "id" and described["pk_type"] == "integer"
    assert described["adopted"] is False and described["note"] == "Library" and described["meta"] == {"icon": "book"}
    assert [f["field"] for f in described["fields"]] == ["id", "title"]
    pk = field_of(described, "id")
    assert pk["primary_key"] is True and pk["nullable"] is False and pk["type"] == "integer"
    title = field_of(described, "title")
    assert title["type"] == "string" and title["options"] == {"length": 255} and title["nullable"] is False
    assert "c_books" in await tables(api)
    assert await collection(api, "books") == described
    listed = (await api.as_admin().get("/api/collections")).data
    assert [c["collection"] for c in listed] == ["books"]
    # items work at once, with an auto-increment key
    r = await api.as_admin().post("/api/items/books", json=[{"title": "A"}, {"title": "B"}])
    assert r.status == 200, r
    assert [row["id"] for row in await items(api, "books")] == [1, 2]


async def test_uuid_primary_key(api: Any) -> None:
    described = await create(api, "tokens", {"field": "id", "type": "uuid"}, {"field": "label", "type": "string"})
    assert described["pk_type"] == "uuid" and field_of(described, "id")["type"] == "uuid"
    r = await api.as_admin().post("/api/items/tokens", json={"label": "x"})
    assert r.status == 200, r
    key = r.data["id"]
    assert isinstance(key, str) and len(key) == 36
    r = await api.as_admin().get(f"/api/items/tokens/{key}")
    assert r.status == 200 and r.data["label"] == "x"
    described = await create(api, "others", pk_type="uuid")
    assert described["pk_type"] == "uuid"


async def test_bad_collection_payloads_are_400(api: Any) -> None:
    admin = api.as_admin()
    for payload in (
        [], "books", {"collection": "books", "fields": "title"},
        {"collection": "books", "fields": [{"field": "x", "type": "nope"}]},
        {"collection": "books", "fields": [{"field": "x"}]},
        {"collection": "books", "fields": [{"field": "x", "type": "string", "nullable": "yes"}]},
        {"collection": "books", "fields": [{"field": "x", "type": "string", "colour": 1}]},
        {"collection": "books", "fields": [{"field": "x", "type": "string"}, {"field": "x", "type": "text"}]},
        {"collection": "books", "fields": [{"field": "x", "type": "integer", "default": "abc"}]},
        {"collection": "books", "fields": [{"field": "x", "type": "string", "options": {"length": 0}}]},
        {"collection": "books", "fields": [{"field": "x", "type": "decimal", "options": {"precision": 99}}]},
        {"collection": "books", "pk_type": "string"},
        {"collection": "books", "surprise": True},
        {"collection": "books", "note": 5},
        {"collection": "books", "meta": [1]},
    ):
        r = await admin.post("/api/collections", json=payload)
        assert_error(r, 400, "INVALID_PAYLOAD")
    r = await admin.post("/api/collections", data=b"{not json", headers={"Content-Type": "application/json"})
    assert_error(r, 400, "INVALID_PAYLOAD")
    assert "c_books" not in await tables(api)
    assert (await admin.get("/api/collections")).data == []


async def test_duplicate_collection_is_conflict(api: Any) -> None:
    await create(api, "books")
    r = await api.as_admin().post("/api/collections", json={"collection": "books"})
    assert_error(r, 409, "CONFLICT")


async def test_update_note_and_meta(api: Any) -> None:
    await create(api, "books")
    r = await api.as_admin().patch("/api/collections/books", json={"note": "n", "meta": {"a": 1}})
    assert r.status == 200, r
    assert r.data["note"] == "n" and r.data["meta"] == {"a": 1}
    assert (await collection(api, "books"))["note"] == "n"
    r = await api.as_admin().patch("/api/collections/books", json={"pk_type": "uuid"})
    assert_error(r, 400, "INVALID_PAYLOAD")
    r = await api.as_admin().patch("/api/collections/nope", json={"note": "x"})
    assert_error(r, 404, "NOT_FOUND")


async def test_rename_moves_table_api_path_and_relations(api: Any) -> None:
    admin = api.as_admin()
    await create(api, "authors", {"field": "name", "type": "string", "unique": True})
    await create(api, "books", {"field": "title", "type": "string", "indexed": True})
    r = await admin.post("/api/relations", json={"collection": "books", "field": "author",
                                                 "related_collection": "authors", "one_field": "books"})
    assert r.status == 201, r
    await admin.post("/api/items/authors", json={"name": "Ada"})
    await admin.post("/api/items/books", json={"title": "T", "author": 1})

    r = await admin.patch("/api/collections/books", json={"collection": "novels"})
    assert r.status == 200, r
    assert r.data["collection"] == "novels" and r.data["table"] == "c_novels"
    assert {"c_novels", "c_authors"} <= await tables(api) and "c_books" not in await tables(api)
    assert_error(await admin.get("/api/items/books"), 404, "NOT_FOUND")
    assert_error(await admin.get("/api/collections/books"), 404, "NOT_FOUND")
    assert [row["title"] for row in await items(api, "novels")] == ["T"]
    r = await admin.get("/api/items/novels", params={"fields": "title,author.name"})
    assert r.data == [{"title": "T", "author": {"name": "Ada"}}]
    r = await admin.get("/api/items/authors", params={"fields": "name,books.title"})
    assert r.data == [{"name": "Ada", "books": [{"title": "T"}]}]
    rel = (await admin.get("/api/relations/novels/author")).data
    assert rel["collection"] == "novels" and rel["related_collection"] == "authors"
    # writes still go through, indexes follow the table
    r = await admin.post("/api/items/novels", json={"title": "U", "author": 1})
    assert r.status == 200, r

    # and the other side of the relation can be renamed too
    r = await admin.patch("/api/collections/authors", json={"collection": "writers"})
    assert r.status == 200, r
    r = await admin.get("/api/items/novels", params={"fields": "title,author.name", "sort": "id"})
    assert r.data == [{"title": "T", "author": {"name": "Ada"}}, {"title": "U", "author": {"name": "Ada"}}]
    r = await admin.post("/api/items/writers", json={"name": "Ada"})
    assert_error(r, 409, "CONFLICT")  # the unique index moved with the table


async def test_rename_to_a_taken_or_bad_name_changes_nothing(api: Any) -> None:
    await create(api, "books")
    await create(api, "films")
    before = await catalog_rows(api)
    r = await api.as_admin().patch("/api/collections/books", json={"collection": "films"})
    assert_error(r, 409, "CONFLICT")
    for bad in ("Films", "wos_books", "films\n", "a b", 5):
        r = await api.as_admin().patch("/api/collections/books", json={"collection": bad})
        assert_error(r, 400, "INVALID_PAYLOAD")
    assert await catalog_rows(api) == before
    assert {"c_books", "c_films"} <= await tables(api)


async def test_drop_removes_table_metadata_and_relations(api: Any) -> None:
    admin = api.as_admin()
    await create(api, "authors", {"field": "name", "type": "string"})
    await create(api, "books", {"field": "title", "type": "string"})
    r = await admin.post("/api/relations", json={"collection": "books", "field": "author",
                                                 "related_collection": "authors", "one_field": "books"})
    assert r.status == 201, r
    await admin.post("/api/items/authors", json={"name": "Ada"})
    await admin.post("/api/items/books", json={"title": "T", "author": 1})

    r = await admin.delete("/api/collections/authors")
    assert r.status == 204, r
    assert "c_authors" not in await tables(api)
    assert_error(await admin.get("/api/collections/authors"), 404, "NOT_FOUND")
    assert_error(await admin.get("/api/items/authors"), 404, "NOT_FOUND")
    # the m2o column stays a plain field on books, its relation is gone
    books = await collection(api, "books")
    assert field_of(books, "author")["relation"] is None
    assert [x for x in (await admin.get("/api/relations")).data if not x["collection"].startswith("wos_")] == []
    assert [row["title"] for row in await items(api, "books")] == ["T"]
    r = await admin.post("/api/items/books", json={"title": "U", "author": 99})
    assert r.status == 200, r  # no foreign key any more

    r = await admin.delete("/api/collections/books")
    assert r.status == 204
    rows = await catalog_rows(api)
    assert rows == {"collections": [], "fields": [], "relations": []}
    assert not {t for t in await tables(api) if t.startswith("c_")}
    assert_error(await admin.delete("/api/collections/books"), 404, "NOT_FOUND")


async def test_drop_then_recreate_gives_an_empty_table(api: Any) -> None:
    await create(api, "books", {"field": "title", "type": "string"})
    await api.as_admin().post("/api/items/books", json={"title": "old"})
    assert (await api.as_admin().delete("/api/collections/books")).status == 204
    await create(api, "books", {"field": "name", "type": "text"})
    assert await items(api, "books") == []
    r = await api.as_admin().post("/api/items/books", json={"name": "new"})
    assert r.status == 200 and r.data["id"] == 1


async def test_schema_writes_need_admin(api: Any) -> None:
    await create(api, "books", {"field": "title", "type": "string"})
    before = await catalog_rows(api)
    for caller in (api.anonymous(), api.as_role("editor", user="u1")):
        calls = [
            caller.post("/api/collections", json={"collection": "films"}),
            caller.patch("/api/collections/books", json={"collection": "novels"}),
            caller.delete("/api/collections/books"),
            caller.delete("/api/collections/nope"),
            caller.post("/api/fields/books", json={"field": "x", "type": "string"}),
            caller.patch("/api/fields/books/title", json={"nullable": False}),
            caller.delete("/api/fields/books/title"),
            caller.post("/api/relations", json={"collection": "books", "field": "b", "related_collection": "books"}),
            caller.post("/api/collections", data=b"{broken", headers={"Content-Type": "application/json"}),
        ]
        for call in calls:
            assert_error(await call, 403, "FORBIDDEN")
    assert await catalog_rows(api) == before


async def test_non_admins_do_not_see_collections_they_cannot_read(api: Any) -> None:
    await create(api, "books")
    for caller in (api.anonymous(), api.as_role("editor", user="u1")):
        r = await caller.get("/api/collections")
        assert r.status == 200 and r.data == []
        for path in ("/api/collections/books", "/api/collections/nope", "/api/fields/books", "/api/fields/nope"):
            assert_error(await caller.get(path), 403, "FORBIDDEN")
