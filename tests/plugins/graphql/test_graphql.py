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






def _engines(api: Any) -> Any:
    from workeros_graphql import ENGINES

    return next(r._app for r in api.server.app.router.resources()
                if getattr(r, "_prefix", "") == "/api/graphql")[ENGINES]


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

    from workeros.http.keys import SERVICES

    api = blog
    graphql_app = next(r._app for r in api.server.app.router.resources() if getattr(r, "_prefix", "") == "/api/graphql")
    from workeros_graphql import ENGINES

    engines = graphql_app[ENGINES]
    await _run(api, "{ tags { id } }")
    await engines.settled()  # the rebuild after the blog's own schema changes
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


# -- a role with a row filter and a field allowlist ------------------------------------------

async def _grant(api: Any, role: str, collection: str, action: str, **rule: Any) -> None:
    r = await api.as_admin().post("/api/permissions", json={"role": role, "collection": collection,
                                                            "action": action, **rule})
    assert r.status in (200, 201), r


@pytest.fixture
async def editor(blog: Any) -> tuple[Any, str]:
    """``editor`` reads published posts without body/rating/meta, authors' names
    (not emails), creates posts (a few fields), updates posts with a score; it
    cannot read tags or delete anything."""
    api = blog
    r = await api.as_admin().post("/api/roles", json={"name": "editor"})
    assert r.status in (200, 201), r
    role = str(r.data["id"])
    await _grant(api, role, "posts", "read", filter={"published": {"_eq": True}},
                 fields=["id", "title", "score", "author", "published", "published_at", "tags"])
    await _grant(api, role, "authors", "read", fields=["id", "name", "posts"])
    await _grant(api, role, "posts", "create", fields=["title", "score", "body", "author", "published"],
                 presets={"published": False})
    await _grant(api, role, "posts", "update", filter={"score": {"_nnull": True}}, fields=["title", "score"])
    return api, role


def _caller(role: str) -> str:
    return f"role:{role}:u1"


async def _introspect(api: Any, caller: str | None) -> Any:
    return build_client_schema(await _run(api, get_introspection_query(), caller=caller))


async def test_role_schema_holds_only_what_it_may_read(editor: tuple[Any, str]) -> None:
    api, role = editor
    schema = await _introspect(api, _caller(role))
    types = schema.type_map
    assert set(schema.query_type.fields) == {"posts", "posts_by_id", "posts_aggregated",
                                             "authors", "authors_by_id", "authors_aggregated"}
    assert not any(name.startswith(("tags", "posts_tags")) for name in types)
    assert set(types["posts"].fields) == {"id", "title", "score", "author", "published", "published_at"}
    assert set(types["authors"].fields) == {"id", "name", "posts"}
    assert set(types["posts_Filter"].fields) == {"_and", "_or", "id", "title", "score", "author", "published",
                                                 "published_at"}
    assert "email" not in types["authors_Filter"].fields
    for fn in ("count", "countDistinct"):
        assert set(types["posts_AggregatedCount"].fields) == {"id", "title", "score", "author", "published",
                                                              "published_at"}, fn
    assert set(types["posts_AggregatedSum"].fields) == {"id", "score", "author"}  # no rating
    # mutations: only what the permissions allow
    assert set(schema.mutation_type.fields) == {"create_posts_item", "create_posts_items",
                                                "update_posts_item", "update_posts_items"}
    assert set(types["posts_CreateInput"].fields) == {"title", "score", "body", "author", "published"}
    assert set(types["posts_UpdateInput"].fields) == {"title", "score"}
    # nothing about the hidden fields anywhere in the schema's text
    from graphql import print_schema

    text = print_schema(schema)
    for hidden in ("rating", "meta", "email", "tags", "label"):
        assert hidden not in text, hidden


