"""Functions over real HTTP on both dialects: CRUD and versions, the contract's
return/throw/timeout/memory rules, isolation, who may run what, logs."""

from __future__ import annotations

import asyncio
import time

from callers import Api
from functions_kit import make_function


async def test_crud_validation_versions_and_admin_only(booted) -> None:
    async with booted() as (admin, _, _):
        created = await make_function(admin, "hello", "export default async function (req) { return 'hi' }")
        assert created["version"] == 1 and created["timeout_ms"] == 5000 and created["memory_mb"] == 64
        assert created["public"] is False and created["sandbox"] is None
        assert [f["name"] for f in (await admin.get("/api/functions")).data] == ["hello"]
        r = await admin.post("/api/functions", json={"name": "hello", "code": "export default () => 1"})
        assert r.status == 409 and r.code == "CONFLICT", r
        bad = [
            {"name": "Hello", "code": "export default () => 1"},
            {"name": "9x", "code": "export default () => 1"},
            {"name": "x" * 65, "code": "export default () => 1"},
            {"name": "ok", "code": ""},
            {"name": "ok", "code": 5},
            {"name": "ok", "code": "export default () => 1", "timeout_ms": 0},
            {"name": "ok", "code": "export default () => 1", "memory_mb": "lots"},
            {"name": "ok", "code": "export default () => 1", "public": "yes"},
            {"name": "ok", "code": "export default () => 1", "sandbox": "nonesuch"},
            {"name": "ok", "code": "export default () => 1", "concurrency": 0},
            {"name": "ok", "code": "export default () => 1", "unknown": 1},
        ]
        for body in bad:
            r = await admin.post("/api/functions", json=body)
            assert r.code == "INVALID_PAYLOAD", (body, r)
        r = await admin.post("/api/functions", json={"name": "broken",
                                                     "code": "export default function () {\n  let x = ;\n}"})
        assert r.code == "INVALID_PAYLOAD", r
        message = r.json["errors"][0]["message"]
        assert "line 2" in message and "column" in message, message
        assert r.json["errors"][0]["extensions"]["line"] == 2
        assert (await admin.get("/api/functions/broken")).code == "NOT_FOUND"  # nothing half-written
        r = await admin.patch("/api/functions/hello", json={"code": "export default async () => 'v2'"})
        assert r.data["version"] == 2, r
        r = await admin.patch("/api/functions/hello", json={"code": "export default (=> 'v3'"})
        assert r.code == "INVALID_PAYLOAD"
        assert (await admin.get("/api/functions/hello")).data["version"] == 2
        versions = (await admin.get("/api/functions/hello/versions")).data
        assert [v["version"] for v in versions] == [2, 1] and "'hi'" in versions[1]["code"]
        assert (await admin.post("/api/functions/hello/run")).data == "v2"
        user = admin.as_role("editor", "u1")
        for method, path in (("GET", "/api/functions"), ("POST", "/api/functions"), ("GET", "/api/functions/hello"),
                             ("PATCH", "/api/functions/hello"), ("DELETE", "/api/functions/hello"),
                             ("GET", "/api/functions/hello/logs"), ("GET", "/api/functions/hello/versions")):
            r = await user.request(method, path, json={"name": "x"})
            assert r.code == "FORBIDDEN", (method, path, r)
        assert (await admin.delete("/api/functions/hello")).status == 204
        assert (await admin.post("/api/functions/hello/run")).code == "NOT_FOUND"
        assert (await admin.get("/api/functions/not a name")).code == "NOT_FOUND"


