"""/api/fields/{slug}: every field type round-trips through /api/items; fields
are added, altered, renamed and dropped, and the data decides what may change."""

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
)

#: (type, options, value sent, value read back)
ROUND_TRIPS = [
    ("string", None, "héllo ✓", "héllo ✓"),
    ("text", None, "x" * 5000, "x" * 5000),
    ("integer", None, -2147483648, -2147483648),
    ("bigint", None, 9007199254740993, 9007199254740993),
    ("float", None, 1.5e-7, 1.5e-7),
    ("decimal", {"precision": 12, "scale": 3}, "123456789.125", "123456789.125"),
    ("boolean", None, True, True),
    ("json", None, {"a": [1, {"b": None}], "c": "d"}, {"a": [1, {"b": None}], "c": "d"}),
    ("uuid", None, "6F9619FF-8B86-D011-B42D-00C04FC964FF", "6f9619ff-8b86-d011-b42d-00c04fc964ff"),
    ("datetime", None, "2024-02-29T23:30:00+01:00", "2024-02-29T22:30:00Z"),
    ("date", None, "2024-02-29", "2024-02-29"),
    ("time", None, "13:45:30", "13:45:30"),
]


@pytest.mark.parametrize(("type_", "options", "sent", "read"), ROUND_TRIPS, ids=[t[0] for t in ROUND_TRIPS])
async def test_every_type_round_trips_through_items(api: Any, type_: str, options: Any, sent: Any,
                                                   read: Any) -> None:
    admin = api.as_admin()
    spec: dict[str, Any] = {"field": "value", "type": type_}
    if options:
        spec["options"] = options
    described = await create(api, "things", spec)
    assert field_of(described, "value")["type"] == type_
    r = await admin.post("/api/items/things", json=[{"value": sent}, {"value": None}])
    assert r.status == 200, r
    assert r.data[0]["value"] == read and r.data[1]["value"] is None
    rows = await items(api, "things")
    assert [row["value"] for row in rows] == [read, None]
    r = await admin.get("/api/items/things", params={"filter": '{"value": {"_nnull": true}}', "fields": "id"})
    assert r.data == [{"id": 1}]
    # the same type can also be added to an existing collection
    r = await admin.post("/api/fields/things", json={**spec, "field": "later"})
    assert r.status == 201, r
    r = await admin.patch("/api/items/things/2", json={"later": sent})
    assert r.status == 200 and r.data["later"] == read, r


async def test_values_that_do_not_fit_are_400_not_500(api: Any) -> None:
    await create(api, "things", {"field": "n", "type": "integer"}, {"field": "s", "type": "string",
                                                                    "options": {"length": 3}},
                 {"field": "d", "type": "date"}, {"field": "u", "type": "uuid"})
    for bad in ({"n": "abc"}, {"n": 2**40}, {"s": "toolong"}, {"d": "2024-13-01"}, {"u": "nope"}):
        r = await api.as_admin().post("/api/items/things", json=bad)
        assert_error(r, 400, "INVALID_PAYLOAD")
    assert await items(api, "things") == []


async def test_type_shorthands_and_options(api: Any) -> None:
    described = await create(api, "things", {"field": "code", "type": "string(8)"},
                             {"field": "price", "type": "decimal"})
    assert field_of(described, "code")["options"] == {"length": 8}
    assert field_of(described, "price")["options"] == {"precision": 10, "scale": 5}
    assert_error(await api.as_admin().post("/api/fields/things", json={"field": "a", "type": "alias"}),
                 400, "INVALID_PAYLOAD")
    assert_error(await api.as_admin().post("/api/fields/things", json={"field": "a", "type": "integer",
                                                                       "options": {"length": 3}}),
                 400, "INVALID_PAYLOAD")


