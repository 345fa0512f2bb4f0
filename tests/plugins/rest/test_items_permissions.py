"""/api/items under roles: row filters, field allowlists, validation, presets, the
public role, and leak attempts (filter, sort, search, aggregate, groupBy and
fields on a forbidden field; relational paths into a collection the role may not
read). Both dialects."""

from __future__ import annotations

from typing import Any

import pytest
from openapi_spec_validator import validate

from tests.plugins.rest.items_setup import create_blog

pytest.importorskip("workeros.permissions")


async def grant(api: Any, role: str, collection: str, action: str, **rule: Any) -> None:
    r = await api.as_admin().post("/api/permissions", json={"role": role, "collection": collection,
                                                            "action": action, **rule})
    assert r.status in (200, 201), r


async def make_role(api: Any, name: str) -> str:
    r = await api.as_admin().post("/api/roles", json={"name": name})
    assert r.status in (200, 201), r
    return str(r.data["id"])


@pytest.fixture
async def editor(api: Any) -> Any:
    """An ``editor``: reads published posts (no body/rating) and authors' names,
    creates posts (title, score, body, published; published preset false; score at
    most 100), updates posts with a score, cannot delete, cannot read tags."""
    await create_blog(api)
    role = await make_role(api, "editor")
    await grant(api, role, "posts", "read", filter={"published": {"_eq": True}},
                fields=["id", "title", "score", "author", "published", "published_at", "tags"])
    await grant(api, role, "authors", "read", fields=["id", "name", "posts"])
    await grant(api, role, "posts", "create", fields=["title", "score", "body", "author", "published"],
                presets={"published": False}, validation={"score": {"_lte": 100}})
    await grant(api, role, "posts", "update", filter={"score": {"_nnull": True}}, fields=["title", "score"])
    public = "public"
    await grant(api, public, "tags", "read", fields=["id", "label"])
    return api.as_role(role, user="u1")


async def test_row_filter_and_field_allowlist_shape_reads(editor: Any) -> None:
    r = await editor.get("/api/items/posts", params={"meta": "*"})
    assert r.status == 200, r
    assert [p["id"] for p in r.data] == [1, 3, 4]
    assert set(r.data[0]) == {"id", "title", "score", "author", "published", "published_at"}
    assert r.json["meta"] == {"total_count": 3, "filter_count": 3}
    r = await editor.get("/api/items/posts", params={"fields": "title,author.*"})
    assert r.data[0] == {"title": "Hello", "author": {"id": 1, "name": "Ada", "posts": [1]}}
    r = await editor.get("/api/items/posts/2")
    assert r.status == 404  # exists, but not visible
    r = await editor.get("/api/items/posts/1", params={"fields": "title"})
    assert r.data == {"title": "Hello"}


@pytest.mark.parametrize("params", [
    {"fields": "body"},
    {"fields": "author.email"},
    {"fields": "tags.label"},
    {"fields": "nope"},  # unknown to the schema, outside the allowlist: 403, not 400
    {"filter": '{"body": {"_contains": "first"}}'},
    {"filter[rating][_gt]": "1"},
    {"filter": '{"author": {"email": {"_null": false}}}'},
    {"filter": '{"tags": {"_some": {"label": {"_eq": "a"}}}}'},
    {"sort": "rating"},
    {"sort": "-author.email"},
    {"aggregate[sum]": "rating"},
    {"aggregate[count]": "*", "groupBy": "body"},
    {"aggregate[max]": "body"},
])
async def test_leak_attempts_are_forbidden(editor: Any, params: dict) -> None:
    r = await editor.get("/api/items/posts", params=params)
    assert r.status == 403 and r.code == "FORBIDDEN", (params, r)
    assert r.data is None


async def test_m2m_filter_needs_read_access_to_the_junction(api: Any, editor: Any) -> None:
    """Reading tags is not enough to learn which post has which tag: the links are
    rows of the junction, for filters as for ``fields=tags.label``."""
    await grant(api, editor.caller.split(":")[1], "tags", "read", fields=["id", "label"])
    for params in ({"fields": "tags.label"}, {"filter": '{"tags": {"_some": {"label": {"_eq": "a"}}}}'},
                   {"filter": '{"tags": {"_none": {"label": {"_eq": "a"}}}}'}):
        r = await editor.get("/api/items/posts", params=params)
        assert r.status == 403 and r.code == "FORBIDDEN", (params, r)
    # links to tag "a" (id 1) are outside the junction's read filter: they count for nothing
    await grant(api, editor.caller.split(":")[1], "posts_tags", "read", filter={"tags_id": {"_neq": 1}})

    async def ids(where: str) -> list[int]:
        r = await editor.get("/api/items/posts", params={"filter": where, "fields": "id"})
        assert r.status == 200, r
        return [row["id"] for row in r.data]

    assert await ids('{"tags": {"_some": {"label": {"_eq": "a"}}}}') == []
    assert await ids('{"tags": {"_some": {"label": {"_eq": "b"}}}}') == [1, 3]
    assert await ids('{"tags": {"_none": {"label": {"_eq": "a"}}}}') == [1, 3, 4]
    r = await editor.get("/api/items/posts/1", params={"fields": "tags.label"})
    assert r.status == 200 and r.data == {"tags": [{"label": "b"}]}, r  # reads agree with filters


