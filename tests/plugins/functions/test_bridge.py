"""The host bridge over real HTTP on both dialects: ctx.db with the caller's
permissions (exactly what REST returns, per role), validation that writes
nothing, errors with the contract's codes, ctx.fetch under the network rule,
ctx.email to a real SMTP server, ctx.env and ctx.user."""

from __future__ import annotations

import json

from callers import high_and_low_readers
from functions_kit import make_function
from receiver import Receiver


async def _notes(admin) -> None:
    r = await admin.post("/api/collections", json={"collection": "notes", "fields": [
        {"field": "title", "type": "string"}, {"field": "score", "type": "integer"},
        {"field": "secret", "type": "string"}]})
    assert r.status in (200, 201), r
    for i in range(12):
        r = await admin.post("/api/items/notes", json={"title": f"n{i}", "score": i * 2, "secret": f"s{i}"})
        assert r.status in (200, 201), r


READER = """
export default async function (req, ctx) {
  try { return {rows: await ctx.db.items(req.body.collection).read(req.body.query)}; }
  catch (e) { return {code: e.code, message: e.message}; }
}"""


async def test_db_reads_as_two_roles_equal_rest(booted) -> None:
    async with booted() as (admin, _, _):
        await _notes(admin)
        _, callers = await high_and_low_readers(admin, "notes")
        await make_function(admin, "reader", READER, public=True)
        queries = [
            {},
            {"sort": ["-score"], "limit": 3},
            {"filter": {"score": {"_gte": 6}}, "fields": ["id", "title"], "sort": ["title"]},
            {"search": "n1"},
        ]
        for name in ("high", "low", "everyone"):
            caller = admin.anonymous()
            caller.caller = callers[name]
            for query in queries:
                params = {k: (json.dumps(v) if isinstance(v, dict) else ",".join(v) if isinstance(v, list) else str(v))
                          for k, v in query.items()}
                rest = await caller.get("/api/items/notes", params=params)
                assert rest.status == 200, rest
                fn = await caller.post("/api/functions/reader/run", json={"collection": "notes", "query": query})
                assert fn.status == 200 and fn.data == {"rows": rest.data}, (name, query, fn, rest)
            # a field the role may not read is refused the same way
            query = {"filter": {"secret": {"_eq": "s1"}}}
            rest = await caller.get("/api/items/notes", params={"filter": json.dumps(query["filter"])})
            fn = await caller.post("/api/functions/reader/run", json={"collection": "notes", "query": query})
            if name == "everyone":
                assert fn.data["rows"] == rest.data
            else:
                assert rest.status == 403 and fn.data["code"] == rest.code == "FORBIDDEN", (fn, rest)
        anon = admin.anonymous()
        rest = await anon.get("/api/items/notes")
        fn = await anon.post("/api/functions/reader/run", json={"collection": "notes", "query": {}})
        assert rest.code == "FORBIDDEN" and fn.data["code"] == "FORBIDDEN", (rest, fn)
        fn = await admin.post("/api/functions/reader/run", json={"collection": "nope", "query": {}})
        assert fn.data["code"] == "NOT_FOUND"


async def test_db_writes_follow_rules_and_failures_write_nothing(booted) -> None:
    async with booted() as (admin, _, _):
        await _notes(admin)
        r = await admin.post("/api/roles", json={"name": "writer"})
        role = str(r.data["id"])
        for action, extra in (("read", {}), ("create", {"validation": {"score": {"_lt": 100}}}),
                              ("update", {"filter": {"score": {"_lt": 10}}}), ("delete", {"filter": {"score": {"_lt": 4}}})):
            r = await admin.post("/api/permissions", json={"role": role, "collection": "notes", "action": action,
                                                           "fields": ["id", "title", "score"], **extra})
            assert r.status in (200, 201), r
        await make_function(admin, "writer", """
export default async function (req, ctx) {
  const notes = ctx.db.items("notes");
  const out = {};
  for (const [name, step] of Object.entries({
    one: () => notes.create({title: "fresh", score: 5}),
    batch_bad: () => notes.create([{title: "ok", score: 1}, {title: "too big", score: 500}]),
    bad: () => notes.create({title: "too big", score: 500}),
    hidden_field: () => notes.create({title: "x", score: 1, secret: "nope"}),
    upd: () => notes.update(1, {title: "renamed"}),
    upd_forbidden_row: () => notes.update(12, {title: "not mine"}),
    del: () => notes.delete(2),
    del_forbidden_row: () => notes.delete(10),
  })) {
    try { out[name] = {ok: await step()}; } catch (e) { out[name] = {code: e.code, message: e.message}; }
  }
  return out;
}""", public=True)
        before = (await admin.get("/api/items/notes", params={"limit": "-1"})).data
        writer = admin.as_role(role, "w1")
        out = (await writer.post("/api/functions/writer/run")).data
        assert out["one"]["ok"]["title"] == "fresh" and "secret" not in out["one"]["ok"], out
        assert out["batch_bad"]["code"] == "INVALID_PAYLOAD" and out["bad"]["code"] == "INVALID_PAYLOAD", out
        assert out["hidden_field"]["code"] in ("INVALID_PAYLOAD", "FORBIDDEN"), out
        assert out["upd"]["ok"]["title"] == "renamed"
        assert out["upd_forbidden_row"]["code"] == "NOT_FOUND" and out["del_forbidden_row"]["code"] == "NOT_FOUND"
        assert out["del"] == {"ok": None}
        after = (await admin.get("/api/items/notes", params={"limit": "-1"})).data
        by_id = {row["id"]: row for row in after}
        assert len(after) == len(before)  # one created, one deleted, nothing from the failed writes
        assert [row["title"] for row in after if row["title"] in ("ok", "too big", "x")] == []
        assert 2 not in by_id and by_id[1]["title"] == "renamed" and by_id[12]["title"] == "n11"
        rest = await writer.post("/api/items/notes", json={"title": "too big", "score": 500})
        assert rest.code == out["bad"]["code"]
        activity = (await admin.get("/api/activity", params={"filter": json.dumps({"user": {"_eq": "w1"}}),
                                                              "limit": "-1"})).data
        assert sorted(a["action"] for a in activity) == ["item.create", "item.delete", "item.update"], activity


