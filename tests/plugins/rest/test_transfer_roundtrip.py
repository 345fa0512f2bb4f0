"""A collection's CSV export imports back as it was (relational columns
included), and the per-request write cap is a setting; both dialects."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from callers import Api, TestCallers

from tests.plugins.rest.items_setup import create_blog


async def _all(admin: Any, collection: str) -> list[dict]:
    r = await admin.get(f"/api/items/{collection}", params={"sort": "id", "limit": "-1"})
    assert r.status == 200, r
    return r.data


async def test_csv_export_imports_back(api: Any) -> None:
    await create_blog(api)
    admin = api.as_admin()
    before = {c: await _all(admin, c) for c in ("authors", "posts", "tags")}
    exported = {}
    for c in ("authors", "tags", "posts", "posts_tags"):
        r = await admin.get(f"/api/items/{c}", params={"export": "csv", "sort": "id"})
        assert r.status == 200, r
        exported[c] = r.raw
    for c in ("posts_tags", "posts", "tags", "authors"):
        keys = [row["id"] for row in await _all(admin, c)]
        assert (await admin.delete(f"/api/items/{c}", json=keys)).status == 204
    for c in ("authors", "tags", "posts", "posts_tags"):
        r = await admin.post(f"/api/import/{c}", data=exported[c], headers={"Content-Type": "text/csv"})
        assert r.status == 200, (c, r)
    after = {c: await _all(admin, c) for c in ("authors", "posts", "tags")}
    assert after == before


async def test_write_cap_is_a_setting(make_server) -> None:
    async with make_server(TestCallers(), items__max_batch=3) as server, TestClient(server) as client:
        api = Api(client)
        admin = api.as_admin()
        r = await admin.post("/api/collections", json={"collection": "tags", "fields": [
            {"field": "label", "type": "string"}]})
        assert r.status == 201, r
        r = await admin.post("/api/items/tags", json=[{"label": str(i)} for i in range(4)])
        assert r.status == 400 and "At most 3 items per request" in r.json["errors"][0]["message"]
        r = await admin.post("/api/import/tags", data="label\na\nb\nc\nd\n", headers={"Content-Type": "text/csv"})
        assert r.status == 400 and "At most 3" in r.json["errors"][0]["message"]
        r = await admin.post("/api/items/tags", json=[{"label": str(i)} for i in range(3)])
        assert r.status == 200 and len(r.data) == 3
        r = await admin.delete("/api/items/tags", json=[1, 2, 3, 4])
        assert r.status == 400 and "At most 3" in r.json["errors"][0]["message"]
