"""Rows written with explicit integer keys (a batch create carrying ids, an import, a
restore re-creating a row) never leave the key's sequence behind: the next create
without a key gets a fresh one, on both dialects."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from tests.kernel.schema.schema_helpers import create, services


async def _next_id(admin: Any, title: str) -> int:
    r = await admin.post("/api/items/notes", json={"title": title})
    assert r.status == 200, r
    return r.data["id"]


async def test_explicit_ids_advance_the_sequence(api: Any) -> None:
    admin = api.as_admin()
    await create(api, "notes", {"field": "title", "type": "string"})
    assert await _next_id(admin, "first") == 1
    r = await admin.post("/api/items/notes", json=[{"id": 5, "title": "five"}, {"id": 10, "title": "ten"}])
    assert r.status == 200, r
    assert await _next_id(admin, "after batch") == 11
    r = await admin.post("/api/items/notes", json={"id": 40, "title": "forty"})
    assert r.status == 200, r
    assert await _next_id(admin, "after one") == 41
    r = await admin.post("/api/import/notes", json=[{"id": 100, "title": "imported"}, {"id": 60, "title": "i2"}])
    assert r.status == 200 and r.data == {"created": 2}, r
    assert await _next_id(admin, "after import") == 101
    r = await admin.post("/api/import/notes", data=b"id,title\n200,csv\n", headers={"Content-Type": "text/csv"})
    assert r.status == 200, r
    assert await _next_id(admin, "after csv") == 201
    # a lower explicit key never moves the sequence back
    r = await admin.post("/api/items/notes", json={"id": 3, "title": "three"})
    assert r.status == 200, r
    assert await _next_id(admin, "still ahead") == 202
    r = await admin.post("/api/graphql", json={"query": 'mutation { create_notes_item(data: {id: 300, title: "g"})'
                                                        " { id } }"})
    assert r.status == 200 and not r.json.get("errors"), r
    assert await _next_id(admin, "after graphql") == 301


async def test_restore_recreating_a_row_advances_the_sequence(api: Any) -> None:
    admin = api.as_admin()
    await create(api, "notes", {"field": "title", "type": "string"})
    for title in ("a", "b", "c"):
        await _next_id(admin, title)
    assert (await admin.delete("/api/items/notes/3")).status == 204
    svc = services(api)
    if svc.db.dialect == "postgresql":
        # a sequence left behind the rows (as an older version or a manual load could leave it)
        async with svc.db.transaction() as conn:
            await conn.execute(sa.text("SELECT setval(pg_get_serial_sequence('c_notes', 'id'), 1)"))
    revisions = (await admin.get("/api/revisions", params={"collection": "notes", "item": "3"})).data
    created = [rev for rev in revisions if rev["data"] is not None]
    r = await admin.post(f"/api/revisions/{created[0]['id']}/restore")
    assert r.status == 200, r
    assert (await admin.get("/api/items/notes/3")).data["title"] == "c"
    assert await _next_id(admin, "d") == 4