async def test_request_return_throw_timeout_memory(booted) -> None:
    async with booted() as (admin, _, _):
        await make_function(admin, "echo", """
            export default async function (req, ctx) {
              return {method: req.method, query: req.query, body: req.body, type: req.headers['content-type'] ?? null,
                      auth: req.headers['cookie'] ?? null, custom: req.headers['x-custom'] ?? null};
            }""")
        r = await admin.post("/api/functions/echo/run?x=1", json={"a": [1, 2]})
        assert r.status == 200 and r.data == {"method": "POST", "query": {"x": "1"}, "body": {"a": [1, 2]},
                                              "type": "application/json", "auth": None, "custom": None}, r
        r = await admin.request("PUT", "/api/functions/echo/run", data=b"plain words",
                                headers={"Content-Type": "text/plain", "Cookie": "session=secret", "X-Custom": "yes"})
        assert r.data["method"] == "PUT" and r.data["body"] == "plain words", r
        assert r.data["auth"] is None and r.data["custom"] == "yes", r
        assert (await admin.get("/api/functions/echo/run")).data["body"] is None
        r = await admin.post("/api/functions/echo/run", data=b"{nope", headers={"Content-Type": "application/json"})
        assert r.code == "INVALID_PAYLOAD"

        await make_function(admin, "nothing", "export default async function () {}")
        r = await admin.post("/api/functions/nothing/run")
        assert r.status == 200 and r.json == {"data": None}
        await make_function(admin, "thrower", "export default async function () { throw new Error('no way') }")
        r = await admin.post("/api/functions/thrower/run")
        assert r.status == 502 and r.code == "FUNCTION_ERROR" and r.json["errors"][0]["message"] == "no way", r
        await make_function(admin, "typeerr", "export default function () { return null.x }")
        r = await admin.post("/api/functions/typeerr/run")
        assert r.status == 502 and r.json["errors"][0]["message"].startswith("TypeError"), r
        await make_function(admin, "nodefault", "export const x = 1")
        assert (await admin.post("/api/functions/nodefault/run")).code == "FUNCTION_ERROR"

        await make_function(admin, "spin", "export default function () { while (true) {} }", timeout_ms=300)
        r = await admin.post("/api/functions/spin/run")
        assert r.status == 504 and r.code == "FUNCTION_TIMEOUT", r
        await make_function(admin, "hog", """export default function () {
              const a = []; while (true) a.push('x'.repeat(1000) + a.length); }""", memory_mb=16, timeout_ms=20000)
        r = await admin.post("/api/functions/hog/run")
        assert r.status == 502 and r.code == "FUNCTION_ERROR" and "memory" in r.json["errors"][0]["message"], r
        await make_function(admin, "bigarray", "export default function () { return new ArrayBuffer(200 * 1024 * 1024) }",
                            memory_mb=16)
        assert (await admin.post("/api/functions/bigarray/run")).code == "FUNCTION_ERROR"
        await make_function(admin, "deep", "export default function f(n = 0) { return f(n + 1) + 1 }")
        r = await admin.post("/api/functions/deep/run")
        assert r.code == "FUNCTION_ERROR" and "stack" in r.json["errors"][0]["message"], r
        await make_function(admin, "never", "export default async function () { await new Promise(() => {}) }")
        assert (await admin.post("/api/functions/never/run")).code == "FUNCTION_ERROR"
        # the server is fine afterwards
        assert (await admin.post("/api/functions/nothing/run")).status == 200
        for r in [await admin.get("/api/functions/spin/logs"), await admin.get("/api/functions/thrower/logs")]:
            assert r.status == 200


async def test_no_host_access_and_no_shared_state(booted) -> None:
    async with booted() as (admin, _, _):
        await make_function(admin, "probe", """
            export default async function () {
              return [typeof require, typeof process, typeof Deno, typeof Bun, typeof module,
                      typeof globalThis.std, typeof globalThis.os, typeof fetch, typeof XMLHttpRequest];
            }""")
        assert (await admin.post("/api/functions/probe/run")).data == ["undefined"] * 9
        for code in ("import fs from 'fs'; export default () => 1",
                     "import * as os from 'os'; export default () => 1",
                     "import {readFileSync} from 'node:fs'; export default () => 1",
                     "export default async () => (await import('std')).getenv('HOME')"):
            await admin.delete("/api/functions/imp")
            r = await admin.post("/api/functions", json={"name": "imp", "code": code})
            if r.status == 201:
                r = await admin.post("/api/functions/imp/run")
            assert r.code in ("FUNCTION_ERROR", "INVALID_PAYLOAD"), (code, r)
        await make_function(admin, "counter", """
            globalThis.count = (globalThis.count ?? 0) + 1;
            let local = 0;
            export default async function () {
              local += 1; Object.prototype.polluted = (Object.prototype.polluted ?? 0) + 1;
              return [globalThis.count, local, ({}).polluted];
            }""")
        results = await asyncio.gather(*[admin.post("/api/functions/counter/run") for _ in range(4)])
        results += [await admin.post("/api/functions/counter/run") for _ in range(2)]
        assert [r.data for r in results] == [[1, 1, 1]] * 6