async def test_search_covers_only_readable_fields(editor: Any) -> None:
    r = await editor.get("/api/items/posts", params={"search": "first post", "fields": "id"})
    assert r.status == 200 and r.data == []  # "first post" is only in the body
    r = await editor.get("/api/items/posts", params={"search": "hello", "fields": "id"})
    assert r.data == [{"id": 1}]


async def test_aggregates_count_only_readable_rows(editor: Any) -> None:
    r = await editor.get("/api/items/posts", params={"aggregate[count]": "*", "aggregate[sum]": "score"})
    assert r.data == [{"count": 3, "sum": {"score": 30}}]


async def test_collections_without_access_are_403_whether_or_not_they_exist(editor: Any) -> None:
    for path in ("/api/items/tags", "/api/items/nope", "/api/items/tags/1", "/api/items/posts_tags"):
        r = await editor.get(path)
        assert r.status == 403, (path, r)
    r = await editor.delete("/api/items/posts/1")
    assert r.status == 403
    r = await editor.post("/api/items/authors", json={"name": "x"})
    assert r.status == 403


async def test_create_applies_presets_validation_and_write_allowlist(editor: Any, api: Any) -> None:
    r = await editor.post("/api/items/posts", json={"title": "mine", "score": 5})
    assert r.status == 200, r
    key = r.data["id"]
    stored = (await api.as_admin().get(f"/api/items/posts/{key}")).data
    assert stored["published"] is False  # preset
    r = await editor.post("/api/items/posts", json={"title": "x", "score": 500})
    assert r.status == 400 and r.code == "INVALID_PAYLOAD"
    r = await editor.post("/api/items/posts", json={"title": "x", "rating": "1.00"})
    assert r.status == 403
    r = await editor.post("/api/items/posts", json=[{"title": "ok", "score": 1}, {"title": "bad", "score": 101}])
    assert r.status == 400 and "item 2" in r.json["errors"][0]["message"]
    total = (await api.as_admin().get("/api/items/posts", params={"meta": "total_count"})).json["meta"]
    assert total["total_count"] == 5


async def test_update_respects_its_filter_and_fields(editor: Any, api: Any) -> None:
    r = await editor.patch("/api/items/posts/1", json={"score": 11})
    assert r.status == 200 and r.data["score"] == 11
    r = await editor.patch("/api/items/posts/3", json={"score": 1})  # score is NULL: outside the update filter
    assert r.status == 404
    r = await editor.patch("/api/items/posts/1", json={"body": "x"})
    assert r.status == 403
    r = await editor.patch("/api/items/posts", json={"keys": [1, 3], "data": {"score": 2}})
    assert r.status == 404
    assert (await api.as_admin().get("/api/items/posts/1")).data["score"] == 11
    # the write succeeded but post 2 is not readable: only its key comes back
    r = await editor.patch("/api/items/posts/2", json={"title": "renamed"})
    assert r.status == 200 and r.data == {"id": 2}


async def test_public_role_applies_to_anonymous_callers(editor: Any, api: Any) -> None:
    r = await api.anonymous().get("/api/items/tags")
    assert r.status == 200 and r.data == [{"id": 1, "label": "a"}, {"id": 2, "label": "b"}]
    r = await api.anonymous().get("/api/items/tags", params={"fields": "posts.title"})
    assert r.status == 403
    for path in ("/api/items/posts", "/api/items/nope"):
        assert (await api.anonymous().get(path)).status == 403


async def test_openapi_shows_only_what_the_role_may_use(editor: Any) -> None:
    r = await editor.get("/api/openapi.json")
    assert r.status == 200
    doc = r.json
    validate(doc)
    # The per-collection item paths are the role's (the rest of the API, generic
    # routes such as /items/{slug}/{id}/restore included, is documented for everyone).
    items = {path for path in doc["paths"] if path.startswith("/items/") and not path.startswith("/items/{")}
    assert items == {"/items/posts", "/items/posts/{id}", "/items/authors", "/items/authors/{id}"}
    assert set(doc["paths"]["/items/posts"]) == {"get", "post", "patch"}
    assert set(doc["paths"]["/items/authors"]) == {"get"}
    assert "body" not in doc["components"]["schemas"]["Posts"]["properties"]
    assert set(doc["components"]["schemas"]["PostsUpdate"]["properties"]) == {"title", "score"}
    assert "email" not in doc["components"]["schemas"]["Authors"]["properties"]
