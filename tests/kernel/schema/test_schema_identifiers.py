"""Collection and field names are checked against one strict pattern before
any SQL is built: hostile names are 400 INVALID_PAYLOAD and create nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.kernel.schema.schema_helpers import assert_error, catalog_rows, create, tables
from workeros.errors import InvalidPayload
from workeros.schema import identifiers

HOSTILE = [
    "Books", "BOOKS", "1books", "_books", "b" * 62, "wos_books", "wos_", "select", "table", "order", "user",
    "group", 'bo"oks', "bo'oks", "bo`oks", "books; drop table wos_users", '"; drop table c_x; --', "my books",
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


@pytest.mark.parametrize("name", ["a", "books", "b2", "snake_case_name", "x" * 61, "selected", "users_table"])
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
