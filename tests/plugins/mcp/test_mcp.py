"""The MCP server driven by the ``mcp`` SDK's own client over streamable HTTP
against a real server on loopback, on both dialects: the catalog and its
annotations, results equal to REST for two roles, the per-key guards
(read-only and allowlist) refusing and recording, refused writes writing
nothing, ``/api/admin/mcp`` for admins only."""

from __future__ import annotations

from typing import Any

import pytest
from mcp.shared.exceptions import MCPError

CORE = {
    "schema_list": True, "schema_get_collection": True, "schema_create_collection": False,
    "schema_update_collection": False, "schema_delete_collection": False,
    "collections_list": True, "collections_get": True, "collections_aggregate": True,
    "collections_create": False, "collections_update": False, "collections_bulk_update": False,
    "collections_delete": False,
    "permissions_list_roles": True, "permissions_create_role": False, "permissions_update_role": False,
    "permissions_delete_role": False, "permissions_list": True, "permissions_set": False,
    "permissions_delete": False,
    "api_keys_list": True, "api_keys_create": False, "api_keys_revoke": False,
}
DESTRUCTIVE = {"schema_delete_collection", "collections_delete", "permissions_delete_role", "permissions_delete",
               "api_keys_revoke"}
POSTS = [{"title": "one", "score": 5, "status": "published"}, {"title": "two", "score": 7, "status": "draft"},
         {"title": "three", "score": 9, "status": "published"}]


async def setup(api: Any, sign_up: Any, password: str) -> tuple[Any, Any]:
    """Ada (admin) and Bob (role ``reader``: published posts, title and score
    only), both signed in for real; a ``posts`` collection with three items."""
    await sign_up("ada@example.com")
    bob = await sign_up("bob@example.com")
    admin = await api.sign_in("ada@example.com", password)
    r = await admin.post("/api/collections", json={"collection": "posts", "fields": [
        {"field": "title", "type": "string"}, {"field": "score", "type": "integer"},
        {"field": "status", "type": "string"}]})
    assert r.status == 201, r
    r = await admin.post("/api/collections", json={"collection": "secrets", "fields": [
        {"field": "value", "type": "string"}]})
    assert r.status == 201, r
    assert (await admin.post("/api/items/posts", json=POSTS)).status == 200
    assert (await admin.post("/api/roles", json={"id": "reader", "name": "Reader"})).status == 201
    r = await admin.post("/api/permissions", json={"role": "reader", "collection": "posts", "action": "read",
                                                   "fields": ["id", "title", "score"],
                                                   "filter": {"status": {"_eq": "published"}}})
    assert r.status == 201, r
    assert (await admin.patch(f"/api/users/{bob['id']}", json={"role": "reader"})).status == 200
    return admin, await api.sign_in("bob@example.com", password)


def data(result: Any) -> Any:
    assert not result.is_error, result
    return result.structured_content["data"]


def error_code(result: Any) -> str:
    assert result.is_error, result
    return result.structured_content["errors"][0]["extensions"]["code"]


async def test_catalog_and_annotations(api, sign_up, password, mcp_client) -> None:
    admin, _ = await setup(api, sign_up, password)
    async with mcp_client(admin.token) as session:
        tools = {t.name: t for t in (await session.list_tools()).tools}
    assert set(CORE) <= set(tools)
    # Other plugins' tools are in the same catalog (flows and vectors register theirs).
    assert {"flows_list", "vector_search"} <= set(tools)
    for name, read_only in CORE.items():
        a = tools[name].annotations
        assert a.read_only_hint is read_only, name
        assert a.destructive_hint is (name in DESTRUCTIVE), name
        assert tools[name].input_schema["type"] == "object"
    listed = await admin.get("/api/mcp/tools")
    assert listed.status == 200 and {t["name"] for t in listed.data} == set(tools)
    assert all(t["listed"] and t["callable"] for t in listed.data)


