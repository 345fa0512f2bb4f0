"""Flows on both dialects: every trigger and operation type, blocking
rejections and payload changes, runs with their steps, loop protection."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from callers import Api, TestCallers
from receiver import Receiver, eventually

from workeros.http.keys import SERVICES

FAST = {"network.allow_private": True, "flows.cache_seconds": 0.5}


@pytest.fixture
def booted(make_server: Callable[..., Any]) -> Callable[..., Any]:
    @asynccontextmanager
    async def run(*plugins: Any, **settings: Any) -> AsyncIterator[tuple[Api, Any]]:
        async with make_server(TestCallers(), *plugins, **{**FAST, **settings}) as server, \
                TestClient(server) as client:
            yield Api(client).as_admin(), server.app[SERVICES]

    return run


async def collection(admin: Api, name: str, **fields: str) -> None:
    r = await admin.post("/api/collections", json={"collection": name, "fields": [
        {"field": f, "type": t} for f, t in fields.items()]})
    assert r.status in (200, 201), r


async def flow(admin: Api, trigger: str, operations: list[dict], options: dict | None = None,
               **extra: Any) -> dict:
    r = await admin.post("/api/flows", json={"name": f"{trigger} flow", "trigger": trigger,
                                             "options": options or {}, "operations": operations, **extra})
    assert r.status == 201, r
    return r.data


def op(step: str, kind: str, resolve: str | None = None, reject: str | None = None, **options: Any) -> dict:
    return {"key": step, "type": kind, "options": options, "resolve": resolve, "reject": reject}


async def runs(admin: Api, flow_id: str, count: int = 1, timeout: float = 10.0) -> list[dict]:
    async def enough() -> list[dict] | None:
        data = (await admin.get(f"/api/flows/{flow_id}/runs")).data
        return data if len(data) >= count else None

    return await eventually(enough, timeout=timeout)


async def test_crud_validation_and_admin_only(booted) -> None:
    async with booted() as (admin, _):
        created = await flow(admin, "manual", [op("say", "log", message="hi")])
        assert created["start"] == "say" and created["status"] == "active"
        key = created["id"]
        assert [f["id"] for f in (await admin.get("/api/flows")).data] == [key]
        r = await admin.patch(f"/api/flows/{key}", json={"status": "inactive", "name": "renamed"})
        assert r.data["status"] == "inactive" and r.data["name"] == "renamed" and r.data["operations"], r
        bad = [
            {"name": "x", "trigger": "sometimes"},
            {"name": "x", "trigger": "schedule", "options": {"cron": "every minute"}},
            {"name": "x", "trigger": "schedule", "options": {"cron": "61 * * * *"}},
            {"name": "x", "trigger": "event", "options": {"events": ["items.explode"]}},
            {"name": "x", "trigger": "manual", "operations": [op("a", "teleport")]},
            {"name": "x", "trigger": "manual", "operations": [op("a", "log", resolve="nowhere")]},
            {"name": "x", "trigger": "manual", "operations": [op("a", "log", resolve="b"), op("b", "log", resolve="a")]},
            {"name": "x", "trigger": "manual", "operations": [op("a", "log"), op("a", "log")]},
            {"name": "x", "trigger": "manual", "operations": [op("a", "condition", filter={"x": {"_nope": 1}})]},
            {"name": "x", "trigger": "manual", "operations": [op("a", "script", code="")]},
            {"name": "x", "trigger": "manual", "operations": [op("a", "function", name=5)]},
            {"name": "x", "trigger": "manual", "operations": [op("a", "item-read")]},
            {"name": "x", "trigger": "manual", "unknown": 1},
        ]
        for body in bad:
            r = await admin.post("/api/flows", json=body)
            assert r.code == "INVALID_PAYLOAD", (body, r)
        user = admin.as_role("editor", "u1")
        for method, path in (("GET", "/api/flows"), ("POST", "/api/flows"), ("GET", f"/api/flows/{key}"),
                             ("PATCH", f"/api/flows/{key}"), ("DELETE", f"/api/flows/{key}"),
                             ("GET", f"/api/flows/{key}/runs")):
            assert (await user.request(method, path, json={"name": "x"})).code == "FORBIDDEN", (method, path)
        assert (await admin.get("/api/flows/not-a-uuid")).code == "NOT_FOUND"
        assert (await admin.delete(f"/api/flows/{key}")).status == 204
        assert (await admin.get(f"/api/flows/{key}")).code == "NOT_FOUND"


async def test_event_action_flow_with_condition_item_ops_and_runs(booted) -> None:
    async with booted() as (admin, _):
        await collection(admin, "orders", title="string", total="integer")
        await collection(admin, "audit", note="string", amount="integer")
        f = await flow(admin, "event", [
            op("big", "condition", resolve="record", reject="small",
               filter={"$trigger": {"payload": {"total": {"_gt": 100}}}}),
            op("record", "item-create", collection="audit", permissions="$full",
               payload={"note": "big order {{ $trigger.payload.title }}", "amount": "{{ $trigger.payload.total }}"}),
            op("small", "log", message="small order {{ $trigger.keys.0 }}"),
        ], {"events": ["items.create"], "collections": ["orders"]})
        big = (await admin.post("/api/items/orders", json={"title": "A", "total": 500})).data
        await admin.post("/api/items/orders", json={"title": "B", "total": 5})
        done = await runs(admin, f["id"], 2)
        audit = (await admin.get("/api/items/audit")).data
        assert [(a["note"], a["amount"]) for a in audit] == [("big order A", 500)]  # the raw number
        by_path = sorted([s["key"] for s in r["steps"]] for r in done)
        assert by_path == [["big", "record"], ["big", "small"]]
        for r in done:
            assert r["status"] == "resolve" and r["trigger"] == "items.create" and r["started_at"].endswith("Z")
            assert all(s["duration_ms"] >= 0 for s in r["steps"])
        [big_run] = [r for r in done if r["steps"][-1]["key"] == "record"]
        assert big_run["steps"][0]["status"] == "resolve" and big_run["steps"][1]["output"]["amount"] == 500
        [small_run] = [r for r in done if r["steps"][-1]["key"] == "small"]
        assert small_run["steps"][0]["status"] == "reject"
        assert small_run["steps"][1]["output"] == f"small order {big['id'] + 1}"
        # Updates and deletes trigger their own events only.
        await admin.patch(f"/api/items/orders/{big['id']}", json={"total": 1})
        await asyncio.sleep(0.5)
        assert len((await admin.get(f"/api/flows/{f['id']}/runs")).data) == 2


async def test_blocking_flows_reject_or_change_the_payload(booted) -> None:
    async with booted() as (admin, _):
        await collection(admin, "posts", title="string", slug="string")
        await collection(admin, "audit", note="string")
        guard = await flow(admin, "event", [
            op("titled", "condition", resolve="log_it", filter={"$trigger": {"payload": {"title": {"_nempty": True}}}},
               message="A post needs a title"),
            op("log_it", "item-create", collection="audit", permissions="$full",
               payload={"note": "checked {{ $trigger.payload.title }}"}, resolve="shape"),
            op("shape", "transform", json={"title": "{{ $trigger.payload.title }}",
                                           "slug": "post-{{ $trigger.payload.title }}"}),
        ], {"events": ["items.create"], "collections": ["posts"], "blocking": True})
        r = await admin.post("/api/items/posts", json={"title": "", "slug": "x"})
        assert r.status == 400 and r.code == "INVALID_PAYLOAD", r
        assert r.json["errors"][0]["message"] == "A post needs a title"
        r = await admin.post("/api/items/posts", json=[{"title": "ok"}, {"title": None}])
        assert r.status == 400, r
        assert (await admin.get("/api/items/posts")).data == []
        assert (await admin.get("/api/items/audit")).data == []  # written in the refused transaction: rolled back
        r = await admin.post("/api/items/posts", json={"title": "hello"})
        assert r.status in (200, 201) and r.data["slug"] == "post-hello", r
        assert [a["note"] for a in (await admin.get("/api/items/audit")).data] == ["checked hello"]
        done = await runs(admin, guard["id"], 4)
        assert sorted(r["status"] for r in done) == ["reject", "reject", "resolve", "resolve"]

        await flow(admin, "event", [op("no", "condition", filter={"$trigger": {"payload": {"title": {"_neq": "locked"}}}},
                                       message="Locked titles stay")],
                   {"events": ["items.update", "items.delete"], "collections": ["posts"], "blocking": True})
        post = (await admin.get("/api/items/posts")).data[0]
        r = await admin.patch(f"/api/items/posts/{post['id']}", json={"title": "locked"})
        assert r.code == "INVALID_PAYLOAD" and r.json["errors"][0]["message"] == "Locked titles stay", r
        assert (await admin.get(f"/api/items/posts/{post['id']}")).data["title"] == "hello"
        r = await admin.delete(f"/api/items/posts/{post['id']}")  # a delete has no payload: refused as well
        assert r.code == "INVALID_PAYLOAD" and r.json["errors"][0]["message"] == "Locked titles stay", r
        assert (await admin.get(f"/api/items/posts/{post['id']}")).status == 200


async def test_schedule_flows_run_on_their_ticks(booted) -> None:
    async with booted() as (admin, _):
        f = await flow(admin, "schedule", [op("tick", "transform", json="{{ $trigger.tick }}")],
                       {"cron": "* * * * * *"})
        done = await runs(admin, f["id"], 2, timeout=6)
        ticks = [r["steps"][0]["output"] for r in done]
        assert all(r["trigger"] == "schedule" and r["status"] == "resolve" for r in done)
        assert len(set(ticks)) == len(ticks) and all(t.endswith("Z") for t in ticks)
        await admin.patch(f"/api/flows/{f['id']}", json={"status": "inactive"})
        await asyncio.sleep(1.0)
        settled = len((await admin.get(f"/api/flows/{f['id']}/runs")).data)
        await asyncio.sleep(1.5)
        assert len((await admin.get(f"/api/flows/{f['id']}/runs")).data) == settled


async def test_webhook_and_manual_triggers_answer_with_the_last_step(booted) -> None:
    async with booted() as (admin, _):
        hook = await flow(admin, "webhook", [
            op("check", "condition", resolve="answer", filter={"$trigger": {"payload": {"a": {"_nnull": True}}}},
               message="a is required"),
            op("answer", "transform", json={"a": "{{ $trigger.payload.a }}", "x": "{{ $trigger.query.x }}",
                                            "who": "{{ $accountability.user }}"})])
        anon = admin.anonymous()
        r = await anon.post(f"/api/flows/trigger/{hook['id']}?x=2", json={"a": [1, 2]})
        assert r.status == 200 and r.data == {"a": [1, 2], "x": "2", "who": None}, r
        r = await anon.post(f"/api/flows/trigger/{hook['id']}", json={"b": 1})
        assert r.code == "INVALID_PAYLOAD" and r.json["errors"][0]["message"] == "a is required", r
        manual = await flow(admin, "manual", [op("me", "transform", json={"user": "{{ $trigger.user }}",
                                                                          "body": "{{ $trigger.payload }}"})])
        assert (await anon.post(f"/api/flows/trigger/{manual['id']}", json={})).status == 401
        r = await admin.as_role("editor", "u-7").post(f"/api/flows/trigger/{manual['id']}", json={"n": 1})
        assert r.status == 200 and r.data == {"user": "u-7", "body": {"n": 1}}, r
        await admin.patch(f"/api/flows/{hook['id']}", json={"status": "inactive"})
        assert (await anon.post(f"/api/flows/trigger/{hook['id']}", json={"a": 1})).code == "NOT_FOUND"
        event = await flow(admin, "event", [op("x", "log", message="x")], {"events": ["items.create"]})
        assert (await anon.post(f"/api/flows/trigger/{event['id']}", json={})).code == "NOT_FOUND"
        assert (await anon.post("/api/flows/trigger/nope", json={})).code == "NOT_FOUND"
        done = await runs(admin, manual["id"], 1)
        assert done[0]["trigger"] == "manual"


async def test_request_operation_over_real_http(booted, receiver: Receiver) -> None:
    receiver.reply = {"greeting": "hello"}
    async with booted() as (admin, _):
        f = await flow(admin, "webhook", [
            op("call", "request", resolve="pick", reject="failed", method="POST", url=receiver.url + "/api/{{ $trigger.payload.path }}",
               headers={"X-Flow": "yes"}, body={"n": "{{ $trigger.payload.n }}"}),
            op("pick", "transform", json={"said": "{{ call.data.greeting }}", "status": "{{ call.status }}"}),
            op("failed", "transform", json={"failed_with": "{{ $last.status }}"}),
        ])
        r = await admin.anonymous().post(f"/api/flows/trigger/{f['id']}", json={"path": "one", "n": 3})
        assert r.data == {"said": "hello", "status": 200}, r
        sent = receiver.requests[-1]
        assert sent.method == "POST" and sent.path == "/api/one" and sent.json() == {"n": 3}
        assert sent.headers["X-Flow"] == "yes"
        receiver.statuses = [503]
        r = await admin.anonymous().post(f"/api/flows/trigger/{f['id']}", json={"path": "two", "n": 1})
        assert r.data == {"failed_with": 503}, r
    async with booted(**{"network.allow_private": False}) as (admin, _):
        f = await flow(admin, "webhook", [op("call", "request", url=receiver.url)])
        before = len(receiver.requests)
        r = await admin.anonymous().post(f"/api/flows/trigger/{f['id']}", json={})
        assert r.code == "INVALID_PAYLOAD" and "not allowed" in r.json["errors"][0]["message"], r
        [run] = await runs(admin, f["id"], 1)
        assert run["status"] == "error" and run["steps"][0]["status"] == "error"
        assert len(receiver.requests) == before


async def test_mail_sleep_log_and_trigger_operations(booted, smtp_inbox) -> None:
    async with booted(**smtp_inbox.settings()) as (admin, _):
        child = await flow(admin, "manual", [op("double", "transform",
                                                json={"twice": ["{{ $trigger.payload.v }}", "{{ $trigger.payload.v }}"]})])
        parent = await flow(admin, "webhook", [
            op("wait", "sleep", resolve="note", ms=200),
            op("note", "log", resolve="mail", message="sending to {{ $trigger.payload.to }}"),
            op("mail", "mail", resolve="call", to="{{ $trigger.payload.to }}", subject="Hello {{ $trigger.payload.v }}",
               body="Value: {{ $trigger.payload.v }}"),
            op("call", "trigger", flow=child["id"], payload={"v": "{{ $trigger.payload.v }}"}),
        ])
        started = time.monotonic()
        r = await admin.anonymous().post(f"/api/flows/trigger/{parent['id']}", json={"to": "ada@example.com", "v": 7})
        assert r.status == 200 and r.data == {"twice": [7, 7]}, r
        assert time.monotonic() - started >= 0.2
        message = smtp_inbox.last("ada@example.com")
        assert message["Subject"] == "Hello 7" and smtp_inbox.text(message).strip() == "Value: 7"
        [run] = await runs(admin, parent["id"], 1)
        steps = {s["key"]: s for s in run["steps"]}
        assert steps["wait"]["duration_ms"] >= 190 and steps["note"]["output"] == "sending to ada@example.com"
        assert steps["mail"]["output"] == {"sent": ["ada@example.com"]}
        [child_run] = await runs(admin, child["id"], 1)
        assert child_run["trigger"] == "trigger" and child_run["depth"] == 1


async def test_item_operations_follow_the_chosen_permissions(booted) -> None:
    async with booted() as (admin, _):
        await collection(admin, "notes", title="string", score="integer")
        for i in range(3):
            await admin.post("/api/items/notes", json={"title": f"n{i}", "score": i})
        reader = (await admin.post("/api/roles", json={"name": "reader"})).data["id"]
        r = await admin.post("/api/permissions", json={"role": reader, "collection": "notes", "action": "read",
                                                       "filter": {"score": {"_gte": 1}}})
        assert r.status in (200, 201), r
        f = await flow(admin, "manual", [
            op("mine", "item-read", resolve="all", collection="notes", permissions="$trigger",
               query={"sort": "score", "fields": ["title"]}),
            op("all", "item-read", resolve="as_role", collection="notes", permissions="$full", query={"sort": "-score"}),
            op("as_role", "item-read", resolve="bump", collection="notes", permissions=reader, key=1),
            op("bump", "item-update", resolve="drop", collection="notes", permissions="$full",
               query={"filter": {"score": {"_gte": 1}}}, payload={"title": "bumped"}),
            op("drop", "item-delete", collection="notes", permissions="$full", key="{{ all.0.id }}"),
        ])
        caller = admin.as_role(reader, "u1")
        r = await caller.post(f"/api/flows/trigger/{f['id']}", json={})
        assert r.code == "INVALID_PAYLOAD" and "not found" in r.json["errors"][0]["message"], r
        [run] = await runs(admin, f["id"], 1)
        out = {s["key"]: s for s in run["steps"]}
        assert out["mine"]["output"] == [{"title": "n1"}, {"title": "n2"}]  # the caller's rule applied
        assert [n["score"] for n in out["all"]["output"]] == [2, 1, 0]
        assert out["as_role"]["status"] == "error" and out["as_role"]["output"]["code"] == "NOT_FOUND"
        # as_role failed with no reject path: the run ended there.
        assert list(out) == ["mine", "all", "as_role"]
        await admin.patch(f"/api/flows/{f['id']}", json={"operations": [
            op("bump", "item-update", resolve="drop", collection="notes", permissions="$full",
               query={"filter": {"score": {"_gte": 1}}}, payload={"title": "bumped"}),
            op("drop", "item-delete", collection="notes", permissions="$full", key="{{ bump.0.id }}"),
            op("refused", "item-create", collection="notes", permissions="$trigger", payload={"title": "x"})],
            "start": "bump"})
        r = await caller.post(f"/api/flows/trigger/{f['id']}", json={})
        assert r.status == 200 and r.data == [2], r
        titles = sorted((n["id"], n["title"]) for n in (await admin.get("/api/items/notes")).data)
        assert titles == [(1, "n0"), (3, "bumped")]
        await admin.patch(f"/api/flows/{f['id']}", json={"start": "refused"})
        r = await caller.post(f"/api/flows/trigger/{f['id']}", json={})
        assert r.status == 400 and r.code == "INVALID_PAYLOAD", r
        assert len((await admin.get("/api/items/notes")).data) == 2
        # Runs are recorded after the response: wait for all three; the last one
        # is the run that started at "refused" (two runs may share a timestamp).
        [latest] = [r for r in await runs(admin, f["id"], 3) if r["steps"][0]["key"] == "refused"]
        assert latest["status"] == "error" and latest["steps"][0]["output"]["code"] == "FORBIDDEN"


async def test_loop_protection_stops_a_flow_that_triggers_itself(booted) -> None:
    async with booted(**{"flows.max_depth": 3}) as (admin, _):
        await collection(admin, "echo", title="string")
        f = await flow(admin, "event", [op("again", "item-create", collection="echo", permissions="$full",
                                           payload={"title": "{{ $trigger.payload.title }}+"})],
                       {"events": ["items.create"], "collections": ["echo"]})
        await admin.post("/api/items/echo", json={"title": "x"})
        done = await runs(admin, f["id"], 5)
        await asyncio.sleep(0.5)
        done = (await admin.get(f"/api/flows/{f['id']}/runs")).data
        assert len(done) == 5
        stopped = [r for r in done if r["status"] == "error"]
        assert len(stopped) == 1 and "Loop protection" in stopped[0]["error"] and stopped[0]["depth"] == 4
        assert stopped[0]["steps"] == []
        titles = sorted(e["title"] for e in (await admin.get("/api/items/echo")).data)
        assert titles == ["x", "x+", "x++", "x+++", "x++++"]


async def test_auth_events_and_output_cap(booted) -> None:
    async with booted(**{"flows.max_output_bytes": 64}) as (admin, _):
        f = await flow(admin, "event", [op("who", "transform", json={"email": "{{ $trigger.payload.email }}",
                                                                     "padding": "x" * 200})],
                       {"events": ["auth.signup"]})
        r = await admin.anonymous().post("/api/auth/sign-up", json={"email": "ada@example.com",
                                                                    "password": "correct horse 42"})
        assert r.status in (200, 201), r
        [run] = await runs(admin, f["id"], 1)
        assert run["trigger"] == "auth.signup"
        output = run["steps"][0]["output"]
        assert output["$truncated"] is True and output["size"] > 200 and len(output["preview"]) == 64
        assert "ada@example.com" in output["preview"]
        await flow(admin, "event", [op("allowed", "condition", message="This address may not sign in",
                                       filter={"$trigger": {"payload": {"email": {"_ncontains": "@blocked.test"}}}})],
                   {"events": ["auth.login"], "blocking": True})
        await admin.sign_in("ada@example.com", "correct horse 42")
        r = await admin.anonymous().post("/api/auth/sign-up", json={"email": "eve@blocked.test",
                                                                    "password": "correct horse 42"})
        assert r.status in (200, 201), r
        r = await admin.anonymous().post("/api/auth/login", json={"email": "eve@blocked.test",
                                                                  "password": "correct horse 42", "mode": "json"})
        assert r.code == "INVALID_PAYLOAD" and r.json["errors"][0]["message"] == "This address may not sign in", r