async def test_runaway_functions_do_not_hold_the_server(booted) -> None:
    async with booted() as (admin, _, client):
        await make_function(admin, "spin", "export default function () { while (true) {} }", timeout_ms=2000,
                            public=True)
        await make_function(admin, "hog", """export default function () {
              const a = []; while (true) a.push({n: a.length, s: 'y'.repeat(100)}); }""", memory_mb=32,
                            timeout_ms=3000, public=True)
        other = Api(client)  # another caller, anonymous, on its own requests
        runs = [asyncio.create_task(other.post("/api/functions/spin/run")),
                asyncio.create_task(other.post("/api/functions/hog/run"))]
        answered = []
        while not all(t.done() for t in runs):
            t0 = time.perf_counter()
            r = await other.get("/api/server/health")
            answered.append((r.status, time.perf_counter() - t0))
            await asyncio.sleep(0.05)
        spin, hog = [t.result() for t in runs]
        assert spin.code == "FUNCTION_TIMEOUT" and hog.code in ("FUNCTION_ERROR", "FUNCTION_TIMEOUT"), (spin, hog)
        assert len(answered) >= 5 and all(status == 200 for status, _ in answered), answered
        assert max(seconds for _, seconds in answered) < 1.0, answered


async def test_who_may_run_and_logs(booted) -> None:
    async with booted() as (admin, _, _):
        await make_function(admin, "private", """export default async (req, ctx) => {
              ctx.log('caller', ctx.user); console.log('n', 2); return ctx.user; }""")
        await make_function(admin, "open", "export default async (req, ctx) => ctx.user", public=True)
        anon = admin.anonymous()
        assert (await anon.post("/api/functions/open/run")).data is None
        assert (await anon.post("/api/functions/private/run")).code == "NOT_FOUND"
        r = await admin.post("/api/roles", json={"name": "runner"})
        runner_role = str(r.data["id"])
        r = await admin.post("/api/roles", json={"name": "other"})
        other_role = str(r.data["id"])
        r = await admin.post("/api/permissions", json={"role": runner_role, "collection": "wos_functions",
                                                       "action": "read", "filter": {"name": {"_eq": "private"}},
                                                       "fields": ["id", "name"]})
        assert r.status in (200, 201), r
        runner = admin.as_role(runner_role, "u-run")
        assert (await runner.post("/api/functions/private/run")).data == {"id": "u-run", "role": runner_role,
                                                                          "admin": False}
        assert (await admin.as_role(other_role, "u-other").post("/api/functions/private/run")).code == "NOT_FOUND"
        assert (await admin.post("/api/functions/private/run")).data["admin"] is True
        logs = []
        for _ in range(200):
            logs = (await admin.get("/api/functions/private/logs")).data
            if len(logs) >= 2:
                break
            await asyncio.sleep(0.05)
        assert len(logs) == 2 and {entry["status"] for entry in logs} == {"ok"}
        runner_log = [entry for entry in logs if entry["user"] == "u-run"][0]
        assert runner_log["lines"][0].startswith("caller {") and runner_log["lines"][1] == "n 2"
        assert runner_log["started_at"].endswith("Z") and runner_log["duration_ms"] >= 0

        await make_function(admin, "chatty", "export default (req, ctx) => { for (let i = 0; i < 1000; i++) "
                            "ctx.log('line ' + i + ' ' + 'z'.repeat(100)); return 1 }", timeout_ms=30000)
        assert (await admin.post("/api/functions/chatty/run")).data == 1
        for _ in range(200):
            logs = (await admin.get("/api/functions/chatty/logs")).data
            if logs:
                break
            await asyncio.sleep(0.05)
        assert len(logs[0]["lines"]) <= 101 and "dropped" in logs[0]["lines"][-1]


async def test_concurrency_limit(booted) -> None:
    async with booted() as (admin, _, _):
        await make_function(admin, "slow", "export default () => { const t = Date.now(); while (Date.now() - t < 700) {} "
                            "return 1 }", concurrency=1)
        first = asyncio.create_task(admin.post("/api/functions/slow/run"))
        await asyncio.sleep(0.25)
        second = await admin.post("/api/functions/slow/run")
        assert second.status == 429 and second.code == "RATE_LIMITED", second
        assert (await first).data == 1
        assert (await admin.post("/api/functions/slow/run")).data == 1