LEAKS = [
    "{ posts { body } }",
    "{ posts { rating } }",
    "{ posts { tags { label } } }",
    "{ tags { label } }",
    "{ tags_by_id(id: 1) { id } }",
    "{ posts_tags { id } }",
    "{ posts { author { email } } }",
    '{ posts(filter: {body: {_contains: "first"}}) { id } }',
    '{ posts(filter: {rating: {_gt: "1"}}) { id } }',
    '{ posts(filter: {author: {email: {_null: false}}}) { id } }',
    '{ posts(filter: {tags: {_some: {label: {_eq: "a"}}}}) { id } }',
    '{ authors(filter: {posts: {_some: {body: {_nnull: true}}}}) { id } }',
    '{ posts(sort: ["rating"]) { id } }',
    '{ posts(sort: ["-author.email"]) { id } }',
    '{ posts(sort: ["-body"]) { id } }',
    '{ authors { posts(sort: ["body"]) { id } } }',
    '{ authors { posts(filter: {body: {_nnull: true}}) { id } } }',
    "{ posts_aggregated { sum { rating } } }",
    "{ posts_aggregated { max { body } } }",
    "{ posts_aggregated { countDistinct { meta } } }",
    '{ posts_aggregated(groupBy: ["body"]) { countAll } }',
    '{ posts_aggregated(filter: {rating: {_null: true}}) { countAll } }',
    'mutation { delete_posts_item(id: 1) { id } }',
    'mutation { create_authors_item(data: {name: "x"}) { id } }',
    'mutation { update_posts_item(id: 1, data: {body: "x"}) { id } }',
]


@pytest.mark.parametrize("query", LEAKS)
async def test_hidden_fields_and_collections_are_unusable(editor: tuple[Any, str], query: str) -> None:
    api, role = editor
    async with api.client.post("/api/graphql", json={"query": query}, headers={TEST_CALLER: _caller(role)}) as r:
        body = await r.json()
    assert body.get("data") in (None, {}) or all(v is None for v in body["data"].values()), body
    codes = {e["extensions"]["code"] for e in body["errors"]}
    assert codes <= {"INVALID_QUERY", "FORBIDDEN"}, body
    text = json.dumps(body)
    for internal in ("SELECT", "Traceback", "sqlalchemy", ".py", "/work/"):
        assert internal not in text, body


async def test_role_queries_return_what_rest_returns(editor: tuple[Any, str]) -> None:
    api, role = editor
    rest_api = api.as_role(role, user="u1")
    cases = [
        ("{ posts { id title score published published_at author { id } } }", "/api/items/posts",
         {"fields": "id,title,score,published,published_at,author.id"}),
        ('{ posts(sort: ["-score"], limit: 2) { id title author { name } } }', "/api/items/posts",
         {"sort": "-score", "limit": "2", "fields": "id,title,author.name"}),
        ('{ posts(filter: {score: {_gte: 10}}) { title } }', "/api/items/posts",
         {"filter": json.dumps({"score": {"_gte": 10}}), "fields": "title"}),
        ('{ posts(search: "hello") { id } }', "/api/items/posts", {"search": "hello", "fields": "id"}),
        ('{ authors(sort: ["id"]) { name posts { id title } } }', "/api/items/authors",
         {"sort": "id", "fields": "name,posts.id,posts.title"}),
        ('{ authors(sort: ["id"]) { id posts(sort: ["-id"], limit: 1) { id } } }', "/api/items/authors",
         {"sort": "id", "fields": "id,posts.id", "deep": json.dumps({"posts": {"_sort": "-id", "_limit": 1}})}),
    ]
    for query, path, params in cases:
        data = await _run(api, query, caller=_caller(role))
        rest = await rest_api.get(path, params=params)
        assert rest.status == 200, (path, rest)
        assert next(iter(data.values())) == rest.data, query
    # one row: visible, and hidden by the row filter (null, as REST's 404)
    data = await _run(api, "{ a: posts_by_id(id: 1) { id title } b: posts_by_id(id: 2) { id } }", caller=_caller(role))
    assert data["a"] == (await rest_api.get("/api/items/posts/1", params={"fields": "id,title"})).data
    assert data["b"] is None and (await rest_api.get("/api/items/posts/2")).status == 404
    # aggregates count only visible rows
    data = await _run(api, "{ posts_aggregated { countAll sum { score } } }", caller=_caller(role))
    rest = await rest_api.get("/api/items/posts", params={"aggregate[count]": "*", "aggregate[sum]": "score"})
    assert data["posts_aggregated"] == [{"countAll": rest.data[0]["count"], "sum": rest.data[0]["sum"]}]