async def test_add_field_is_usable_at_once_and_fills_defaults(api: Any) -> None:
    admin = api.as_admin()
    await create(api, "things", {"field": "name", "type": "string"})
    await admin.post("/api/items/things", json=[{"name": "a"}, {"name": "b"}])
    r = await admin.post("/api/fields/things", json={"field": "score", "type": "integer", "default": 7,
                                                     "nullable": False, "note": "points"})
    assert r.status == 201, r
    assert r.data["default"] == 7 and r.data["nullable"] is False and r.data["note"] == "points"
    assert [row["score"] for row in await items(api, "things")] == [7, 7]
    r = await admin.post("/api/items/things", json={"name": "c"})
    assert r.status == 200 and r.data["score"] == 7, r
    r = await admin.get("/api/items/things", params={"filter": '{"score": {"_eq": 7}}', "aggregate[sum]": "score"})
    assert r.status == 200, r
    r = await admin.get("/api/fields/things/score")
    assert r.status == 200 and r.data["type"] == "integer"
    assert [f["field"] for f in (await admin.get("/api/fields/things")).data] == ["id", "name", "score"]


async def test_add_field_errors(api: Any) -> None:
    admin = api.as_admin()
    await create(api, "things", {"field": "name", "type": "string"})
    assert_error(await admin.post("/api/fields/things", json={"field": "name", "type": "text"}), 409, "CONFLICT")
    assert_error(await admin.post("/api/fields/things", json={"field": "id", "type": "text"}), 409, "CONFLICT")
    assert_error(await admin.post("/api/fields/nope", json={"field": "x", "type": "text"}), 404, "NOT_FOUND")
    assert_error(await admin.post("/api/fields/things", json={"field": "x", "type": "date", "default": "soon"}),
                 400, "INVALID_PAYLOAD")
    assert_error(await admin.get("/api/fields/things/nope"), 404, "NOT_FOUND")


async def test_required_field_without_default_on_a_table_with_rows_is_refused(api: Any) -> None:
    admin = api.as_admin()
    await create(api, "things", {"field": "name", "type": "string"})
    await admin.post("/api/items/things", json={"name": "a"})
    before = await catalog_rows(api)
    r = await admin.post("/api/fields/things", json={"field": "must", "type": "string", "nullable": False})
    assert_error(r, 409, "CONFLICT")
    assert await catalog_rows(api) == before
    assert "must" not in await columns(api, "c_things")
    assert [row["name"] for row in await items(api, "things")] == ["a"]
    # on an empty table the same field is fine
    await create(api, "empty")
    r = await admin.post("/api/fields/empty", json={"field": "must", "type": "string", "nullable": False})
    assert r.status == 201, r
    assert_error(await admin.post("/api/items/empty", json={}), 400, "INVALID_PAYLOAD")


async def test_drop_field_removes_the_column(api: Any) -> None:
    admin = api.as_admin()
    await create(api, "things", {"field": "name", "type": "string", "unique": True},
                 {"field": "extra", "type": "integer", "indexed": True})
    await admin.post("/api/items/things", json={"name": "a", "extra": 1})
    assert (await admin.delete("/api/fields/things/extra")).status == 204
    assert "extra" not in await columns(api, "c_things")
    assert [f["field"] for f in (await collection(api, "things"))["fields"]] == ["id", "name"]
    assert await items(api, "things") == [{"id": 1, "name": "a"}]
    assert_error(await admin.get("/api/items/things", params={"fields": "extra"}), 400, "INVALID_QUERY")
    # the unique index on the other column survived the rebuild
    assert_error(await admin.post("/api/items/things", json={"name": "a"}), 409, "CONFLICT")
    # the name can be reused
    r = await admin.post("/api/fields/things", json={"field": "extra", "type": "text"})
    assert r.status == 201, r
    assert_error(await admin.delete("/api/fields/things/id"), 400, "INVALID_PAYLOAD")
    assert_error(await admin.delete("/api/fields/things/nope"), 404, "NOT_FOUND")


