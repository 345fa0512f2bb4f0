"""Collection and field names are checked against one strict pattern before
any SQL is built: hostile names are 400 INVALID_PAYLOAD and create nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.kernel.schema.schema_helpers import assert_error, catalog_rows, create, items, tables
from workeros.errors import InvalidPayload
from workeros.schema import identifiers

HOSTILE = [
    "Books", "BOOKS", "1books", "_books", "b" * 62, "wos_books", "wos_", "books\n", "books\r\n", "\nbooks",
    "books\n\n", 'bo"oks', "bo'oks", "bo`oks", "books; drop table wos_users", '"; drop table c_x; --', "my books",
    " books", "books ", "bo-oks", "bo.oks", "bøoks", "книги", "书", "bo\x00oks", "bo\noks", "", "a" * 1000,
    "books%", "books$", "books/x", "*",
]
NOT_STRINGS = [None, 5, 1.5, True, ["books"], {"a": 1}]


@pytest.mark.parametrize("name", HOSTILE + NOT_STRINGS, ids=repr)
def test_unit_collection_and_field_names_are_refused(name: Any) -> None:
    with pytest.raises(InvalidPayload):
        identifiers.collection_name(name)
    if name != "b" * 62:  # 62 characters is too long only for a collection (c_ + 62 > 63)
        with pytest.raises(InvalidPayload):
            identifiers.field_name(name)


RESERVED_WORDS = ["select", "table", "order", "user", "group", "when", "from", "where", "limit", "offset", "all",
                  "case", "default", "primary", "references", "null", "true", "analyze", "desc"]


@pytest.mark.parametrize("name", ["a", "books", "b2", "snake_case_name", "x" * 61, "selected", "users_table",
                                  *RESERVED_WORDS])
def test_unit_good_names_pass(name: str) -> None:
    assert identifiers.collection_name(name) == name
    assert identifiers.field_name(name) == name


def test_unit_limits() -> None:
    assert identifiers.field_name("f" * 63) == "f" * 63
    with pytest.raises(InvalidPayload):
        identifiers.field_name("f" * 64)
    with pytest.raises(InvalidPayload):
        identifiers.collection_name("c" * 62)
    assert identifiers.table_name("c" * 61) == "c_" + "c" * 61 and len(identifiers.table_name("c" * 61)) == 63


async def test_hostile_names_create_nothing_over_http(api: Any) -> None:
    admin = api.as_admin()
    await create(api, "books", {"field": "title", "type": "string"})
    before_rows, before_tables = await catalog_rows(api), await tables(api)
    for name in HOSTILE + NOT_STRINGS:
        r = await admin.post("/api/collections", json={"collection": name})
        assert_error(r, 400, "INVALID_PAYLOAD")
        r = await admin.post("/api/collections", json={"collection": "fine", "fields": [{"field": name,
                                                                                           "type": "string"}]})
        if name != "b" * 62:
            assert_error(r, 400, "INVALID_PAYLOAD")
        else:
            assert r.status == 201, r
            assert (await admin.delete("/api/collections/fine")).status == 204
            r = await admin.post("/api/fields/books", json={"field": "x", "type": "string"})
            assert (await admin.delete("/api/fields/books/x")).status == 204
            continue
        assert_error(await admin.post("/api/fields/books", json={"field": name, "type": "string"}), 400,
                     "INVALID_PAYLOAD")
        assert_error(await admin.patch("/api/fields/books/title", json={"field": name}), 400, "INVALID_PAYLOAD")
        assert_error(await admin.patch("/api/collections/books", json={"collection": name}), 400,
                     "INVALID_PAYLOAD")
        assert_error(await admin.post("/api/relations", json={"collection": "books", "field": name,
                                                              "related_collection": "books"}), 400,
                     "INVALID_PAYLOAD")
    assert await catalog_rows(api) == before_rows
    assert await tables(api) == before_tables


async def test_hostile_names_in_paths_are_not_found(api: Any) -> None:
    admin = api.as_admin()
    await create(api, "books")
    for path in ("/api/collections/Books", "/api/collections/wos_sessions", "/api/collections/c_books",
                 "/api/fields/books/%22%3B%20drop", "/api/collections/%22%3B%20drop%20table%20x",
                 "/api/items/wos_sessions", "/api/items/wos_api_keys", "/api/relations/books/nope"):
        r = await admin.get(path)
        assert_error(r, 404, "NOT_FOUND")
    for path in ("/api/collections/wos_sessions", "/api/fields/wos_sessions/id", "/api/collections/%22x%22"):
        assert_error(await admin.delete(path), 404, "NOT_FOUND")
    # wos_users is a system collection (relations may point at it); its credentials are no field of it,
    # and the schema service never drops or alters it.
    users = (await admin.get("/api/collections/wos_users")).data
    assert users["system"] is True
    assert not {"password_hash", "totp_secret"} & {f["field"] for f in users["fields"]}
    for path in ("/api/collections/wos_users", "/api/fields/wos_users/id"):
        assert_error(await admin.delete(path), 400, "INVALID_PAYLOAD")
    assert (await admin.get("/api/items/wos_users", params={"fields": "password_hash"})).status == 400
    assert "wos_users" in await tables(api)


async def test_error_messages_do_not_echo_long_input(api: Any) -> None:
    r = await api.as_admin().post("/api/collections", json={"collection": "a" * 100_000})
    assert_error(r, 400, "INVALID_PAYLOAD")
    assert len(r.json["errors"][0]["message"]) < 400


async def test_sql_reserved_words_are_ordinary_names(api: Any) -> None:
    """Identifiers are quoted on both dialects, so SQL reserved words work as collection and
    field names end to end: DDL, writes, filters, sorts, relations, GraphQL, rename and drop."""
    admin = api.as_admin()
    await create(api, "group", {"field": "name", "type": "string"}, {"field": "when", "type": "integer"})
    await create(api, "order", {"field": "from", "type": "string"}, {"field": "select", "type": "integer"},
                 {"field": "user", "type": "string"}, {"field": "limit", "type": "boolean"})
    r = await admin.post("/api/relations", json={"collection": "order", "field": "table",
                                                  "related_collection": "group"})
    assert r.status == 201, r
    g = await admin.post("/api/items/group", json={"name": "g1", "when": 3})
    assert g.status == 200, g
    for i, who in enumerate(["b", "a", "c"]):
        r = await admin.post("/api/items/order", json={"from": who, "select": i, "user": who.upper(), "limit": True,
                                                       "table": g.data["id"]})
        assert r.status == 200, r
    r = await admin.get("/api/items/order", params={"sort": "-from", "filter[select][_gte]": "1",
                                                    "fields": "from,user,table.name,table.when"})
    assert r.status == 200, r
    assert r.data == [{"from": "c", "user": "C", "table": {"name": "g1", "when": 3}},
                      {"from": "a", "user": "A", "table": {"name": "g1", "when": 3}}]
    r = await admin.get("/api/items/order", params={"sort": "table.when,from", "filter[table][name][_eq]": "g1",
                                                    "aggregate[count]": "*"})
    assert r.status == 200, r
    r = await admin.patch("/api/items/order", json={"query": {"filter": {"from": {"_eq": "a"}}},
                                                    "data": {"select": 10}})
    assert r.status in (200, 204), r
    r = await admin.post("/api/graphql", json={"query": "{ order(sort: [\"from\"]) { from select user "
                                                         "table { name when } } }"})
    assert r.status == 200 and not r.json.get("errors"), r
    assert [row["from"] for row in r.json["data"]["order"]] == ["a", "b", "c"]
    assert r.json["data"]["order"][0]["select"] == 10
    r = await admin.patch("/api/fields/order/user", json={"field": "where"})
    assert r.status == 200, r
    assert {row["where"] for row in await items(api, "order")} == {"A", "B", "C"}
    assert (await admin.delete("/api/fields/order/where")).status == 204
    assert (await admin.delete("/api/collections/order")).status == 204
    assert (await admin.delete("/api/collections/group")).status == 204
    assert not {"c_order", "c_group"} & await tables(api)
