"""/api/items as an admin, on both dialects: reads, writes, errors, audit rows,
events. Permission-specific behaviour is in test_items_permissions.py."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa

from tests.plugins.rest.items_setup import POSTS, create_blog
from workeros.bus.events import ITEMS
from workeros.db.tables.audit import activity, revisions
from workeros.http.keys import SERVICES


def services(api: Any) -> Any:
    return api.server.app[SERVICES]


async def titles(api: Any, **params: Any) -> list[str]:
    r = await api.as_admin().get("/api/items/posts", params={"fields": "title", **params})
    assert r.status == 200, r
    return [row["title"] for row in r.data]


# -- reads ---------------------------------------------------------------------------

async def test_list_returns_json_ready_rows(api: Any) -> None:
    await create_blog(api)
    r = await api.as_admin().get("/api/items/posts")
    assert r.status == 200
    first = r.data[0]
    assert first["id"] == 1 and first["title"] == "Hello"
    assert first["rating"] == "4.50"  # decimals as strings
    assert first["published_at"] == "2024-01-02T03:04:05Z"
    assert first["meta"] == {"k": 1}
    assert first["author"] == 1  # m2o as its key
    assert first["tags"] == [1, 2]  # m2m alias as keys
    assert "meta" not in r.json  # no meta unless asked


async def test_get_by_id_and_not_found(api: Any) -> None:
    await create_blog(api)
    admin = api.as_admin()
    r = await admin.get("/api/items/posts/3", params={"fields": "title,author.name"})
    assert r.status == 200 and r.data == {"title": "Third 100%", "author": {"name": "Brian"}}
    for key in ("999", "abc"):
        r = await admin.get(f"/api/items/posts/{key}")
        assert r.status == 404 and r.code == "NOT_FOUND"
    r = await admin.get("/api/items/nope")
    assert r.status == 404 and r.code == "NOT_FOUND"


async def test_anonymous_is_forbidden_whether_or_not_the_collection_exists(api: Any) -> None:
    await create_blog(api)
    for path in ("/api/items/posts", "/api/items/nope", "/api/items/posts/1"):
        r = await api.anonymous().get(path)
        assert r.status == 403 and r.code == "FORBIDDEN", r
    r = await api.anonymous().post("/api/items/posts", json={"title": "x"})
    assert r.status == 403
    r = await api.anonymous().delete("/api/items/posts/1")
    assert r.status == 403


async def test_sort_nulls_last_ascending_first_descending_ties_by_key(api: Any) -> None:
    await create_blog(api)
    assert await titles(api, sort="score") == ["Second", "Hello", "fourth_post", "Third 100%"]
    assert await titles(api, sort="-score") == ["Third 100%", "fourth_post", "Hello", "Second"]
    # published: True for 1, 3, 4 -> ties break by primary key
    assert await titles(api, sort="-published,-score") == ["Third 100%", "fourth_post", "Hello", "Second"]
    assert await titles(api, sort="published,title") == ["Second", "Hello", "Third 100%", "fourth_post"]


async def test_sort_by_many_to_one_path(api: Any) -> None:
    await create_blog(api)
    # authors: Ada(1) Brian(2); post 4 has no author -> NULL last ascending
    assert await titles(api, sort="-author.name,id") == ["fourth_post", "Third 100%", "Hello", "Second"]
    assert await titles(api, sort="author.name,-id") == ["Second", "Hello", "Third 100%", "fourth_post"]


async def test_sort_errors(api: Any) -> None:
    await create_blog(api)
    admin = api.as_admin()
    for sort, word in (("nope", "nope"), ("tags.label", "tags"), ("meta", "meta"), ("title.x", "title")):
        r = await admin.get("/api/items/posts", params={"sort": sort})
        assert r.status == 400 and r.code == "INVALID_QUERY", (sort, r)
        assert word in r.json["errors"][0]["message"]


async def test_limit_offset_page_and_max_limit(api: Any) -> None:
    await create_blog(api)
    assert await titles(api, limit="2") == ["Hello", "Second"]
    assert await titles(api, limit="2", offset="1") == ["Second", "Third 100%"]
    assert await titles(api, limit="2", page="2") == ["Third 100%", "fourth_post"]
    assert await titles(api, limit="-1") == [p["title"] for p in POSTS]
    assert await titles(api, limit="0") == []


async def test_configured_max_limit_caps_pages(make_server: Any) -> None:
    from aiohttp.test_utils import TestClient

    from tests.conftest import Api, TestCallers

    async with make_server(TestCallers(), **{"items.max_limit": 3}) as server, TestClient(server) as client:
        api = Api(client)
        api.server = server  # type: ignore[attr-defined]
        await create_blog(api)
        assert len(await titles(api, limit="-1")) == 3
        assert len(await titles(api, limit="100")) == 3
        assert len(await titles(api)) == 3


async def test_search_is_case_insensitive_and_literal(api: Any) -> None:
    await create_blog(api)
    assert await titles(api, search="mixed case") == ["Second"]
    assert await titles(api, search="100%") == ["Third 100%"]
    assert await titles(api, search="_") == ["fourth_post"]
    assert await titles(api, search="%") == ["Third 100%"]
    assert await titles(api, search="zzz") == []
    # folded beyond ASCII, as _icontains folds, on both dialects
    r = await api.as_admin().post("/api/items/posts", json={"title": "ÄRGER im Büro", "author": None})
    assert r.status == 200 or r.status == 201, r
    assert await titles(api, search="ärger") == ["ÄRGER im Büro"]


async def test_meta_counts(api: Any) -> None:
    await create_blog(api)
    r = await api.as_admin().get("/api/items/posts", params={"search": "post", "meta": "*", "limit": "1"})
    assert r.json["meta"] == {"total_count": 4, "filter_count": 2}
    assert len(r.data) == 1


async def test_relational_fields_m2o_o2m_m2m(api: Any) -> None:
    await create_blog(api)
    admin = api.as_admin()
    r = await admin.get("/api/items/posts", params={"fields": "id,author.*,tags.label", "limit": "2"})
    assert r.data == [
        {"id": 1, "author": {"id": 1, "name": "Ada", "email": "ada@example.com", "posts": [1, 2]},
         "tags": [{"label": "a"}, {"label": "b"}]},
        {"id": 2, "author": {"id": 1, "name": "Ada", "email": "ada@example.com", "posts": [1, 2]}, "tags": []},
    ]
    r = await admin.get("/api/items/authors", params={"fields": "name,posts.title,posts.tags.label"})
    assert r.data == [
        {"name": "Ada", "posts": [{"title": "Hello", "tags": [{"label": "a"}, {"label": "b"}]},
                                  {"title": "Second", "tags": []}]},
        {"name": "Brian", "posts": [{"title": "Third 100%", "tags": [{"label": "b"}]}]},
        {"name": "Cleo", "posts": []},
    ]
    r = await admin.get("/api/items/tags/2", params={"fields": "label,posts.title"})
    assert r.data == {"label": "b", "posts": [{"title": "Hello"}, {"title": "Third 100%"}]}


async def test_deep_limits_and_sorts_each_parent(api: Any) -> None:
    await create_blog(api)
    r = await api.as_admin().get("/api/items/authors", params={
        "fields": "name,posts.title", "deep[posts][_limit]": "1", "deep[posts][_sort]": "-id"})
    assert [a["posts"] for a in r.data] == [[{"title": "Second"}], [{"title": "Third 100%"}], []]


async def test_field_errors(api: Any) -> None:
    await create_blog(api)
    admin = api.as_admin()
    for fields, word in (("nope", "nope"), ("title.x", "title"), ("author.nope", "nope")):
        r = await admin.get("/api/items/posts", params={"fields": fields})
        assert r.status == 400 and r.code == "INVALID_QUERY", (fields, r)
        assert word in r.json["errors"][0]["message"]


async def test_relations_are_loaded_in_batches(api: Any) -> None:
    await create_blog(api)
    admin = api.as_admin()
    await admin.post("/api/items/posts", json=[{"title": f"p{i}", "author": 1 + i % 3} for i in range(40)])
    engine = services(api).db.engine
    issued: list[tuple[Any, str]] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            issued.append((asyncio.current_task(), statement))

    sa.event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        r = await admin.get("/api/items/posts", params={"fields": "title,author.name,author.posts.title,tags.label",
                                                         "limit": "-1"})
    finally:
        sa.event.remove(engine.sync_engine, "before_cursor_execute", count)
    assert r.status == 200 and len(r.data) == 44
    # The request's own statements (a plugin's background work, such as a schema
    # rebuild after the blog's schema changes, runs in other tasks):
    request_task = next(task for task, statement in issued if "FROM c_posts" in statement)
    statements = [statement for task, statement in issued if task is request_task]
    # posts, authors (m2o), their posts (o2m), tags (m2m): one query per relation level, not per row
    assert len(statements) == 4, statements


async def test_aggregate_and_group_by(api: Any) -> None:
    await create_blog(api)
    admin = api.as_admin()
    r = await admin.get("/api/items/posts", params={"aggregate[count]": "*"})
    assert r.data == [{"count": 4}]
    r = await admin.get("/api/items/posts", params={
        "aggregate[sum]": "score", "aggregate[avg]": "score", "aggregate[min]": "published_at",
        "aggregate[max]": "rating", "aggregate[countDistinct]": "author", "aggregate[count]": "score,*"})
    assert r.data == [{"sum": {"score": 35}, "avg": {"score": 35 / 3}, "min": {"published_at": "2023-12-31T23:59:59.500000Z"},
                       "max": {"rating": "4.50"}, "countDistinct": {"author": 2}, "count": {"score": 3, "*": 4}}]
    r = await admin.get("/api/items/posts", params={"aggregate[count]": "*", "aggregate[sum]": "score",
                                                    "groupBy": "author"})
    assert r.data == [{"author": 1, "count": 2, "sum": {"score": 15}},
                      {"author": 2, "count": 1, "sum": {"score": None}},
                      {"author": None, "count": 1, "sum": {"score": 20}}]
    for params in ({"aggregate[sum]": "title"}, {"aggregate[avg]": "*"}, {"aggregate[count]": "nope"},
                   {"aggregate[count]": "*", "groupBy": "tags"}):
        r = await admin.get("/api/items/posts", params=params)
        assert r.status == 400 and r.code == "INVALID_QUERY", (params, r)


# -- writes --------------------------------------------------------------------------

async def test_create_one_and_many(api: Any) -> None:
    await create_blog(api, data=False)
    admin = api.as_admin()
    r = await admin.post("/api/items/authors", json={"name": "Ada"})
    assert r.status == 200 and r.data == {"id": 1, "name": "Ada", "email": None, "posts": []}
    r = await admin.post("/api/items/posts", json=[{"title": "a", "score": "7", "author": 1},
                                                   {"title": "b", "published_at": "2024-05-06T07:08:09+02:00"}],
                         params={"fields": "id,title,score,published,published_at"})
    assert r.data == [
        {"id": 1, "title": "a", "score": 7, "published": False, "published_at": None},
        {"id": 2, "title": "b", "score": None, "published": False, "published_at": "2024-05-06T05:08:09Z"},
    ]


async def test_invalid_payloads_name_the_field_and_write_nothing(api: Any) -> None:
    await create_blog(api, data=False)
    admin = api.as_admin()
    cases = [
        ({"title": "x", "score": "many"}, "score", "INVALID_PAYLOAD", 400),
        ({"title": "x", "rating": "12345.678"}, "rating", "INVALID_PAYLOAD", 400),
        ({"title": "x", "published_at": "yesterday"}, "published_at", "INVALID_PAYLOAD", 400),
        ({"title": None}, "title", "INVALID_PAYLOAD", 400),
        ({"score": 1}, "title", "INVALID_PAYLOAD", 400),
        ({"title": "x", "nope": 1}, "nope", "INVALID_PAYLOAD", 400),
        ({"title": "x", "tags": [1]}, "tags", "INVALID_PAYLOAD", 400),
        ({"title": "x", "author": 99}, "author", "CONFLICT", 409),
        ([{"title": "ok"}, {"title": "x", "score": 2**40}], "score", "INVALID_PAYLOAD", 400),
    ]
    for payload, field, code, status in cases:
        r = await admin.post("/api/items/posts", json=payload)
        assert r.status == status and r.code == code, (payload, r)
        message = r.json["errors"][0]["message"]
        assert field in message, (payload, message)
        assert "SELECT" not in message and "INSERT" not in message
    r = await admin.get("/api/items/posts", params={"meta": "total_count"})
    assert r.json["meta"]["total_count"] == 0
    for body in (b"[1]", b'"x"', b"nope"):
        r = await admin.post("/api/items/posts", data=body, headers={"Content-Type": "application/json"})
        assert r.status == 400, body


async def test_unique_violation_is_409_and_batch_is_atomic(api: Any) -> None:
    await create_blog(api, data=False)
    admin = api.as_admin()
    assert (await admin.post("/api/items/authors", json={"name": "A", "email": "a@x"})).status == 200
    r = await admin.post("/api/items/authors", json=[{"name": "B", "email": "b@x"}, {"name": "C", "email": "a@x"}])
    assert r.status == 409 and r.code == "CONFLICT"
    assert "email" in r.json["errors"][0]["message"] and "item 2" in r.json["errors"][0]["message"]
    r = await admin.get("/api/items/authors", params={"fields": "name"})
    assert r.data == [{"name": "A"}]
    r = await admin.patch("/api/items/authors/1", json={"email": None})
    assert r.status == 200
    b = (await admin.post("/api/items/authors", json={"name": "B", "email": "b@x"})).data["id"]
    r = await admin.patch(f"/api/items/authors/{b}", json={"email": "b@x"})
    assert r.status == 200
    r = await admin.patch("/api/items/authors", json={"keys": [1, b], "data": {"email": "same@x"}})
    assert r.status == 409 and r.code == "CONFLICT"


async def test_update_one_many_and_errors(api: Any) -> None:
    await create_blog(api)
    admin = api.as_admin()
    r = await admin.patch("/api/items/posts/2", json={"score": 6, "published": "true"}, params={"fields": "id,score,published"})
    assert r.status == 200 and r.data == {"id": 2, "score": 6, "published": True}
    r = await admin.patch("/api/items/posts", json={"keys": [1, 3], "data": {"score": 0}})
    assert r.status == 200 and [p["score"] for p in r.data] == [0, 0]
    r = await admin.patch("/api/items/posts", json={"keys": [1, 99], "data": {"score": 1}})
    assert r.status == 404
    assert (await admin.get("/api/items/posts/1")).data["score"] == 0  # nothing written
    r = await admin.patch("/api/items/posts/99", json={"score": 1})
    assert r.status == 404
    r = await admin.patch("/api/items/posts/1", json={"id": 5})
    assert r.status == 400 and r.code == "INVALID_PAYLOAD"
    r = await admin.patch("/api/items/posts/1", json={"title": None})
    assert r.status == 400 and "title" in r.json["errors"][0]["message"]
    r = await admin.patch("/api/items/posts", json={"data": {"score": 1}})
    assert r.status == 400


async def test_delete_one_and_many(api: Any) -> None:
    await create_blog(api)
    admin = api.as_admin()
    assert (await admin.delete("/api/items/tags/1")).status == 204
    assert (await admin.get("/api/items/tags/1")).status == 404
    assert (await admin.delete("/api/items/tags/1")).status == 404
    r = await admin.delete("/api/items/posts", json=[3, 99])
    assert r.status == 404
    assert (await admin.get("/api/items/posts/3")).status == 200
    assert (await admin.delete("/api/items/posts", json={"keys": [3, 4]})).status == 204
    assert await titles(api) == ["Hello", "Second"]
    # posts_tags rows cascade with their post
    r = await admin.get("/api/items/tags/2", params={"fields": "posts"})
    assert r.data == {"posts": [1]}


async def test_activity_and_revisions_are_written_with_the_change(api: Any) -> None:
    await create_blog(api, data=False)
    admin = api.as_admin()
    await admin.post("/api/items/authors", json=[{"name": "A"}, {"name": "B"}])
    await admin.patch("/api/items/authors/2", json={"name": "Bee"})
    await admin.delete("/api/items/authors/1")
    await admin.post("/api/items/authors", json=[{"name": "C"}, {"name": None}])  # refused: nothing recorded
    async with services(api).db.read() as conn:
        acts = (await conn.execute(sa.select(activity).where(activity.c.collection == "authors",
                                                             activity.c.action.like("item.%"))
                                   .order_by(activity.c.id))).mappings().all()
        revs = (await conn.execute(sa.select(revisions).where(revisions.c.collection == "authors")
                                   .order_by(revisions.c.id))).mappings().all()
    assert [(a["action"], a["item"], a["user"]) for a in acts] == [
        ("item.create", "1", "test-admin"), ("item.create", "2", "test-admin"),
        ("item.update", "2", "test-admin"), ("item.delete", "1", "test-admin")]
    assert [(r["item"], r["data"], r["delta"]) for r in revs] == [
        ("1", {"id": 1, "name": "A", "email": None}, {"name": "A"}),
        ("2", {"id": 2, "name": "B", "email": None}, {"name": "B"}),
        ("2", {"id": 2, "name": "Bee", "email": None}, {"name": "Bee"}),
        ("1", None, None)]
    assert [r["activity"] for r in revs] == [a["id"] for a in acts]


async def test_one_event_per_call_after_commit_with_full_rows(api: Any) -> None:
    await create_blog(api, data=False)
    admin = api.as_admin()
    received: list[dict] = []
    unsubscribe = services(api).events.subscribe(ITEMS, received.append)
    try:
        await admin.post("/api/items/authors", json=[{"name": "A"}, {"name": "B"}])
        await admin.patch("/api/items/authors", json={"keys": [1, 2], "data": {"name": "N"}})
        await admin.post("/api/items/authors", json={"name": None})  # refused: no event
        await admin.delete("/api/items/authors", json=[1])
        for _ in range(50):
            if len(received) >= 3:
                break
            await asyncio.sleep(0.02)
    finally:
        unsubscribe()
    assert [(m["collection"], m["action"], m["keys"]) for m in received] == [
        ("authors", "create", [1, 2]), ("authors", "update", [1, 2]), ("authors", "delete", [1])]
    assert received[0]["after"] == [{"id": 1, "name": "A", "email": None}, {"id": 2, "name": "B", "email": None}]
    assert received[1]["before"][0] == {"id": 1, "name": "A", "email": None}
    assert received[1]["after"][1] == {"id": 2, "name": "N", "email": None}
    assert received[2]["before"] == [{"id": 1, "name": "N", "email": None}] and received[2]["after"] is None
    assert received[0]["user"] == "test-admin"


async def test_uuid_primary_keys(api: Any) -> None:
    admin = api.as_admin()
    r = await admin.post("/api/collections", json={"collection": "notes", "pk_type": "uuid",
                                                    "fields": [{"field": "text", "type": "text"}]})
    assert r.status == 201, r
    r = await admin.post("/api/items/notes", json={"text": "hi"})
    key = r.data["id"]
    assert len(key) == 36
    assert (await admin.get(f"/api/items/notes/{key}")).data == {"id": key, "text": "hi"}
    assert (await admin.get("/api/items/notes/not-a-uuid")).status == 404
    assert (await admin.patch(f"/api/items/notes/{key.upper()}", json={"text": "yo"})).data["text"] == "yo"
    assert (await admin.delete(f"/api/items/notes/{key}")).status == 204


async def test_values_the_database_cannot_take_are_4xx(api: Any) -> None:
    await create_blog(api)
    admin = api.as_admin()
    r = await admin.get("/api/items/posts", params={"search": "a\x00b"})
    assert r.status in (200, 400), r
    r = await admin.post("/api/items/posts", json={"title": "nul \x00 byte"})
    assert r.status in (200, 400), r
    r = await admin.post("/api/items/posts", json={"title": "x", "rating": "1e999999"})
    assert r.status == 400 and "rating" in r.json["errors"][0]["message"]


# -- filters (the DSL itself is tested with the permissions package) ---------------------

@pytest.fixture
def filters() -> None:
    pytest.importorskip("workeros.permissions")


async def test_filter_json_and_deep_object_forms(api: Any, filters: None) -> None:
    await create_blog(api)
    assert await titles(api, filter='{"score": {"_gte": 10}}') == ["Hello", "fourth_post"]
    assert await titles(api, **{"filter[score][_gte]": "10"}) == ["Hello", "fourth_post"]
    assert await titles(api, **{"filter[id][_in]": "2,3"}) == ["Second", "Third 100%"]
    assert await titles(api, **{"filter[score][_null]": "true"}) == ["Third 100%"]
    assert await titles(api, **{"filter[_or][0][score][_lt]": "6", "filter[_or][1][title][_eq]": "Hello"}) == [
        "Hello", "Second"]
    assert await titles(api, filter='{"author": {"name": {"_eq": "Ada"}}}') == ["Hello", "Second"]
    assert await titles(api, filter='{"tags": {"_some": {"label": {"_eq": "b"}}}}') == ["Hello", "Third 100%"]
    r = await api.as_admin().get("/api/items/posts", params={"filter": '{"score": {"_gte": 10}}', "meta": "*"})
    assert r.json["meta"] == {"total_count": 4, "filter_count": 2}
    for bad in ('{"nope": {"_eq": 1}}', '{"score": {"_bogus": 1}}', '{"score": {"_eq": "many"}}'):
        r = await api.as_admin().get("/api/items/posts", params={"filter": bad})
        assert r.status == 400 and r.code == "INVALID_QUERY", (bad, r)


async def test_filters_apply_to_aggregates_deep_and_exports(api: Any, filters: None) -> None:
    await create_blog(api)
    admin = api.as_admin()
    r = await admin.get("/api/items/posts", params={"filter[published][_eq]": "true", "aggregate[count]": "*"})
    assert r.data == [{"count": 3}]
    r = await admin.get("/api/items/authors", params={
        "fields": "name,posts.title", "deep": '{"posts": {"_filter": {"score": {"_gt": 5}}}}'})
    assert [a["posts"] for a in r.data] == [[{"title": "Hello"}], [], []]
    r = await admin.get("/api/items/posts", params={"export": "json", "fields": "id",
                                                    "filter": '{"author": {"_null": true}}'})
    assert r.status == 200 and r.raw == b'[{"id":4}]'


async def test_update_by_filter(api: Any, filters: None) -> None:
    await create_blog(api)
    admin = api.as_admin()
    r = await admin.patch("/api/items/posts", json={"query": {"filter": {"published": {"_eq": True}}},
                                                    "data": {"score": 1}}, params={"fields": "id,score"})
    assert r.status == 200 and r.data == [{"id": 1, "score": 1}, {"id": 3, "score": 1}, {"id": 4, "score": 1}]
    r = await admin.patch("/api/items/posts", json={"query": {"filter": {"id": {"_eq": 99}}}, "data": {"score": 1}})
    assert r.status == 200 and r.data == []
    r = await admin.patch("/api/items/posts", json={"query": {"filter": {"nope": {"_eq": 1}}}, "data": {"score": 1}})
    assert r.status == 400