async def test_rename_field_keeps_data_and_constraints(api: Any) -> None:
    admin = api.as_admin()
    await create(api, "things", {"field": "name", "type": "string", "unique": True},
                 {"field": "other", "type": "string"})
    await admin.post("/api/items/things", json={"name": "a"})
    r = await admin.patch("/api/fields/things/name", json={"field": "title"})
    assert r.status == 200 and r.data["field"] == "title" and r.data["unique"] is True, r
    cols = await columns(api, "c_things")
    assert "title" in cols and "name" not in cols
    assert await items(api, "things") == [{"id": 1, "title": "a", "other": None}]
    assert_error(await admin.post("/api/items/things", json={"title": "a"}), 409, "CONFLICT")
    assert_error(await admin.patch("/api/fields/things/title", json={"field": "other"}), 409, "CONFLICT")
    assert_error(await admin.patch("/api/fields/things/title", json={"field": "Bad Name"}), 400, "INVALID_PAYLOAD")
    assert_error(await admin.patch("/api/fields/things/id", json={"field": "key"}), 400, "INVALID_PAYLOAD")
    assert field_of(await collection(api, "things"), "title")["unique"] is True


async def test_change_nullable(api: Any) -> None:
    admin = api.as_admin()
    await create(api, "things", {"field": "name", "type": "string"})
    await admin.post("/api/items/things", json=[{"name": "a"}, {"name": None}])
    r = await admin.patch("/api/fields/things/name", json={"nullable": False})
    assert_error(r, 409, "CONFLICT")
    assert field_of(await collection(api, "things"), "name")["nullable"] is True
    assert [row["name"] for row in await items(api, "things")] == ["a", None]
    await admin.patch("/api/items/things/2", json={"name": "b"})
    r = await admin.patch("/api/fields/things/name", json={"nullable": False})
    assert r.status == 200 and r.data["nullable"] is False, r
    assert_error(await admin.post("/api/items/things", json={"name": None}), 400, "INVALID_PAYLOAD")
    assert [row["name"] for row in await items(api, "things")] == ["a", "b"]
    r = await admin.patch("/api/fields/things/name", json={"nullable": True})
    assert r.status == 200 and r.data["nullable"] is True
    assert (await admin.post("/api/items/things", json={"name": None})).status == 200


async def test_change_default(api: Any) -> None:
    admin = api.as_admin()
    await create(api, "things", {"field": "status", "type": "string", "default": "draft"})
    r = await admin.post("/api/items/things", json={})
    assert r.status == 200 and r.data["status"] == "draft", r
    r = await admin.patch("/api/fields/things/status", json={"default": "live"})
    assert r.status == 200 and r.data["default"] == "live"
    assert (await admin.post("/api/items/things", json={})).data["status"] == "live"
    r = await admin.patch("/api/fields/things/status", json={"default": None})
    assert r.status == 200 and r.data["default"] is None
    assert (await admin.post("/api/items/things", json={})).data["status"] is None
    assert [row["status"] for row in await items(api, "things")] == ["draft", "live", None]
    assert_error(await admin.patch("/api/fields/things/status", json={"default": {"x": 1}}), 400, "INVALID_PAYLOAD")


async def test_change_unique_and_index(api: Any) -> None:
    admin = api.as_admin()
    await create(api, "things", {"field": "code", "type": "string"})
    await admin.post("/api/items/things", json=[{"code": "a"}, {"code": "a"}, {"code": None}, {"code": None}])
    before = await catalog_rows(api)
    r = await admin.patch("/api/fields/things/code", json={"unique": True})
    assert_error(r, 409, "CONFLICT")
    assert await catalog_rows(api) == before
    assert field_of(await collection(api, "things"), "code")["unique"] is False
    assert len(await items(api, "things")) == 4
    assert (await admin.post("/api/items/things", json={"code": "a"})).status == 200  # still no constraint

    await admin.delete("/api/items/things", json=[2, 5])
    r = await admin.patch("/api/fields/things/code", json={"unique": True})
    assert r.status == 200 and r.data["unique"] is True, r
    assert_error(await admin.post("/api/items/things", json={"code": "a"}), 409, "CONFLICT")
    assert (await admin.post("/api/items/things", json={"code": None})).status == 200  # NULLs are distinct

    r = await admin.patch("/api/fields/things/code", json={"unique": False, "indexed": True})
    assert r.status == 200 and r.data["unique"] is False and r.data["indexed"] is True, r
    assert (await admin.post("/api/items/things", json={"code": "a"})).status == 200
    r = await admin.patch("/api/fields/things/code", json={"indexed": False})
    assert r.status == 200 and r.data["indexed"] is False