async def test_role_mutations_go_through_its_permissions(editor: tuple[Any, str]) -> None:
    api, role = editor
    created = await _run(api, 'mutation { create_posts_item(data: {title: "mine", score: 3}) '
                              '{ id title } }', caller=_caller(role))
    # the preset makes it unpublished, so the role cannot read it back: its key only, as REST returns
    rest = await api.as_role(role, user="u1").post("/api/items/posts", json={"title": "mine2", "score": 3})
    assert set(rest.data) == {"id"}
    assert created["create_posts_item"] == {"id": rest.data["id"] - 1, "title": None}
    stored = await api.as_admin().get("/api/items/posts", params={"filter": json.dumps({"title": {"_eq": "mine"}})})
    assert stored.data[0]["published"] is False
    published = await _run(api, 'mutation { create_posts_item(data: {title: "out", published: true}) { title } }',
                           caller=_caller(role))
    assert published["create_posts_item"] == {"title": "out"}
    with pytest.raises(TransportQueryError) as info:
        await _run(api, 'mutation { update_posts_item(id: 3, data: {title: "x"}) { id } }', caller=_caller(role))
    assert info.value.errors[0]["extensions"]["code"] in ("FORBIDDEN", "NOT_FOUND")
    updated = await _run(api, 'mutation { update_posts_item(id: 1, data: {title: "Hi"}) { id title } }',
                         caller=_caller(role))
    assert updated["update_posts_item"] == {"id": 1, "title": "Hi"}


# -- limits ----------------------------------------------------------------------------------

@pytest.fixture
async def limited(make_server: Any) -> Any:
    """A server with small limits, introspection for the ``auditor`` role only
    (by name) and GraphiQL off."""
    from aiohttp.test_utils import TestClient
    from callers import Api, TestCallers

    overrides = {"graphql__max_depth": 3, "graphql__max_aliases": 2, "graphql__max_cost": 6,
                 "graphql__introspection_roles": ["auditor"], "graphql__graphiql": False}
    async with make_server(TestCallers(), **overrides) as server, TestClient(server) as client:
        api = Api(client)
        api.server = server  # type: ignore[attr-defined]
        from items_setup import create_blog

        await create_blog(api)
        yield api


async def _post(api: Any, query: str, caller: str | None = "admin") -> tuple[int, Any]:
    headers = {TEST_CALLER: caller} if caller else {}
    async with api.client.post("/api/graphql", json={"query": query}, headers=headers) as r:
        return r.status, await r.json()


@pytest.mark.parametrize("query", [
    "{ posts { author { posts { id } } } }",  # depth 4
    "{ posts { ...a } } fragment a on posts { author { posts { id } } }",  # depth 4 through a fragment
    "{ a: tags { id } b: tags { id } c: tags { id } }",  # 3 aliases
    "{ posts { id title score body rating published meta } }",  # 8 fields
    "{ posts { ...f ...f2 } } fragment f on posts { id title score } fragment f2 on posts { body rating meta }",
])
async def test_limits_are_graphql_errors_with_codes(limited: Any, query: str) -> None:
    status, body = await _post(limited, query)
    assert status == 400 and body["errors"][0]["extensions"]["code"] == "INVALID_QUERY", body
    assert "data" not in body
    with pytest.raises(TransportQueryError) as info:
        await _run(limited, query)
    assert info.value.errors[0]["extensions"]["code"] == "INVALID_QUERY"


async def test_limits_let_queries_within_them_run(limited: Any) -> None:
    data = await _run(limited, '{ a: tags(sort: ["id"]) { id } b: posts(limit: 1) { author { name } } }')
    assert data == {"a": [{"id": 1}, {"id": 2}], "b": [{"author": {"name": "Ada"}}]}


async def test_fragment_cycles_are_refused(limited: Any) -> None:
    status, body = await _post(limited, "{ posts { ...a } } fragment a on posts { id ...a }")
    assert status == 400 and body["errors"][0]["extensions"]["code"] == "INVALID_QUERY", body