@pytest.mark.parametrize("who", ["admin", "reader"])
async def test_results_equal_rest(api, sign_up, password, mcp_client, who) -> None:
    admin, bob = await setup(api, sign_up, password)
    caller = admin if who == "admin" else bob
    async with mcp_client(caller.token) as session:
        for args, params in (({}, {}), ({"sort": ["-score"], "limit": 2}, {"sort": "-score", "limit": "2"}),
                             ({"filter": {"score": {"_gt": 5}}, "fields": ["title"]},
                              {"filter": '{"score":{"_gt":5}}', "fields": "title"})):
            rest = await caller.get("/api/items/posts", params=params)
            assert rest.status == 200
            assert data(await session.call_tool("collections_list", {"collection": "posts", **args})) == rest.data
        got = data(await session.call_tool("collections_get", {"collection": "posts", "key": 3}))
        assert got == (await caller.get("/api/items/posts/3")).data
        agg = data(await session.call_tool("collections_aggregate", {"collection": "posts",
                                                                     "aggregate": {"sum": ["score"]}}))
        assert agg == (await caller.get("/api/items/posts", params={"aggregate[sum]": "score"})).data
        schema = data(await session.call_tool("schema_list", {}))
        assert schema == (await caller.get("/api/collections")).data
        secret = await session.call_tool("collections_list", {"collection": "secrets"})
        rest_secret = await caller.get("/api/items/secrets")
        if who == "admin":
            assert data(secret) == rest_secret.data == []
        else:
            assert (error_code(secret), rest_secret.code) == ("FORBIDDEN", "FORBIDDEN")
            assert error_code(await session.call_tool("permissions_list", {})) == "FORBIDDEN"
        # The schema resources: only what the caller may use.
        uris = {str(r.uri) for r in (await session.list_resources()).resources}
        assert "workeros://schema/posts" in uris
        assert ("workeros://schema/secrets" in uris) is (who == "admin")
        if who == "reader":
            with pytest.raises(MCPError):
                await session.read_resource("workeros://schema/secrets")
            posts = (await session.read_resource("workeros://schema/posts")).contents[0].text
            assert '"title"' in posts and '"status"' not in posts
    if who == "reader":
        assert len(rest.data) == 1  # the row filter applied on both ways in


async def test_writes_and_validation(api, sign_up, password, mcp_client) -> None:
    admin, bob = await setup(api, sign_up, password)
    async with mcp_client(admin.token) as session:
        created = data(await session.call_tool("collections_create", {"collection": "posts",
                                                                      "data": {"title": "four", "score": 1}}))
        assert created["title"] == "four"
        updated = data(await session.call_tool("collections_update", {"collection": "posts", "key": created["id"],
                                                                      "data": {"score": 2}}))
        assert updated["score"] == 2
        bulk = await session.call_tool("collections_bulk_update", {"collection": "posts",
                                                                   "filter": {"title": {"_eq": "four"}},
                                                                   "data": {"status": "draft"}})
        assert not bulk.is_error, bulk
        await session.call_tool("collections_delete", {"collection": "posts", "keys": [created["id"]]})
        assert (await admin.get(f"/api/items/posts/{created['id']}")).status == 404
        bad = await session.call_tool("collections_list", {"collection": "posts", "limit": "x"})
        assert error_code(bad) == "INVALID_PAYLOAD" and "limit" in bad.structured_content["errors"][0]["message"]
        assert error_code(await session.call_tool("collections_list", {"collection": "posts",
                                                                       "filter": {"nope": {"_eq": 1}}})) \
            in ("INVALID_QUERY", "FORBIDDEN")
        assert error_code(await session.call_tool("collections_get", {"collection": "posts", "key": 999})) \
            == "NOT_FOUND"
        with pytest.raises(MCPError):
            await session.call_tool("no_such_tool", {})
        role = data(await session.call_tool("permissions_set", {"role": "reader", "collection": "posts",
                                                                "action": "read", "fields": ["id", "title"]}))
        assert role["fields"] == ["id", "title"]
        key = data(await session.call_tool("api_keys_create", {"name": "agent"}))
        assert key["key"].startswith("pak_")
        assert key["id"] in [k["id"] for k in data(await session.call_tool("api_keys_list", {}))]
    # The reader's writes are refused by the permissions, exactly as over REST.
    async with mcp_client(bob.token) as session:
        assert error_code(await session.call_tool("collections_create", {"collection": "posts",
                                                                         "data": {"title": "x"}})) == "FORBIDDEN"
    assert (await bob.post("/api/items/posts", json={"title": "x"})).code == "FORBIDDEN"
    assert len((await admin.get("/api/items/posts")).data) == 3


