"""The AI plugin against a fake Anthropic Messages API on loopback (a real
HTTP server speaking the API with tool use), on both dialects: the model is
sent only what the caller may read; plans outside it are refused and never
run; ``run`` answers what REST answers the same caller; upstream failures are
502 and a missing key 503; schema proposals create nothing; CSV imports map,
show, then import with progress; the MCP tools call the same code."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.plugins.ai.conftest import API_KEY, Status, Text

POSTS = [{"title": "one", "score": 5, "status": "published", "internal_memo": "m1"},
         {"title": "two", "score": 7, "status": "draft", "internal_memo": "m2"},
         {"title": "three", "score": 9, "status": "published", "internal_memo": "m3"},
         {"title": "four", "score": 11, "status": "published", "internal_memo": "m4"}]
#: Names the reader may not read: none may appear anywhere in what the model is sent.
HIDDEN = ("salaries", "amount_paid", "status", "internal_memo")
READER = "role:reader:r1"


async def setup(api: Any) -> tuple[Any, Any]:
    """An admin and a ``reader`` (published posts; id, title and score only;
    nothing of ``salaries``)."""
    admin = api.as_admin()
    r = await admin.post("/api/collections", json={"collection": "posts", "fields": [
        {"field": "title", "type": "string"}, {"field": "score", "type": "integer"},
        {"field": "status", "type": "string"}, {"field": "internal_memo", "type": "text"}]})
    assert r.status == 201, r
    r = await admin.post("/api/collections", json={"collection": "salaries", "fields": [
        {"field": "amount_paid", "type": "integer"}]})
    assert r.status == 201, r
    assert (await admin.post("/api/items/posts", json=POSTS)).status == 200
    assert (await admin.post("/api/items/salaries", json=[{"amount_paid": 10}])).status == 200
    assert (await admin.post("/api/roles", json={"id": "reader", "name": "Reader"})).status == 201
    r = await admin.post("/api/permissions", json={"role": "reader", "collection": "posts", "action": "read",
                                                   "fields": ["id", "title", "score"],
                                                   "filter": {"status": {"_eq": "published"}}})
    assert r.status == 201, r
    return admin, api.as_role("reader", user="r1")


class QuerySpy:
    """Counts the items service's queries (a plan that is refused must never
    reach it)."""

    def __init__(self, api: Any) -> None:
        from workeros.api import SERVICES

        self.items = api.server.app[SERVICES].items
        self.calls: list[str] = []
        original = self.items.query

        async def query(acc: Any, collection: str, query: Any = None) -> Any:
            self.calls.append(collection)
            return await original(acc, collection, query)

        self.items.query = query


def plan(**kw: Any) -> dict[str, Any]:
    return {"plan": kw, "explanation": "what was asked"}


async def activity(admin: Any, action: str) -> list[dict[str, Any]]:
    r = await admin.get("/api/activity", params={"filter": json.dumps({"action": {"_eq": action}}), "limit": "50"})
    assert r.status == 200, r
    return r.data


async def test_model_is_sent_only_what_the_caller_may_read(api, fake_anthropic) -> None:
    admin, reader = await setup(api)
    fake_anthropic.answer(plan(collection="posts", filter={"score": {"_gt": 5}}, sort=["-score"], fields=["title"]))
    r = await reader.post("/api/ai/query", json={"prompt": "Which posts score above five?"})
    assert r.status == 200, r
    assert r.data["plan"] == {"collection": "posts", "filter": {"score": {"_gt": 5}}, "sort": ["-score"],
                              "limit": 100, "fields": ["title"]}
    assert r.data["read_only"] is True and "rows" not in r.data
    assert r.data["model"] == "claude-haiku-4-5" and r.data["usage"]["output_tokens"] == 42
    (sent,) = fake_anthropic.requests
    headers = sent["headers"]
    assert headers.get("x-api-key") == API_KEY or headers.get("authorization") == f"Bearer {API_KEY}"
    for name in HIDDEN:
        assert name not in sent["raw"], name  # not even the names
    body = sent["body"]
    assert body["model"] == "claude-haiku-4-5"
    assert body["tool_choice"] == {"type": "tool", "name": "query_plan"}
    (tool,) = body["tools"]
    variant = tool["input_schema"]["properties"]["plan"]
    assert variant["properties"]["collection"] == {"const": "posts"}
    assert variant["properties"]["fields"]["items"]["enum"] == ["id", "title", "score"]
    assert set(tool["input_schema"]["$defs"]["filter_posts"]["properties"]) == {"id", "title", "score", "_and", "_or"}
    assert body["messages"] == [{"role": "user", "content": "Which posts score above five?"}]
    # The admin's request offers everything (the contrast shows the test can fail).
    fake_anthropic.reset()
    fake_anthropic.answer(plan(collection="salaries"))
    assert (await admin.post("/api/ai/query", json={"prompt": "pay"})).status == 200
    assert all(name in fake_anthropic.requests[0]["raw"] for name in HIDDEN)
    # Token usage is recorded in activity, with the model.
    rows = await activity(admin, "ai.query")
    assert len(rows) == 2 and {row["meta"]["usage"]["output_tokens"] for row in rows} == {42}
    assert {row["collection"] for row in rows} == {"posts", "salaries"}


@pytest.mark.parametrize("who", ["admin", "reader"])
async def test_run_equals_rest(api, fake_anthropic, who) -> None:
    admin, reader = await setup(api)
    caller = admin if who == "admin" else reader
    spy = QuerySpy(api)
    cases = [
        (plan(collection="posts", filter={"score": {"_gte": 7}}, sort=["-score"], limit=2, fields=["id", "title"]),
         {"filter": '{"score":{"_gte":7}}', "sort": "-score", "limit": "2", "fields": "id,title"}),
        (plan(collection="posts", filter={"_or": [{"title": {"_icontains": "O"}}, {"score": {"_lt": 6}}]},
              sort=["title"]),
         {"filter": '{"_or":[{"title":{"_icontains":"O"}},{"score":{"_lt":6}}]}', "sort": "title",
          "fields": "id,title,score" if who == "reader" else "*"}),
        (plan(collection="posts", aggregate={"count": ["*"], "sum": ["score"]}),
         {"aggregate[count]": "*", "aggregate[sum]": "score"}),
    ]
    for answer, params in cases:
        fake_anthropic.answer(answer)
        before = len(spy.calls)
        r = await caller.post("/api/ai/query", json={"prompt": "posts please", "run": True})
        assert r.status == 200, r
        assert spy.calls[before:] == ["posts"]  # run through the items service, as the caller
        rest = await caller.get("/api/items/posts", params=params)
        assert rest.status == 200, rest
        assert r.data["rows"] == rest.data
        assert rest.data  # something to compare
    if who == "reader":
        assert all(set(row) <= {"id", "title", "score"} for row in r.data["rows"] if "count" not in row)


@pytest.mark.parametrize("answer,code", [
    (plan(collection="posts", fields=["title", "status"]), "FORBIDDEN"),              # unreadable field
    (plan(collection="posts", filter={"internal_memo": {"_eq": "m1"}}), "FORBIDDEN"),  # in the filter
    (plan(collection="posts", sort=["-status"]), "FORBIDDEN"),                         # in the sort
    (plan(collection="posts", aggregate={"sum": ["status"]}), "FORBIDDEN"),            # in an aggregate
    (plan(collection="salaries"), "FORBIDDEN"),                                        # unreadable collection
    (plan(collection="no_such_thing"), "FORBIDDEN"),                                   # unknown collection
    (plan(collection="posts", filter={"score": {"_regex": "1"}}), "INVALID_QUERY"),    # not the filter language
    (plan(collection="posts", filter={"title": {"_eq": "$user.nope"}}), "INVALID_QUERY"),  # the parser's check
    (plan(collection="posts", limit=0), "INVALID_QUERY"),
    ({"explanation": "no plan"}, "INVALID_QUERY"),
])
async def test_refused_plans_are_never_run(api, fake_anthropic, answer, code) -> None:
    admin, reader = await setup(api)
    spy = QuerySpy(api)
    fake_anthropic.answer(answer)
    r = await reader.post("/api/ai/query", json={"prompt": "show me everything", "run": True})
    assert (r.status, r.code) == (403 if code == "FORBIDDEN" else 400, code), r
    assert r.data is None and spy.calls == []
    refused = await activity(admin, "ai.query")
    assert len(refused) == 1 and refused[0]["meta"]["refused"] and refused[0]["meta"]["usage"]["input_tokens"] > 0


async def test_collection_argument_and_nothing_readable(api, fake_anthropic) -> None:
    admin, reader = await setup(api)
    # Naming a collection the caller may not read is 403 whether or not it exists; the model is not asked.
    for name in ("salaries", "no_such_thing"):
        r = await reader.post("/api/ai/query", json={"prompt": "x", "collection": name})
        assert r.code == "FORBIDDEN", r
    assert (await api.as_role("nobody").post("/api/ai/query", json={"prompt": "x"})).code == "FORBIDDEN"
    assert fake_anthropic.requests == []
    for body in ({}, {"prompt": ""}, {"prompt": "x", "run": "yes"}, {"prompt": 3}):
        assert (await reader.post("/api/ai/query", json=body)).code == "INVALID_PAYLOAD", body
    fake_anthropic.answer(plan(collection="posts", fields=["title"]))
    r = await admin.post("/api/ai/query", json={"prompt": "titles", "collection": "posts", "run": True})
    assert r.status == 200 and len(r.data["rows"]) == 4
    assert list(fake_anthropic.requests[0]["body"]["tools"][0]["input_schema"]["$defs"]) == ["filter_posts"]


async def test_upstream_failure_is_502(api, fake_anthropic) -> None:
    admin, _ = await setup(api)
    spy = QuerySpy(api)
    for failure in (Status(500), Status(529, "overloaded_error", "Overloaded"), Status(401, "authentication_error"),
                    Text("I would rather chat")):
        fake_anthropic.answer(failure)
        r = await admin.post("/api/ai/query", json={"prompt": "posts", "run": True})
        assert (r.status, r.code) == (502, "BAD_GATEWAY"), r
        message = r.json["errors"][0]["message"]
        assert "Traceback" not in message and "127.0.0.1" not in message and API_KEY not in r.raw.decode()
    assert spy.calls == []
    assert len(fake_anthropic.requests) == 4  # ai.max_retries = 0 here


async def test_missing_key_is_503(api, fake_anthropic, make_server) -> None:
    from aiohttp.test_utils import TestClient

    from tests.callers import Api, TestCallers

    async with make_server(TestCallers(), ai__api_key="") as server, TestClient(server) as client:
        admin = Api(client).as_admin()
        for path, body in (("/api/ai/query", {"prompt": "x"}), ("/api/ai/suggest-schema", {"prompt": "x"}),
                           ("/api/ai/import-csv", {"collection": "x", "csv": "a\n1"})):
            r = await admin.post(path, json=body)
            assert (r.status, r.code) == (503, "SERVICE_UNAVAILABLE"), (path, r)
            assert "ai.api_key" in r.json["errors"][0]["message"]
    assert fake_anthropic.requests == []


async def test_suggest_schema_creates_nothing(api, fake_anthropic) -> None:
    admin, reader = await setup(api)
    proposal = {"collection": "books", "note": "A reading list", "explanation": "books with authors",
                "fields": [{"field": "title", "type": "string", "nullable": False},
                           {"field": "pages", "type": "integer"}, {"field": "read_on", "type": "date"}]}
    fake_anthropic.answer(proposal)
    r = await admin.post("/api/ai/suggest-schema", json={"prompt": "A list of books I read"})
    assert r.status == 200, r
    body = r.data["collection"]
    assert body == {"collection": "books", "note": "A reading list", "fields": proposal["fields"]}
    assert r.data["exists"] is False and r.data["apply"]["path"] == "/api/collections"
    sent = fake_anthropic.requests[0]["raw"]
    assert "posts" in sent and "salaries" in sent  # existing names, so none is proposed twice
    assert (await admin.get("/api/collections/books")).status == 404  # nothing created
    created = await admin.post("/api/collections", json=body)  # applying is a separate call
    assert created.status == 201, created
    assert [f["field"] for f in created.data["fields"]] == ["id", "title", "pages", "read_on"]
    # A bad proposal is refused; non-admins are not proposed anything.
    fake_anthropic.answer({**proposal, "collection": "Bad Name"})
    assert (await admin.post("/api/ai/suggest-schema", json={"prompt": "x"})).code == "INVALID_QUERY"
    assert (await reader.post("/api/ai/suggest-schema", json={"prompt": "x"})).code == "FORBIDDEN"
    assert len(await activity(admin, "ai.suggest_schema")) == 2


CSV = "Headline,Points,Comment\nalpha,1,x\nbeta,2,y\ngamma,3,\n"


async def test_import_csv_maps_shows_and_imports(api, fake_anthropic) -> None:
    admin, _ = await setup(api)
    assert (await admin.post("/api/roles", json={"id": "writer", "name": "Writer"})).status == 201
    r = await admin.post("/api/permissions", json={"role": "writer", "collection": "posts", "action": "create",
                                                   "fields": ["title", "score"]})
    assert r.status == 201, r
    writer = api.as_role("writer", user="w1")
    fake_anthropic.answer({"mapping": {"Headline": "title", "Points": "score", "Comment": None},
                           "explanation": "Headline is the title"})
    r = await writer.post("/api/ai/import-csv", json={"collection": "posts", "csv": CSV})
    assert r.status == 200, r
    assert r.data["mapping"] == {"Headline": "title", "Points": "score", "Comment": None}
    assert r.data["rows"] == 3 and r.data["preview"][0] == {"title": "alpha", "score": "1"}
    assert "imported" not in r.data
    sent = fake_anthropic.requests[0]
    enum = sent["body"]["tools"][0]["input_schema"]["properties"]["mapping"]["properties"]["Headline"]["enum"]
    assert enum == ["title", "score", None]  # only what the writer may create
    assert "internal_memo" not in sent["raw"] and "salaries" not in sent["raw"]
    assert len((await admin.get("/api/items/posts")).data) == 4  # shown, not imported
    # A mapping onto a field the caller may not create is refused, and writes nothing.
    bad = await writer.post("/api/ai/import-csv", json={"collection": "posts", "csv": CSV, "run": True,
                                                        "mapping": {"Headline": "title", "Comment": "status"}})
    assert bad.code == "FORBIDDEN", bad
    # The reviewed mapping, imported with progress lines (one per batch of two rows in this server).
    async with writer.client.post("/api/ai/import-csv", headers={"X-Workeros-Test-Caller": "role:writer:w1",
                                                                  "Accept": "application/x-ndjson"},
                                  json={"collection": "posts", "csv": CSV, "run": True,
                                        "mapping": r.data["mapping"]}) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in (await resp.read()).splitlines()]
    assert [line["progress"] for line in lines[:-1]] == [{"done": 2, "total": 3}, {"done": 3, "total": 3}]
    assert lines[-1]["data"]["imported"] == 3
    rows = (await admin.get("/api/items/posts", params={"filter": '{"id":{"_gt":4}}', "sort": "id"})).data
    assert [(row["title"], row["score"]) for row in rows] == [("alpha", 1), ("beta", 2), ("gamma", 3)]
    # All or nothing: a bad cell in the last batch leaves no row of the import.
    broken = CSV + "delta,not a number,z\n"
    r = await writer.post("/api/ai/import-csv", json={"collection": "posts", "csv": broken, "run": True,
                                                      "mapping": {"Headline": "title", "Points": "score"}})
    assert (r.status, r.code) == (400, "INVALID_PAYLOAD"), r
    assert len((await admin.get("/api/items/posts")).data) == 7
    # Without the reviewed mapping, run is refused (the mapping is shown first).
    r = await writer.post("/api/ai/import-csv", json={"collection": "posts", "csv": CSV, "run": True})
    assert r.code == "INVALID_PAYLOAD"
    assert (await api.as_role("reader", user="r1").post(
        "/api/ai/import-csv", json={"collection": "posts", "csv": CSV})).code == "FORBIDDEN"


@pytest.fixture
def wos_settings_overrides(wos_settings_overrides: dict[str, Any]) -> dict[str, Any]:
    return {**wos_settings_overrides, "ai.import_batch": 2}


async def test_mcp_tools(api, fake_anthropic, sign_up, password) -> None:
    """The three tools over MCP (the SDK's own client), under the same
    permissions and the key guards."""
    from tests.plugins.mcp.conftest import mcp_session

    await sign_up("ada@example.com")  # the first user: admin
    bob = await sign_up("bob@example.com")
    admin, _ = await setup(api)
    assert (await admin.patch(f"/api/users/{bob['id']}", json={"role": "reader"})).status == 200
    ada = await api.sign_in("ada@example.com", password)
    url = str(api.server.make_url("/mcp"))
    async with mcp_session(url, ada.token) as session:
        tools = {t.name: t for t in (await session.list_tools()).tools}
        assert {"ai_query", "ai_suggest_schema", "ai_import_csv"} <= set(tools)
        assert tools["ai_query"].annotations.read_only_hint is True
        assert tools["ai_suggest_schema"].annotations.read_only_hint is True
        assert tools["ai_import_csv"].annotations.read_only_hint is False
    for who in ("admin", "reader"):
        caller = ada if who == "admin" else await api.sign_in("bob@example.com", password)
        fake_anthropic.reset()
        fake_anthropic.answer(plan(collection="posts", filter={"score": {"_gt": 5}}, sort=["-score"],
                                   fields=["id", "title"]))
        async with mcp_session(url, caller.token) as session:
            result = await session.call_tool("ai_query", {"prompt": "good posts", "run": True})
        assert not result.is_error, result
        rest = await caller.get("/api/items/posts", params={"filter": '{"score":{"_gt":5}}', "sort": "-score",
                                                            "fields": "id,title"})
        assert result.structured_content["data"]["rows"] == rest.data and rest.data
        assert ("internal_memo" in fake_anthropic.requests[0]["raw"]) is (who == "admin")
    # A read-only key may ask, but not import.
    key = (await ada.post("/api/api-keys", json={"name": "ro", "mcp_read_only": True})).data
    fake_anthropic.reset()
    fake_anthropic.answer(plan(collection="posts"))
    async with mcp_session(url, key["key"]) as session:
        assert not (await session.call_tool("ai_query", {"prompt": "posts"})).is_error
        refused = await session.call_tool("ai_import_csv", {"collection": "posts", "csv": CSV})
        assert refused.is_error and refused.structured_content["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert len(fake_anthropic.requests) == 1