async def test_introspection_is_switched_per_role(limited: Any) -> None:
    api = limited
    for name in ("auditor", "editor"):
        r = await api.as_admin().post("/api/roles", json={"name": name})
        assert r.status in (200, 201), r
        await _grant(api, str(r.data["id"]), "tags", "read")
        if name == "auditor":
            auditor = str(r.data["id"])
        else:
            editor = str(r.data["id"])
    schema = build_client_schema(await _run(api, get_introspection_query(), caller=_caller(auditor)))
    assert set(schema.query_type.fields) == {"tags", "tags_by_id", "tags_aggregated"}
    for caller in (_caller(editor), None):
        for query in ("{ __schema { queryType { name } } }", '{ __type(name: "tags") { name } }',
                      "{ tags { id ...on tags { __type(name: \"tags\") { name } } } }"):
            status, body = await _post(api, query, caller)
            assert status in (400, 403) and body["errors"][0]["extensions"]["code"] in ("FORBIDDEN", "INVALID_QUERY"), \
                (caller, query, body)
    status, body = await _post(api, "{ __schema { queryType { name } } }", _caller(editor))
    assert status == 403 and body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    # __typename is not introspection
    assert (await _run(api, "{ tags(limit: 1) { __typename id } }", caller=_caller(editor))) == {
        "tags": [{"__typename": "tags", "id": 1}]}


async def test_graphiql_is_off_by_config(limited: Any) -> None:
    async with limited.client.get("/api/graphql", headers={"Accept": "text/html"}) as r:
        assert r.status != 200 or "graphiql" not in (await r.text()).lower()
        assert r.status in (400, 404, 406)


async def test_nested_relations_load_in_one_query_per_level_not_per_row(blog: Any) -> None:
    """authors → posts → tags over many rows: the statements run do not grow with
    the number of rows, only with the levels of the query."""
    import sqlalchemy as sa

    from workeros.http.keys import SERVICES

    api = blog
    engine = api.server.app[SERVICES].db.engine.sync_engine
    selects: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        # The SQLite event bus polls its table on this engine in the background.
        if statement.lstrip().upper().startswith("SELECT") and "wos_bus_" not in statement:
            selects.append(statement)

    query = "{ authors(sort: [\"id\"], limit: -1) { name posts(limit: -1) { title tags { label } } } }"

    async def run_counted() -> tuple[Any, int]:
        selects.clear()
        sa.event.listen(engine, "before_cursor_execute", count)
        try:
            data = await _run(api, query)
        finally:
            sa.event.remove(engine, "before_cursor_execute", count)
        return data, len(selects)

    await _run(api, query)  # the role's schema is built (and cached) outside the count
    await _engines(api).settled()  # and no background rebuild reads during it
    small, few = await run_counted()
    admin = api.as_admin()
    r = await admin.post("/api/items/authors", json=[{"name": f"a{i}"} for i in range(30)])
    assert r.status == 200, r
    authors = [row["id"] for row in r.data]
    r = await admin.post("/api/items/posts", json=[{"title": f"p{i}", "author": authors[i % 30]} for i in range(90)])
    assert r.status == 200, r
    r = await admin.post("/api/items/posts_tags", json=[{"posts_id": row["id"], "tags_id": 1 + i % 2}
                                                        for i, row in enumerate(r.data)])
    assert r.status == 200, r
    large, many = await run_counted()
    assert len(large["authors"]) == len(small["authors"]) + 30
    assert sum(len(a["posts"]) for a in large["authors"]) == sum(len(a["posts"]) for a in small["authors"]) + 90
    assert many == few, (few, many)
    assert few <= 8, selects  # authors, posts, junction+tags (and the reader's own lookups), never per row