async def activity_of(admin: Any, action: str) -> list[dict[str, Any]]:
    r = await admin.get("/api/activity", params={"filter": f'{{"action":{{"_eq":"{action}"}}}}', "limit": "50"})
    assert r.status == 200, r
    return r.data


async def test_read_only_key(api, sign_up, password, mcp_client) -> None:
    admin, _ = await setup(api, sign_up, password)
    key = (await admin.post("/api/api-keys", json={"name": "ro", "mcp_read_only": True})).data
    async with mcp_client(key["key"]) as session:
        names = {t.name for t in (await session.list_tools()).tools}
        assert set(CORE) <= names  # listed, but the writing ones are refused
        assert len(data(await session.call_tool("collections_list", {"collection": "posts"}))) == 3
        for name, args in (("collections_create", {"collection": "posts", "data": {"title": "x"}}),
                           ("collections_delete", {"collection": "posts", "keys": [1]}),
                           ("schema_delete_collection", {"collection": "posts"}),
                           ("api_keys_create", {"name": "more"})):
            result = await session.call_tool(name, args)
            assert error_code(result) == "FORBIDDEN", name
            assert "mcp_read_only" in result.structured_content["errors"][0]["message"]
    assert len((await admin.get("/api/items/posts")).data) == 3  # nothing written
    assert "posts" in [c["collection"] for c in (await admin.get("/api/collections")).data]
    assert [k["name"] for k in (await admin.get("/api/api-keys")).data] == ["ro"]
    blocked = await activity_of(admin, "mcp.blocked")
    assert sorted(b["meta"]["tool"] for b in blocked) == sorted(
        ["collections_create", "collections_delete", "schema_delete_collection", "api_keys_create"])
    assert all(b["meta"]["guard"] == "mcp_read_only" and b["origin"] == "mcp" for b in blocked)
    view = {t["name"]: t for t in (await api.with_token(key["key"]).get("/api/mcp/tools")).data}
    assert view["collections_list"]["callable"] and not view["collections_create"]["callable"]
    assert view["collections_create"]["listed"] and view["collections_create"]["refused_by"] == "mcp_read_only"


async def test_allowlist_key(api, sign_up, password, mcp_client) -> None:
    admin, _ = await setup(api, sign_up, password)
    key = (await admin.post("/api/api-keys", json={"name": "list", "mcp_tools": ["collections_list",
                                                                                 "collections_create"]})).data
    async with mcp_client(key["key"]) as session:
        assert sorted(t.name for t in (await session.list_tools()).tools) == ["collections_create",
                                                                             "collections_list"]
        assert len(data(await session.call_tool("collections_list", {"collection": "posts"}))) == 3
        for name, args in (("schema_delete_collection", {"collection": "posts"}),
                           ("collections_delete", {"collection": "posts", "keys": [1, 2, 3]})):
            result = await session.call_tool(name, args)
            assert error_code(result) == "FORBIDDEN" and "mcp_tools" in result.structured_content["errors"][0][
                "message"]
    assert len((await admin.get("/api/items/posts")).data) == 3
    blocked = await activity_of(admin, "mcp.blocked")
    assert sorted((b["meta"]["tool"], b["meta"]["guard"]) for b in blocked) == [
        ("collections_delete", "mcp_tools"), ("schema_delete_collection", "mcp_tools")]
    # The admin app's view of that key.
    view = {t["name"]: t for t in (await admin.get("/api/mcp/tools", params={"key": key["id"]})).data}
    assert view["collections_list"]["listed"] and not view["schema_list"]["listed"]
    assert view["schema_list"]["refused_by"] == "mcp_tools"


