"""A small schema and rows for the filter-language tests, built through the
schema service on the test's dialect; rows inserted with SQLAlchemy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa

from workeros.accountability import Accountability
from workeros.http.keys import SERVICES

ROWS = [
    {"id": 1, "name": "Alpha", "note": "50% off_sale", "n": 1, "big": 10_000_000_000, "x": 1.5, "price": "10.50",
     "ok": True, "at": "2024-01-01T00:00:00Z", "day": "2024-01-01", "data": {"a": 1}, "owner": "u1", "ref": None},
    {"id": 2, "name": "alpha", "note": "", "n": 2, "big": None, "x": -2.0, "price": "3.00", "ok": False,
     "at": "2024-06-01T12:00:00Z", "day": "2024-06-01", "data": [], "owner": "u2", "ref": 1},
    {"id": 3, "name": "Ärger", "note": None, "n": None, "big": 5, "x": None, "price": None, "ok": None,
     "at": None, "day": None, "data": None, "owner": None, "ref": 1},
    {"id": 4, "name": None, "note": "ÄRGER% über", "n": 10, "big": 7, "x": 0.0, "price": "0.01", "ok": True,
     "at": "2030-01-01T00:00:00Z", "day": "2030-01-01", "data": "", "owner": "u1", "ref": 2},
]


@dataclass
class World:
    services: Any
    api: Any

    @property
    def schema(self) -> Any:
        return self.services.schema.current()

    async def ids(self, raw: Any, acc: Accountability | None = None, *, access: Any = None) -> tuple[list, list]:
        """(ids the SQL selects, ids the matcher accepts) for a filter."""
        from workeros.permissions import Variables, compile_filter, match_filter, parse_filter

        schema = self.schema
        f = parse_filter(raw, schema=schema, collection="things", access=access)
        variables = Variables.for_accountability(acc)
        c = schema.collections["things"]
        async with self.services.db.read() as conn:
            sql = sorted(r[0] for r in await conn.execute(
                sa.select(c.pk_column).where(compile_filter(f, schema=schema, collection="things",
                                                            variables=variables))))
            rows = [dict(r) for r in (await conn.execute(sa.select(c.table))).mappings()]
            related = {r["id"]: r for r in rows}
        def nest(row: dict, depth: int) -> dict:
            """The row with its relations as the matcher reads them (m2o a dict,
            o2m a list), three levels deep."""
            out = dict(row)
            if depth < 3:
                parent = related.get(row["ref"]) if row["ref"] is not None else None
                out["ref"] = nest(parent, depth + 1) if parent is not None else None
                out["children"] = [nest(r, depth + 1) for r in rows if r["ref"] == row["id"]]
            return out

        matched = []
        for row in rows:
            nested = nest(row, 0)
            if match_filter(f, nested, schema=schema, collection="things", variables=variables):
                matched.append(row["id"])
        return sql, sorted(matched)


@pytest.fixture
async def world(api: Any) -> World:
    admin = api.as_admin()
    r = await admin.post("/api/collections", json={"collection": "things", "fields": [
        {"field": "name", "type": "string"}, {"field": "note", "type": "text"}, {"field": "n", "type": "integer"},
        {"field": "big", "type": "bigint"}, {"field": "x", "type": "float"},
        {"field": "price", "type": "decimal", "options": {"precision": 10, "scale": 2}},
        {"field": "ok", "type": "boolean"}, {"field": "at", "type": "datetime"}, {"field": "day", "type": "date"},
        {"field": "data", "type": "json"}, {"field": "owner", "type": "string"}]})
    assert r.status == 201, r
    r = await admin.post("/api/relations", json={"collection": "things", "field": "ref",
                                                   "related_collection": "things", "one_field": "children"})
    assert r.status == 201, r
    r = await admin.post("/api/items/things", json=[{k: v for k, v in row.items() if k != "ref"} for row in ROWS])
    assert r.status == 200, r
    for row in ROWS:
        if row["ref"] is not None:
            assert (await admin.patch(f"/api/items/things/{row['id']}", json={"ref": row["ref"]})).status == 200
    return World(api.server.app[SERVICES], api)
