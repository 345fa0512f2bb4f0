"""Per-collection export (``GET /api/items/{c}?export=csv|json``) and import
(``POST /api/import/{c}``), on both dialects."""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson

from tests.plugins.rest.items_setup import create_blog
from workeros.http.keys import SERVICES


async def test_export_json_streams_every_row_of_the_query(api: Any) -> None:
    await create_blog(api)
    admin = api.as_admin()
    await admin.post("/api/items/tags", json=[{"label": f"t{i:04d}"} for i in range(2500)])
    api.server.app[SERVICES].items.export_batch = 700  # several batches
    r = await admin.get("/api/items/tags", params={"export": "json", "fields": "id,label"})
    assert r.status == 200 and r.headers["Content-Type"].startswith("application/json")
    assert "attachment" in r.headers["Content-Disposition"]
    rows = orjson.loads(r.raw)
    assert len(rows) == 2502 and [row["id"] for row in rows] == list(range(1, 2503))
    r = await admin.get("/api/items/tags", params={"export": "json", "fields": "label", "sort": "-label",
                                                  "search": "t00", "limit": "150"})
    rows = orjson.loads(r.raw)
    assert len(rows) == 100 and rows[0] == {"label": "t0099"}


async def test_export_csv_honours_fields_and_filterless_query(api: Any) -> None:
    await create_blog(api)
    r = await api.as_admin().get("/api/items/posts", params={"export": "csv",
                                                            "fields": "id,title,meta,published,author.name"})
    assert r.status == 200 and r.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.raw.decode())))
    assert rows[0] == ["id", "title", "meta", "published", "author"]
    assert rows[1] == ["1", "Hello", '{"k":1}', "true", '{"name":"Ada"}']
    assert rows[4] == ["4", "fourth_post", "", "true", ""]


async def test_export_errors_before_streaming(api: Any) -> None:
    await create_blog(api)
    r = await api.as_admin().get("/api/items/posts", params={"export": "xml"})
    assert r.status == 400 and r.code == "INVALID_QUERY"
    r = await api.as_admin().get("/api/items/posts", params={"export": "csv", "fields": "nope"})
    assert r.status == 400 and r.code == "INVALID_QUERY"
    r = await api.anonymous().get("/api/items/posts", params={"export": "csv"})
    assert r.status == 403


async def test_import_csv_and_json(api: Any) -> None:
    await create_blog(api, data=False)
    admin = api.as_admin()
    body = "name,email\nAda,ada@x\nBrian,\n"
    r = await admin.post("/api/import/authors", data=body, headers={"Content-Type": "text/csv"})
    assert r.status == 200 and r.data == {"created": 2}
    r = await admin.post("/api/import/posts", json=[{"title": "a", "author": 1, "meta": {"x": [1]}}, {"title": "b"}])
    assert r.data == {"created": 2}
    csv_body = 'title,score,meta,author\n"c, quoted",3,"{""y"": 2}",2\n'
    r = await admin.post("/api/import/posts", data=csv_body, headers={"Content-Type": "text/csv"})
    assert r.status == 200, r
    r = await admin.get("/api/items/posts", params={"fields": "title,score,meta,author.name"})
    assert r.data == [{"title": "a", "score": None, "meta": {"x": [1]}, "author": {"name": "Ada"}},
                      {"title": "b", "score": None, "meta": None, "author": None},
                      {"title": "c, quoted", "score": 3, "meta": {"y": 2}, "author": {"name": "Brian"}}]


async def test_import_is_one_transaction_and_errors_name_the_row(api: Any) -> None:
    await create_blog(api, data=False)
    admin = api.as_admin()
    body = "title,score\nok,1\nalso ok,2\nbad,many\n"
    r = await admin.post("/api/import/posts", data=body, headers={"Content-Type": "text/csv"})
    assert r.status == 400 and r.code == "INVALID_PAYLOAD"
    message = r.json["errors"][0]["message"]
    assert "row 3" in message and "score" in message
    r = await admin.post("/api/import/authors", json=[{"name": "a", "email": "e"}, {"name": "b", "email": "e"}])
    assert r.status == 409 and "row 2" in r.json["errors"][0]["message"]
    r = await admin.post("/api/import/posts", data="title,nope\nx,1\n", headers={"Content-Type": "text/csv"})
    assert r.status == 400 and "nope" in r.json["errors"][0]["message"]
    r = await admin.post("/api/import/posts", data="title,score\nx\n", headers={"Content-Type": "text/csv"})
    assert r.status == 400 and "row 1" in r.json["errors"][0]["message"]
    r = await admin.post("/api/import/posts", data=b"<x/>", headers={"Content-Type": "application/xml"})
    assert r.status == 415
    for path in ("/api/items/posts", "/api/items/authors"):
        r = await admin.get(path, params={"meta": "total_count"})
        assert r.json["meta"]["total_count"] == 0


async def test_import_refuses_callers_without_create_permission(api: Any) -> None:
    await create_blog(api, data=False)
    for path in ("/api/import/posts", "/api/import/nope"):
        r = await api.anonymous().post(path, data="title\nx\n", headers={"Content-Type": "text/csv"})
        assert r.status == 403