async def test_admin_endpoint_and_credentials(api, sign_up, password, mcp_client) -> None:
    admin, bob = await setup(api, sign_up, password)
    async with mcp_client(admin.token, "/api/admin/mcp") as session:
        assert "schema_create_collection" in {t.name for t in (await session.list_tools()).tools}
    with pytest.raises(BaseException) as refused:  # the SDK raises on the 403 during initialize
        async with mcp_client(bob.token, "/api/admin/mcp"):
            pass
    assert refused.value is not None
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "t", "version": "1"}}}
    r = await bob.post("/api/admin/mcp", json=init)
    assert (r.status, r.code) == (403, "FORBIDDEN")
    r = await api.anonymous().post("/mcp", json=init)
    assert (r.status, r.code) == (401, "INVALID_CREDENTIALS")
    r = await bob.post("/mcp", json=init)
    assert r.status == 200 and r.json["result"]["protocolVersion"] == "2025-06-18"
    r = await bob.post("/mcp", json={**init, "params": {**init["params"], "protocolVersion": "1999-01-01"}})
    assert r.json["result"]["protocolVersion"] == "2025-11-25"
    r = await bob.post("/mcp", json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
                       headers={"MCP-Protocol-Version": "bogus"})
    assert (r.status, r.code) == (400, "INVALID_PAYLOAD")
    r = await bob.post("/mcp", data=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status == 400 and r.json["error"]["code"] == -32700
    assert (await bob.get("/mcp")).status == 405


async def test_graphql_query_tool(api, sign_up, password, mcp_client) -> None:
    admin, bob = await setup(api, sign_up, password)
    query = "{ posts(sort: [\"id\"]) { id title } }"
    for caller in (admin, bob):
        rest = await caller.post("/api/graphql", json={"query": query})
        assert len(rest.json["data"]["posts"]) == (3 if caller is admin else 2)
        async with mcp_client(caller.token) as session:
            assert data(await session.call_tool("graphql_query", {"query": query})) == rest.json
            mutation = await session.call_tool("graphql_query", {"query": 'mutation { create_posts_item(data: '
                                                                          '{title: "x"}) { id } }'})
            assert error_code(mutation) == "INVALID_QUERY"
            if caller is admin:
                assert "queries only" in mutation.structured_content["errors"][0]["message"]
    assert len((await admin.get("/api/items/posts")).data) == 3


async def test_stdio_bridge(api, sign_up, password) -> None:
    """``workeros mcp --url --key`` as a real subprocess, driven by the SDK's
    stdio client: the catalog, a read, and the key's guards over stdio."""
    import os
    import sys

    from mcp.client.session import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    admin, _ = await setup(api, sign_up, password)
    key = (await admin.post("/api/api-keys", json={"name": "desk", "mcp_read_only": True,
                                                   "mcp_tools": ["collections_list", "collections_create"]})).data
    params = StdioServerParameters(command=sys.executable, args=[
        "-m", "workeros", "mcp", "--url", str(api.server.make_url("/mcp")), "--key", key["key"]],
        env=dict(os.environ))
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        assert sorted(t.name for t in (await session.list_tools()).tools) == ["collections_create",
                                                                             "collections_list"]
        assert len(data(await session.call_tool("collections_list", {"collection": "posts"}))) == 3
        assert error_code(await session.call_tool("collections_create", {"collection": "posts",
                                                                         "data": {"title": "x"}})) == "FORBIDDEN"
        assert error_code(await session.call_tool("schema_list", {})) == "FORBIDDEN"
    assert len((await admin.get("/api/items/posts")).data) == 3
    assert len(await activity_of(admin, "mcp.blocked")) == 2
