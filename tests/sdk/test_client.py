"""The Python client against a real server on each dialect: items with the
query language, batch writes, errors with their codes, login and refresh,
GraphQL, realtime iteration (and a token refreshed mid-stream), 429 back-off,
and the blocking facade. Files, functions and AI: test_client_files.py."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from served import ACCESS_TOKEN_TTL, ServerProcess, call

from workeros.api import Query
from workeros.sdk.client import Workeros, WorkerosError, WorkerosSync, query_params

EMAIL, PASSWORD = "client-admin@example.com", "correct horse 1"


@pytest.fixture(scope="module")
def server(served: ServerProcess) -> ServerProcess:
    """The served instance with an admin, ``authors`` and ``posts``, and an API key."""
    call(served, "POST", "/api/auth/sign-up", {"email": EMAIL, "password": PASSWORD})

    def admin(method: str, path: str, body: Any = None) -> Any:
        # a fresh access token per call: they live ACCESS_TOKEN_TTL seconds here
        token = call(served, "POST", "/api/auth/login", {"email": EMAIL, "password": PASSWORD, "mode": "json"})
        return call(served, method, path, body, token["access_token"])

    admin("POST", "/api/collections", {"collection": "authors", "fields": [{"field": "name", "type": "string"}]})
    admin("POST", "/api/collections", {"collection": "posts", "fields": [
        {"field": "title", "type": "string"}, {"field": "score", "type": "integer"}]})
    admin("POST", "/api/relations", {"collection": "posts", "field": "author", "related_collection": "authors"})
    me = admin("GET", "/api/users/me")
    served.key = admin("POST", "/api/api-keys", {"name": "client", "user": me["id"]})["key"]  # type: ignore[attr-defined]
    return served


def test_query_params_from_the_servers_query_type() -> None:
    params = query_params(Query(fields=("id", "author.name"), filter={"score": {"_gt": 1}}, sort=("-score",),
                                limit=5, meta=frozenset({"filter_count"})))
    assert params == {"fields": "id,author.name", "filter": '{"score": {"_gt": 1}}', "sort": "-score",
                      "limit": "5", "meta": "filter_count"}


async def test_items_queries_and_writes(server: ServerProcess) -> None:
    async with Workeros(server.url, token=server.key) as wos:
        ada = await wos.items("authors").create({"name": "Ada"})
        posts = wos.items("posts")
        created = await posts.create_many([{"title": t, "score": s, "author": ada["id"]}
                                           for t, s in (("a", 1), ("b", 2), ("c", 3))])
        keys = [p["id"] for p in created]
        rows = await posts.read(filter={"score": {"_gte": 2}}, sort=["-score"], fields=["title", "author.name"])
        assert rows == [{"title": "c", "author": {"name": "Ada"}}, {"title": "b", "author": {"name": "Ada"}}]
        rows = await posts.read(Query(filter={"id": {"_in": keys}}, sort=("id",), limit=1, fields=("title",)))
        assert rows == [{"title": "a"}]
        rows, meta = await posts.read_with_meta(filter={"id": {"_in": keys}}, meta="*")
        assert meta["filter_count"] == 3
        assert [r["title"] for r in await posts.search({"filter": {"id": {"_in": keys}}, "sort": ["-id"]})] \
            == ["c", "b", "a"]
        assert (await posts.update(keys[0], {"score": 10}))["score"] == 10
        assert len(await posts.update_many(keys[:2], {"score": 5})) == 2
        await posts.update_batch([{"id": keys[0], "title": "A"}, {"id": keys[1], "title": "B"}])
        assert (await posts.get(keys[1], fields=["title"])) == {"title": "B"}
        groups = await posts.aggregate({"count": "*"}, group_by=["score"], filter={"id": {"_in": keys}})
        assert {g["score"]: int(g["count"]) for g in groups} == {5: 2, 3: 1}
        assert [r["id"] async for r in posts.iterate(page_size=2, filter={"id": {"_in": keys}})] == keys
        await posts.delete(keys[0])
        await posts.delete_many([keys[1]])
        await posts.delete_by_filter({"id": {"_in": keys}})
        assert await posts.read(filter={"id": {"_in": keys}}) == []


async def test_errors_carry_the_envelopes_code(server: ServerProcess) -> None:
    async with Workeros(server.url, token=server.key) as wos:
        with pytest.raises(WorkerosError) as missing:
            await wos.items("posts").get(999999)
        assert (missing.value.status, missing.value.code) == (404, "NOT_FOUND")
        with pytest.raises(WorkerosError) as bad:
            await wos.items("posts").read(filter={"nope": {"_eq": 1}})
        assert bad.value.code == "INVALID_QUERY" and "nope" in bad.value.message
    async with Workeros(server.url) as anonymous:
        with pytest.raises(WorkerosError) as forbidden:
            await anonymous.items("posts").read()
        assert forbidden.value.code == "FORBIDDEN"
    async with Workeros(server.url, token="not-a-token") as wrong:
        with pytest.raises(WorkerosError) as unauthorised:
            await wrong.me()
        assert unauthorised.value.status == 401


async def test_login_refresh_graphql_api_keys_and_logout(server: ServerProcess) -> None:
    async with Workeros(server.url) as wos:
        session = await wos.login(EMAIL, PASSWORD)
        assert (await wos.me(fields=["email"])) == {"email": EMAIL}
        first = session["refresh_token"]
        await asyncio.sleep(ACCESS_TOKEN_TTL + 0.5)  # past the access token's expiry: refreshed before the call
        assert (await wos.me())["email"] == EMAIL
        assert wos.refresh_token != first
        data = await wos.graphql("query ($n: Int) { authors(limit: $n) { name } }", {"n": 1})
        assert data["authors"][0]["name"]
        with pytest.raises(WorkerosError):
            await wos.graphql("{ nope }")
        key = await wos.create_api_key("temporary")
        async with Workeros(server.url, token=key["key"]) as keyed:
            assert (await keyed.me())["email"] == EMAIL
            await wos.revoke_api_key(key["id"])
            await asyncio.sleep(0.1)
        await wos.logout()
        with pytest.raises(WorkerosError) as ended:
            await wos.refresh()
        assert ended.value.code == "INVALID_CREDENTIALS"


async def test_realtime_iteration_with_a_token_refreshed_mid_stream(server: ServerProcess) -> None:
    async with Workeros(server.url) as wos, Workeros(server.url, token=server.key) as writer:
        await wos.login(EMAIL, PASSWORD)
        events = wos.subscribe("posts", query={"fields": ["id", "title"]})
        init = await asyncio.wait_for(events.__anext__(), 10)
        assert init.event == "init"
        await asyncio.sleep(ACCESS_TOKEN_TTL + 1)  # the socket's token expires; the client sends a new one
        row = await writer.items("posts").create({"title": "live"})
        created = await asyncio.wait_for(events.__anext__(), 15)
        assert (created.event, created.data) == ("create", [{"id": row["id"], "title": "live"}])
        await writer.items("posts").delete(row["id"])
        deleted = await asyncio.wait_for(events.__anext__(), 10)
        assert (deleted.event, deleted.data) == ("delete", [row["id"]])
        await events.aclose()


async def test_429_is_retried_after_retry_after(make_server: Any) -> None:
    """Sign-in rate limiting of a real app answers 429 with Retry-After; the
    client waits and sends again."""
    async with make_server(ratelimit__login__per_ip=1, ratelimit__login__window=3,
                           auth__password__argon2_time_cost=1, auth__password__argon2_memory_kib=1024) as app:
        url = str(app.make_url("")).rstrip("/")
        async with Workeros(url) as wos:
            await wos.request("POST", "/api/auth/sign-up", json={"email": EMAIL, "password": PASSWORD}, auth=False)
            for _ in range(5):  # one sign-in per window: the second is limited unless the machine is very slow
                await wos.login(EMAIL, PASSWORD)
                if wos.retried:
                    break
            assert wos.retried >= 1
        async with Workeros(url, retries=0) as impatient:
            with pytest.raises(WorkerosError) as limited:
                for _ in range(5):
                    await impatient.login(EMAIL, PASSWORD)
            assert (limited.value.status, limited.value.code) == (429, "RATE_LIMITED")


def test_the_blocking_facade(server: ServerProcess) -> None:
    with WorkerosSync(server.url, token=server.key) as wos:
        row = wos.items("posts").create({"title": "sync"})
        assert wos.items("posts").get(row["id"])["title"] == "sync"
        assert wos.me()["email"] == EMAIL
        wos.items("posts").delete(row["id"])
