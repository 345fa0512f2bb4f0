"""Adopting existing tables, failed DDL leaving everything as it was, concurrent
schema changes, and the schema cache following every change."""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa

from tests.kernel.schema.schema_helpers import (
    assert_error,
    catalog_rows,
    collection,
    columns,
    create,
    execute,
    field_of,
    items,
    services,
    tables,
)


def legacy_tables() -> tuple[sa.Table, sa.Table]:
    metadata = sa.MetaData()
    owners = sa.Table("legacy_owners", metadata, sa.Column("id", sa.Integer, primary_key=True),
                      sa.Column("name", sa.String(40), nullable=False, unique=True),
                      sa.Column("Weird", sa.Integer))
    pets = sa.Table("legacy_pets", metadata, sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("label", sa.Text),
                    sa.Column("owner_id", sa.Integer, sa.ForeignKey("legacy_owners.id", ondelete="CASCADE")))
    return owners, pets


async def shape(api: Any, table: str) -> dict[str, tuple[str, bool]]:
    return {name: (str(c["type"]), c["nullable"]) for name, c in (await columns(api, table)).items()}


async def make_legacy(api: Any) -> None:
    owners, pets = legacy_tables()
    async with services(api).db.transaction() as conn:
        await conn.run_sync(owners.metadata.create_all)
        await conn.execute(owners.insert().values(name="Ada"))
        await conn.execute(pets.insert().values(label="Rex", owner_id=1))


async def test_adopt_existing_tables_without_ddl(api: Any) -> None:
    admin = api.as_admin()
    await make_legacy(api)
    before = await shape(api, "legacy_owners")
    r = await admin.post("/api/collections", json={"collection": "owners", "table": "legacy_owners"})
    assert r.status == 201, r
    assert r.data["adopted"] is True and r.data["table"] == "legacy_owners"
    assert [f["field"] for f in r.data["fields"]] == ["id", "name"]  # "Weird" is not a valid field name
    assert field_of(r.data, "name")["unique"] is True and field_of(r.data, "name")["nullable"] is False
    r = await admin.post("/api/collections", json={"adopt": True, "collection": "legacy_pets"})
    assert r.status == 201, r
    assert field_of(r.data, "owner_id")["relation"]["related_collection"] == "owners"
    assert field_of(r.data, "owner_id")["relation"]["on_delete"] == "cascade"
    assert await shape(api, "legacy_owners") == before  # no DDL
    assert await items(api, "owners") == [{"id": 1, "name": "Ada"}]
    r = await admin.get("/api/items/legacy_pets", params={"fields": "label,owner_id.name"})
    assert r.data == [{"label": "Rex", "owner_id": {"name": "Ada"}}]
    assert (await admin.post("/api/items/owners", json={"name": "Brian"})).status == 200
    # dropping an adopted collection keeps the table and its rows
    assert (await admin.delete("/api/collections/legacy_pets")).status == 204
    assert (await admin.delete("/api/collections/owners")).status == 204
    assert {"legacy_owners", "legacy_pets"} <= await tables(api)
    async with services(api).db.read() as conn:
        assert (await conn.execute(sa.text("select count(*) from legacy_owners"))).scalar() == 2


async def test_adopt_errors(api: Any) -> None:
    admin = api.as_admin()
    await make_legacy(api)
    await create(api, "books")
    before = await catalog_rows(api)
    for payload, status, code in (
        ({"table": "missing"}, 400, "INVALID_PAYLOAD"),
        ({"table": "wos_users"}, 400, "INVALID_PAYLOAD"),
        ({"table": "c_books", "collection": "again"}, 409, "CONFLICT"),
        ({"table": "legacy_owners", "collection": "Bad"}, 400, "INVALID_PAYLOAD"),
        ({"table": "legacy_owners; drop table x"}, 400, "INVALID_PAYLOAD"),
        ({"table": "legacy_owners", "fields": []}, 400, "INVALID_PAYLOAD"),
        ({"table": "legacy_owners", "collection": "books"}, 409, "CONFLICT"),
    ):
        assert_error(await admin.post("/api/collections", json=payload), status, code)
    assert await catalog_rows(api) == before
    # a new collection cannot take over an existing table
    await execute(api, sa.text("create table c_taken (id integer primary key)"))
    assert_error(await admin.post("/api/collections", json={"collection": "taken"}), 400, "INVALID_PAYLOAD")
    assert await catalog_rows(api) == before