FETCHER = """
export default async function (req, ctx) {
  try {
    const r = await ctx.fetch(req.body.url, {method: "POST", body: {hello: "there"}, headers: {"X-From": "fn"}});
    return {status: r.status, ok: r.ok, json: await r.json(), type: r.headers.get("Content-Type")};
  } catch (e) { return {code: e.code, message: e.message}; }
}"""


async def test_fetch_under_the_network_rule(booted) -> None:
    receiver = await Receiver().start()
    try:
        receiver.reply = {"pong": 1}
        async with booted() as (admin, _, _):
            await make_function(admin, "fetcher", FETCHER)
            for url in (receiver.url + "/x", "http://localhost:9/", "http://169.254.169.254/latest/meta-data",
                        "http://[::1]:9/", "file:///etc/passwd"):
                out = (await admin.post("/api/functions/fetcher/run", json={"url": url})).data
                assert out["code"] == "INVALID_PAYLOAD" and "status" not in out, (url, out)
            assert receiver.requests == []
        async with booted(network__allow_private=True, functions__max_fetch_bytes=64) as (admin, _, _):
            await make_function(admin, "fetcher2", FETCHER)
            out = (await admin.post("/api/functions/fetcher2/run", json={"url": receiver.url + "/x"})).data
            assert out == {"status": 200, "ok": True, "json": {"pong": 1}, "type": "application/json; charset=utf-8"}
            sent = receiver.requests[-1]
            assert sent.method == "POST" and sent.json() == {"hello": "there"} and sent.headers["X-From"] == "fn"
            receiver.reply = {"big": "z" * 200}
            out = (await admin.post("/api/functions/fetcher2/run", json={"url": receiver.url + "/big"})).data
            assert out["code"] == "INVALID_PAYLOAD" and "larger" in out["message"], out
    finally:
        await receiver.stop()


async def test_email_env_and_user(booted, smtp_inbox, monkeypatch) -> None:
    monkeypatch.setenv("WOS_TEST_SECRET_ENV", "from-the-host")
    async with booted(**{k.replace(".", "__"): v for k, v in smtp_inbox.settings().items()},
                      functions__env={"GREETING": "hello"}) as (admin, _, _):
        await make_function(admin, "mailer", """
export default async function (req, ctx) {
  const sent = await ctx.email({to: req.body.to, subject: "Hi " + ctx.user.id, text: ctx.env.GREETING});
  let bad = null;
  try { await ctx.email({to: "not an address", subject: "x", text: "y"}); } catch (e) { bad = e.code; }
  return {sent, bad, env: ctx.env, keys: Object.keys(ctx.env)};
}""")
        out = (await admin.post("/api/functions/mailer/run", json={"to": "someone@example.com"})).data
        assert out == {"sent": {"sent": ["someone@example.com"]}, "bad": "INVALID_PAYLOAD",
                       "env": {"GREETING": "hello"}, "keys": ["GREETING"]}, out
        await smtp_inbox.wait_for("someone@example.com")
        message = smtp_inbox.last("someone@example.com")
        assert message["Subject"] == "Hi test-admin" and smtp_inbox.text(message).strip() == "hello"
