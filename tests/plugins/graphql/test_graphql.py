"""GraphQL over real HTTP on both dialects, driven by the gql client, checked
against the equivalent REST calls."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from gql import Client, gql
from gql.transport.aiohttp import AIOHTTPTransport
from gql.transport.exceptions import TransportQueryError
from graphql import build_client_schema, get_introspection_query

TEST_CALLER = "X-Workeros-Test-Caller"
# The blog data set the REST items tests use, so both APIs are compared on it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "rest"))






def _client(api: Any, caller: str | None = "admin") -> Client:
    headers = {TEST_CALLER: caller} if caller else {}
    url = str(api.client.make_url("/api/graphql"))
    return Client(transport=AIOHTTPTransport(url=url, headers=headers, ssl=False), fetch_schema_from_transport=False)


async def _run(api: Any, query: str, variables: dict | None = None, caller: str | None = "admin") -> Any:
    async with _client(api, caller) as session:
        return await session.execute(gql(query), variable_values=variables)


@pytest.fixture
async def blog(api: Any) -> Any:
    from items_setup import create_blog

    await create_blog(api)
    return api


async def test_list_matches_rest(blog: Any) -> None:
    api = blog
    data = await _run(api, """{ posts(sort: ["-score"], limit: 3, filter: {published: {_eq: true}})
                                 { id title score rating published_at author { name } } }""")
    rest = await api.as_admin().get("/api/items/posts", params={
        "sort": "-score", "limit": "3", "filter": json.dumps({"published": {"_eq": True}}),
        "fields": "id,title,score,rating,published_at,author.name"})
    assert data["posts"] == rest.data
    assert len(data["posts"]) == 3


async def test_nested_relations_by_id_and_aggregates(blog: Any) -> None:
    api = blog
    data = await _run(api, """{ authors_by_id(id: 1) { name posts(sort: ["title"], limit: 1) { title tags { label } } }
                                 missing: authors_by_id(id: 999) { name }
                                 posts_aggregated(groupBy: ["published"]) { group countAll sum { score } max { score } } }""")
    rest = await api.as_admin().get("/api/items/authors/1", params={
        "fields": "name,posts.title,posts.tags.label", "deep": json.dumps({"posts": {"_sort": "title", "_limit": 1}})})
    assert data["authors_by_id"]["name"] == "Ada"
    assert data["authors_by_id"]["posts"] == [{"title": "Hello", "tags": [{"label": "a"}, {"label": "b"}]}]
    assert data["missing"] is None
    groups = {g["group"]["published"]: g for g in data["posts_aggregated"]}
    assert groups[True]["countAll"] == 3 and groups[True]["sum"]["score"] == 30
    assert groups[False]["max"]["score"] == 5
    assert rest.status == 200


async def test_mutations(blog: Any) -> None:
    api = blog
    created = await _run(api, """mutation { create_authors_item(data: {name: "Dora", email: "d@example.com"}) { id name } }""")
    key = created["create_authors_item"]["id"]
    updated = await _run(api, "mutation($id: ID!) { update_authors_item(id: $id, data: {name: \"Dot\"}) { name } }",
                         {"id": key})
    assert updated["update_authors_item"] == {"name": "Dot"}
    many = await _run(api, """mutation { create_tags_items(data: [{label: "x"}, {label: "y"}]) { label } }""")
    assert [t["label"] for t in many["create_tags_items"]] == ["x", "y"]
    deleted = await _run(api, "mutation($id: ID!) { delete_authors_item(id: $id) { id } }", {"id": key})
    assert deleted["delete_authors_item"]["id"] == str(key)
    assert (await api.as_admin().get(f"/api/items/authors/{key}")).status == 404


async def test_errors_carry_codes_and_no_internals(blog: Any) -> None:
    api = blog
    with pytest.raises(TransportQueryError) as info:
        await _run(api, """mutation { create_authors_item(data: {email: "x@example.com"}) { id } }""")
    error = info.value.errors[0]
    assert error["extensions"]["code"] == "INVALID_PAYLOAD" and "name" in error["message"]
    with pytest.raises(TransportQueryError) as info:
        await _run(api, "{ posts { nope } }")
    assert info.value.errors[0]["extensions"]["code"] == "INVALID_QUERY"
    with pytest.raises(TransportQueryError) as info:
        await _run(api, '{ posts(filter: {title: {_regex: "x"}}) { id } }')
    assert info.value.errors[0]["extensions"]["code"] == "INVALID_QUERY"
    deep = "{ posts { author { posts { author { posts { author { posts { author { posts { author { posts { id } } } } } } } } } } } }"
    async with api.client.post("/api/graphql", json={"query": deep}, headers={TEST_CALLER: "admin"}) as r:
        body = await r.json()
        assert r.status == 400 and body["errors"][0]["extensions"]["code"] == "INVALID_QUERY"
    aliases = "{ " + " ".join(f"a{i}: posts {{ id }}" for i in range(40)) + " }"
    async with api.client.post("/api/graphql", json={"query": aliases}, headers={TEST_CALLER: "admin"}) as r:
        assert r.status == 400
    async with api.client.post("/api/graphql", data=b"{not json", headers={
            TEST_CALLER: "admin", "Content-Type": "application/json"}) as r:
        assert r.status == 400
    async with api.client.get("/api/graphql", params={"query": "mutation { delete_tags_item(id: 1) { id } }"},
                              headers={TEST_CALLER: "admin"}) as r:
        assert r.status == 405
    async with api.client.get("/api/graphql", params={"query": "{ tags { label } }"},
                              headers={TEST_CALLER: "admin"}) as r:
        assert r.status == 200 and (await r.json())["data"]["tags"][0]["label"] == "a"
    async with api.client.get("/api/graphql", headers={"Accept": "text/html"}) as r:
        assert r.status == 200 and "graphiql" in (await r.text()).lower()


async def test_introspection_builds_a_client_schema(blog: Any) -> None:
    api = blog
    result = await _run(api, get_introspection_query())
    schema = build_client_schema(result)
    assert {"posts", "posts_by_id", "posts_aggregated", "authors", "tags"} <= set(schema.query_type.fields)
    assert "create_posts_item" in schema.mutation_type.fields
    anonymous = build_client_schema(await _run(api, get_introspection_query(), caller=None))
    assert set(anonymous.query_type.fields) == {"_empty"}  # public may read nothing
    assert anonymous.mutation_type is None


async def test_schema_changes_rebuild_once_and_concurrent_requests_share_a_build(blog: Any) -> None:
    import asyncio

    from workeros.keys import SERVICES

    api = blog
    graphql_app = next(r._app for r in api.server.app.router.resources() if getattr(r, "_prefix", "") == "/api/graphql")
    from workeros_graphql import ENGINES

    engines = graphql_app[ENGINES]
    await _run(api, "{ tags { id } }")
    before = engines.builds
    r = await api.as_admin().post("/api/collections", json={"collection": "extra", "fields": [
        {"field": "x", "type": "string"}]})
    assert r.status == 201
    await asyncio.sleep(0.2)  # the background rebuild for admin and public
    results = await asyncio.gather(*(_run(api, "{ extra { x } }") for _ in range(10)))
    assert all(res == {"extra": []} for res in results)
    assert engines.builds - before <= 2  # admin and public, once each
    assert len(engines.cache) <= engines.size
    assert api.server.app[SERVICES].schema.current().version == next(iter(engines.cache))[0]