async def test_our_sdl_reader_builds_the_schema_tartiflette_s_parser_builds(editor: tuple[Any, str]) -> None:
    """The fast reader of our own SDL (document.py) against tartiflette's parser on
    the same SDL: identical introspection, for the admin's and a role's schema, and
    the built-in directives still work on schemas that share their parsed nodes."""
    from tartiflette import Scalar, create_engine
    from tartiflette.schema.registry import SchemaRegistry
    from workeros_graphql import ENGINES, document
    from workeros_graphql.engines import _JSON, _BigInt

    from workeros.accountability import Accountability

    api, role = editor
    graphql_app = next(r._app for r in api.server.app.router.resources() if getattr(r, "_prefix", "") == "/api/graphql")
    engines = graphql_app[ENGINES]
    query = get_introspection_query(descriptions=True)
    for acc in (Accountability.system(), Accountability(user=None, role=role)):
        fast = await engines._build(acc)
        name = f"reference_{id(fast)}"
        Scalar("JSON", schema_name=name)(_JSON)
        Scalar("BigInt", schema_name=name)(_BigInt)
        reference = await create_engine(fast.built.sdl, schema_name=name)  # not prepared: tartiflette parses it
        try:
            ours, theirs = await fast.engine.execute(query), await reference.execute(query)
            assert "errors" not in ours and ours == theirs
        finally:
            SchemaRegistry._schemas.pop(name, None)
            SchemaRegistry._schemas.pop(fast.name, None)
    skip = await _run(api, "query($no: Boolean!) { tags { id label @skip(if: true) l: label @include(if: $no) } }",
                      {"no": False})
    assert skip["tags"] and all(tag.keys() == {"id"} for tag in skip["tags"])
    # a block outside the reader's shape goes to tartiflette's parser, same result
    enum = "enum Kind {\n  create\n  update\n}"
    assert document.read([enum]) == list(document._parsed(enum))


DIRECT_QUERIES = [
    "{ posts(sort: [\"id\"]) { id title body score rating published published_at meta } }",
    "{ posts(filter: {score: {_gte: 2}}, sort: [\"-score\"], limit: 2) { id t: title author { id name } } }",
    "{ authors(sort: [\"id\"]) { name posts(sort: [\"-id\"], limit: 1) { title tags { label } } } }",
    "{ a: posts_by_id(id: 1) { title } b: posts_by_id(id: 999) { title } tags { id label } }",
    "{ posts(search: \"o\", page: 1, limit: 2) { id } }",
]
NOT_DIRECT_QUERIES = [
    "{ posts { ...f } } fragment f on posts { id }",
    "{ posts { id title @skip(if: true) } }",
    "{ posts { __typename id } }",
    "query($n: Int) { posts(limit: $n) { id } }",
    "{ posts_aggregated { countAll } }",
    "mutation { delete_posts_item(id: 999) { id } }",
]


async def test_plain_queries_shaped_directly_equal_tartiflette_s_results(editor: tuple[Any, str]) -> None:
    """Plain list and by-id queries skip tartiflette's executor (direct.py): for
    the admin and a role with a row filter and a field allowlist, each gives
    exactly what tartiflette gives for the same query; other shapes are left to
    tartiflette."""
    from tartiflette.language.parsers.libgraphqlparser import parse_to_document
    from workeros_graphql import _direct, direct

    from workeros.accountability import Accountability
    from workeros.http.keys import SERVICES

    api, role = editor
    services = api.server.app[SERVICES]
    engines = _engines(api)
    for acc in (Accountability.system(), Accountability(user="u1", role=role)):
        entry = await engines.get(acc)
        context = {"services": services, "acc": acc}
        for query in DIRECT_QUERIES:
            if not acc.admin:  # the role's schema has no tags, body, rating or meta
                query = query.replace(" tags { label }", "").replace(" tags { id label }", "")
                query = query.replace(" body", "").replace(" rating", "").replace(" meta", "")
            document = parse_to_document(query, entry.engine._schema)
            shaped = await _direct(entry, document, query, None, context)
            expected = await entry.engine.execute(query, context=context)
            assert "errors" not in expected, (query, expected)
            assert shaped == expected, query
            assert shaped["data"] and any(shaped["data"].values()), query  # rows, not only nulls
        for query in NOT_DIRECT_QUERIES:
            document = parse_to_document(query, entry.engine._schema)
            assert direct.plan(document, None, entry.engine._schema, entry.built) is None, query
