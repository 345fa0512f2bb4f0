"""The schema endpoints show a restricted role only the collections it may use and,
in each, only the fields its rules allow (as OpenAPI and GraphQL do)."""

from __future__ import annotations

from typing import Any

from tests.kernel.schema.schema_helpers import assert_error, create


async def _role(admin: Any, name: str, *rules: dict[str, Any]) -> str:
    r = await admin.post("/api/roles", json={"name": name})
    assert r.status in (200, 201), r
    role = str(r.data["id"])
    for rule in rules:
        r = await admin.post("/api/permissions", json={"role": role, **rule})
        assert r.status in (200, 201), r
    return role


async def test_schema_endpoints_show_only_usable_collections_and_fields(api: Any) -> None:
    admin = api.as_admin()
    await create(api, "authors", {"field": "name", "type": "string"}, {"field": "salary", "type": "integer",
                                                                        "note": "secret pay"})
    await create(api, "books", {"field": "title", "type": "string"}, {"field": "isbn", "type": "string"},
                 {"field": "internal", "type": "text"})
    await create(api, "ledger", {"field": "amount", "type": "integer"})
    await create(api, "inbox", {"field": "body", "type": "text"}, {"field": "spam_score", "type": "float"})
    assert (await admin.post("/api/relations", json={"collection": "books", "field": "author",
                                                     "related_collection": "authors"})).status == 201
    assert (await admin.post("/api/relations", json={"collection": "books", "field": "auditor",
                                                     "related_collection": "ledger"})).status == 201
    role = await _role(admin, "reader",
                       {"collection": "books", "action": "read", "fields": ["id", "title", "author"]},
                       {"collection": "books", "action": "update", "fields": ["isbn"]},
                       {"collection": "authors", "action": "read", "fields": ["name"]},
                       {"collection": "inbox", "action": "create", "fields": ["body"]})
    reader = api.as_role(role)

    r = await reader.get("/api/collections")
    assert r.status == 200, r
    shown = {c["collection"]: [f["field"] for f in c["fields"]] for c in r.data}
    assert shown == {"authors": ["id", "name"], "books": ["id", "title", "isbn", "author"],
                     "inbox": ["id", "body"]}
    assert "secret pay" not in str(r.json)

    r = await reader.get("/api/fields/books")
    assert r.status == 200, r
    assert [f["field"] for f in r.data] == ["id", "title", "isbn", "author"]
    r = await reader.get("/api/fields/authors")
    assert [f["field"] for f in r.data] == ["id", "name"]
    r = await reader.get("/api/fields")
    assert sorted((f["collection"], f["field"]) for f in r.data) == sorted(
        [("authors", "id"), ("authors", "name"), ("books", "id"), ("books", "title"), ("books", "isbn"),
         ("books", "author"), ("inbox", "id"), ("inbox", "body")])
    r = await reader.get("/api/collections/books")
    assert [f["field"] for f in r.data["fields"]] == ["id", "title", "isbn", "author"]
    assert (await reader.get("/api/fields/books/title")).status == 200
    assert_error(await reader.get("/api/fields/books/internal"), 403, "FORBIDDEN")
    assert_error(await reader.get("/api/fields/authors/salary"), 403, "FORBIDDEN")
    for path in ("/api/collections/ledger", "/api/fields/ledger", "/api/fields/ledger/amount",
                 "/api/collections/nope", "/api/fields/nope"):
        assert_error(await reader.get(path), 403, "FORBIDDEN")
    # relations: only those whose field the caller sees and whose ends it may use
    r = await reader.get("/api/relations")
    assert [(x["collection"], x["field"]) for x in r.data] == [("books", "author")]
    assert_error(await reader.get("/api/relations/books/auditor"), 403, "FORBIDDEN")

    # an anonymous caller with no public rules sees nothing; an admin sees everything
    r = await api.anonymous().get("/api/collections")
    assert r.status == 200 and r.data == [], r
    r = await admin.get("/api/fields/books")
    assert [f["field"] for f in r.data] == ["id", "title", "isbn", "internal", "author", "auditor"]
    r = await admin.get("/api/collections")
    assert {c["collection"] for c in r.data} == {"authors", "books", "ledger", "inbox"}


async def test_wildcard_rule_shows_every_field(api: Any) -> None:
    admin = api.as_admin()
    await create(api, "notes", {"field": "title", "type": "string"}, {"field": "body", "type": "text"})
    role = await _role(admin, "all", {"collection": "notes", "action": "read", "fields": ["*"]},
                       {"collection": "notes", "action": "create", "fields": ["title"]})
    r = await api.as_role(role).get("/api/fields/notes")
    assert [f["field"] for f in r.data] == ["id", "title", "body"]
