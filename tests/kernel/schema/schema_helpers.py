"""Shared helpers for the schema service tests (over HTTP, both dialects)."""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa

from workeros.http.keys import SERVICES

#: What must never appear in an error message: SQL, driver names, file paths. (A
#: hostile name the caller sent may be echoed back, so "drop table" is not listed.)
LEAKS = re.compile(r"\bSELECT\s.+\sFROM\b|\bINSERT\s+INTO\b|\bUPDATE\s+\S+\s+SET\b|\bALTER\s+TABLE\b|"
                   r"\bCREATE\s+(UNIQUE\s+)?(TABLE|INDEX)\b|\bPRAGMA\b|sqlite3|asyncpg|"
                   r"sqlalchemy|Traceback|/tmp/|/work/|\.py\b|\[SQL:", re.I)


def services(api: Any) -> Any:
    return api.server.app[SERVICES]


def assert_error(r: Any, status: int, code: str) -> None:
    """A contract error envelope with ``status``/``code`` and nothing internal in it."""
    assert r.status == status, r
    assert isinstance(r.json, dict) and set(r.json) == {"errors"}, r
    errors = r.json["errors"]
    assert isinstance(errors, list) and errors, r
    for error in errors:
        assert isinstance(error.get("message"), str) and error["message"], r
        assert error["extensions"]["code"] == code, r
        assert not LEAKS.search(error["message"]), r


async def ok(r: Any, status: int = 200) -> Any:
    assert r.status == status, r
    return r.data


async def create(api: Any, name: str, *fields: dict[str, Any], **extra: Any) -> dict[str, Any]:
    r = await api.as_admin().post("/api/collections", json={"collection": name, "fields": list(fields), **extra})
    assert r.status == 201, r
    return r.data


async def collection(api: Any, name: str) -> dict[str, Any]:
    r = await api.as_admin().get(f"/api/collections/{name}")
    assert r.status == 200, r
    return r.data


def field_of(described: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in described["fields"] if f["field"] == name)


async def tables(api: Any) -> set[str]:
    """Every table in the live database."""
    async with services(api).db.read() as conn:
        return set(await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names()))


async def columns(api: Any, table: str) -> dict[str, dict[str, Any]]:
    async with services(api).db.read() as conn:
        cols = await conn.run_sync(lambda sync: sa.inspect(sync).get_columns(table))
    return {c["name"]: c for c in cols}


async def catalog_rows(api: Any) -> dict[str, list[tuple[Any, ...]]]:
    """The raw catalog rows, for before/after comparisons."""
    from workeros.db.tables.schema import collections, fields, relations

    async with services(api).db.read() as conn:
        return {
            "collections": sorted(tuple(r) for r in (await conn.execute(
                sa.select(collections.c.collection, collections.c.table_name))).all()),
            "fields": sorted(tuple(r) for r in (await conn.execute(sa.select(
                fields.c.collection, fields.c.field, fields.c.type, fields.c.nullable, fields.c.unique,
                fields.c.indexed))).all()),
            "relations": sorted(tuple(r) for r in (await conn.execute(sa.select(
                relations.c.many_collection, relations.c.many_field, relations.c.one_collection,
                relations.c.one_field, relations.c.on_delete))).all()),
        }


async def items(api: Any, name: str, **params: Any) -> list[dict[str, Any]]:
    r = await api.as_admin().get(f"/api/items/{name}", params={"sort": "id", **params})
    assert r.status == 200, r
    return r.data


async def execute(api: Any, *statements: Any) -> None:
    """Run raw statements (SQLAlchemy constructs) outside the schema service."""
    async with services(api).db.transaction() as conn:
        for statement in statements:
            await conn.execute(statement)