async def test_failed_unique_leaves_schema_and_data_as_they_were(api: Any) -> None:
    admin = api.as_admin()
    await create(api, "things", {"field": "code", "type": "string"}, {"field": "n", "type": "integer"})
    await admin.post("/api/items/things", json=[{"code": "a", "n": 42}, {"code": "a", "n": None}])
    described, rows, data = await collection(api, "things"), await catalog_rows(api), await items(api, "things")
    for call in (admin.patch("/api/fields/things/code", json={"unique": True}),
                 admin.patch("/api/fields/things/n", json={"nullable": False}),
                 admin.post("/api/fields/things", json={"field": "req", "type": "text", "nullable": False}),
                 admin.post("/api/fields/things", json={"field": "uq", "type": "text", "unique": True,
                                                        "default": "same"}),
                 admin.post("/api/relations", json={"collection": "things", "field": "n",
                                                    "related_collection": "things"})):
        r = await call
        assert r.status == 409, r
        assert_error(r, 409, "CONFLICT")
        assert await collection(api, "things") == described
        assert await catalog_rows(api) == rows
        assert await items(api, "things") == data
    assert set(await columns(api, "c_things")) == {"id", "code", "n"}
    # the collection still takes changes afterwards
    assert (await admin.post("/api/fields/things", json={"field": "ok", "type": "text"})).status == 201


async def test_concurrent_schema_changes_leave_consistent_metadata(api: Any) -> None:
    admin = api.as_admin()
    results = await asyncio.gather(*(admin.post("/api/collections", json={
        "collection": f"c{i}", "fields": [{"field": "name", "type": "string"}]}) for i in range(5)))
    assert [r.status for r in results] == [201] * 5
    results = await asyncio.gather(
        *(admin.post("/api/fields/c0", json={"field": f"f{i}", "type": "integer"}) for i in range(5)),
        *(admin.post("/api/fields/c1", json={"field": "same", "type": "integer"}) for _ in range(3)),
        admin.post("/api/relations", json={"collection": "c2", "field": "c3", "related_collection": "c3"}),
    )
    assert [r.status for r in results[:5]] == [201] * 5
    assert sorted(r.status for r in results[5:8]) == [201, 409, 409]
    assert results[8].status == 201
    c0 = await collection(api, "c0")
    assert {f["field"] for f in c0["fields"]} == {"id", "name", "f0", "f1", "f2", "f3", "f4"}
    assert set(await columns(api, "c_c0")) == {"id", "name", "f0", "f1", "f2", "f3", "f4"}
    assert set(await columns(api, "c_c1")) == {"id", "name", "same"}
    rows = await catalog_rows(api)
    assert [c for c, _ in rows["collections"]] == ["c0", "c1", "c2", "c3", "c4"]
    schema = services(api).schema
    await schema.reload()  # the cache agrees with the catalog
    assert {f["field"] for f in (await collection(api, "c0"))["fields"]} == {f["field"] for f in c0["fields"]}
    assert (await admin.post("/api/items/c0", json={"f4": 4})).status == 200


async def test_every_change_is_visible_at_once(api: Any) -> None:
    admin = api.as_admin()
    version = services(api).schema.current().version
    await create(api, "things")
    assert (await admin.post("/api/fields/things", json={"field": "a", "type": "string"})).status == 201
    r = await admin.post("/api/items/things", json={"a": "x"})
    assert r.status == 200 and r.data["a"] == "x", r
    assert (await admin.get("/api/items/things", params={"filter": '{"a": {"_eq": "x"}}'})).data[0]["a"] == "x"
    assert (await admin.patch("/api/fields/things/a", json={"field": "b"})).status == 200
    assert (await admin.get("/api/items/things/1")).data == {"id": 1, "b": "x"}
    assert (await admin.post("/api/items/things", json={"b": "y"})).status == 200
    assert (await admin.patch("/api/fields/things/b", json={"type": "text"})).status == 200
    assert (await admin.delete("/api/fields/things/b")).status == 204
    assert_error(await admin.post("/api/items/things", json={"b": "z"}), 400, "INVALID_PAYLOAD")
    assert (await admin.patch("/api/collections/things", json={"collection": "stuff"})).status == 200
    assert (await admin.post("/api/items/stuff", json={})).status == 200
    assert services(api).schema.current().version == version + 6
    r = await admin.get("/api/activity", params={"filter": '{"action": {"_starts_with": "schema."}}',
                                                 "limit": "-1"})
    if r.status == 200:
        assert len(r.data) >= 6