async def test_change_type_within_compatible_groups(api: Any) -> None:
    admin = api.as_admin()
    await create(api, "things", {"field": "n", "type": "integer"}, {"field": "s", "type": "string"},
                 {"field": "b", "type": "boolean"})
    await admin.post("/api/items/things", json={"n": 5, "s": "hello", "b": True})
    r = await admin.patch("/api/fields/things/n", json={"type": "bigint"})
    assert r.status == 200 and r.data["type"] == "bigint", r
    r = await admin.patch("/api/fields/things/s", json={"type": "text"})
    assert r.status == 200 and r.data["type"] == "text" and r.data["options"] == {}, r
    assert await items(api, "things") == [{"id": 1, "n": 5, "s": "hello", "b": True}]
    assert (await admin.post("/api/items/things", json={"n": 2**40})).status == 200
    assert_error(await admin.patch("/api/fields/things/b", json={"type": "integer"}), 400, "INVALID_PAYLOAD")
    assert_error(await admin.patch("/api/fields/things/id", json={"type": "bigint"}), 400, "INVALID_PAYLOAD")
    assert_error(await admin.patch("/api/fields/things/n", json={"colour": "red"}), 400, "INVALID_PAYLOAD")


async def test_narrowing_a_type_that_existing_data_does_not_fit_is_refused(api: Any) -> None:
    admin = api.as_admin()
    await create(api, "things", {"field": "s", "type": "text"}, {"field": "n", "type": "bigint"})
    await admin.post("/api/items/things", json={"s": "x" * 40, "n": 2**40})
    before = await catalog_rows(api)
    r = await admin.patch("/api/fields/things/s", json={"type": "string", "options": {"length": 10}})
    assert r.status in (400, 409), r
    assert_error(r, r.status, "CONFLICT" if r.status == 409 else "INVALID_PAYLOAD")
    r = await admin.patch("/api/fields/things/n", json={"type": "integer"})
    assert r.status in (400, 409), r
    assert_error(r, r.status, "CONFLICT" if r.status == 409 else "INVALID_PAYLOAD")
    assert await catalog_rows(api) == before
    assert await items(api, "things") == [{"id": 1, "s": "x" * 40, "n": 2**40}]


async def test_numbers_are_never_rounded_by_a_type_change(api: Any) -> None:
    admin = api.as_admin()
    await create(api, "things", {"field": "f", "type": "float"}, {"field": "g", "type": "float"},
                 {"field": "d", "type": "decimal", "options": {"precision": 8, "scale": 3}},
                 {"field": "n", "type": "integer"})
    await admin.post("/api/items/things", json={"f": 1.5, "g": 2.0, "d": "12.125", "n": 5000})
    before = await catalog_rows(api)
    for name, change in (("f", {"type": "integer"}), ("d", {"options": {"precision": 8, "scale": 2}}),
                         ("d", {"type": "integer"}), ("n", {"type": "decimal", "options": {"precision": 3,
                                                                                           "scale": 0}})):
        assert_error(await admin.patch(f"/api/fields/things/{name}", json=change), 409, "CONFLICT")
    assert await catalog_rows(api) == before
    assert await items(api, "things") == [{"id": 1, "f": 1.5, "g": 2.0, "d": "12.125", "n": 5000}]
    # values that fit convert
    r = await admin.patch("/api/fields/things/g", json={"type": "integer"})
    assert r.status == 200, r
    r = await admin.patch("/api/fields/things/n", json={"type": "decimal", "options": {"precision": 6, "scale": 1}})
    assert r.status == 200, r
    r = await admin.patch("/api/fields/things/d", json={"options": {"precision": 10, "scale": 4}})
    assert r.status == 200, r
    assert await items(api, "things") == [{"id": 1, "f": 1.5, "g": 2, "d": "12.1250", "n": "5000.0"}]
