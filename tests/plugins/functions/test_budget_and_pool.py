"""One wall-clock budget covers JavaScript and bridge waits together (over real
HTTP on both dialects, with a slow receiver on loopback), and the quickjs
sandbox's reused guests leak nothing from one call to the next (the sandbox
driven directly)."""

from __future__ import annotations

import asyncio
import time

from functions_kit import make_function
from receiver import Receiver
from workeros_quickjs import MB, QuickJS

SLOW_FETCH = "export default async (req, ctx) => (await ctx.fetch(req.body.url)).status"
SPIN_THEN_FETCH = """export default async (req, ctx) => {
  const until = Date.now() + 600; while (Date.now() < until) {}
  return (await ctx.fetch(req.body.url)).status;
}"""
CATCH_THEN_SPIN = """export default async (req, ctx) => {
  try { await ctx.fetch(req.body.url); } catch (e) { /* the budget's end is no catchable error */ }
  while (true) {}
}"""
SPIN = "export default function () { while (true) {} }"


async def _timed(admin, name: str, body: dict) -> tuple[object, float]:
    t0 = time.perf_counter()
    r = await admin.post(f"/api/functions/{name}/run", json=body)
    return r, time.perf_counter() - t0


async def test_the_budget_covers_bridge_waits(booted) -> None:
    receiver = await Receiver().start()
    receiver.delay = 4.0
    try:
        async with booted(network__allow_private=True) as (admin, _, _):
            body = {"url": receiver.url + "/slow"}
            for name, code in (("waits", SLOW_FETCH), ("spins-then-waits", SPIN_THEN_FETCH),
                               ("catches-then-spins", CATCH_THEN_SPIN)):
                await make_function(admin, name, code, timeout_ms=1000)
                r, seconds = await _timed(admin, name, body)
                assert r.code == "FUNCTION_TIMEOUT" and r.status == 504, (name, r)
                assert 0.9 <= seconds < 1.8, (name, seconds)
            # Nothing is left running: the server still runs functions at once.
            await make_function(admin, "quick", "export default () => 'fine'")
            r, seconds = await _timed(admin, "quick", {})
            assert r.data == "fine" and seconds < 1.0, (r, seconds)
            logs = (await admin.get("/api/functions/waits/logs")).data
            assert [entry["status"] for entry in logs] == ["timeout"], logs
    finally:
        await receiver.stop()


async def test_a_busy_worker_thread_does_not_stretch_another_budget(booted) -> None:
    receiver = await Receiver().start()
    receiver.delay = 4.0
    try:
        # One worker thread: the waiting function shares it with a spinning one.
        async with booted(network__allow_private=True, quickjs__workers=1) as (admin, _, _):
            await make_function(admin, "spin", SPIN, timeout_ms=3000)
            await make_function(admin, "waits", SLOW_FETCH, timeout_ms=800)
            spinning = asyncio.create_task(admin.post("/api/functions/spin/run"))
            await asyncio.sleep(0.3)
            r, seconds = await _timed(admin, "waits", {"url": receiver.url + "/slow"})
            assert r.code == "FUNCTION_TIMEOUT" and seconds < 1.6, (r, seconds)
            assert not spinning.done()
            assert (await spinning).code == "FUNCTION_TIMEOUT"
    finally:
        await receiver.stop()


# -- reused guests (the sandbox itself) ----------------------------------------------------

STATEFUL = """
globalThis.count = (globalThis.count ?? 0) + 1;
let local = 0;
export default async function () {
  local += 1;
  Object.prototype.polluted = (Object.prototype.polluted ?? 0) + 1;
  Array.prototype.push = function () { return 'hijacked' };
  return [globalThis.count, local, ({}).polluted, typeof __wos_host, typeof __wos_log];
}"""
CLEAN = "export default () => [globalThis.count ?? null, ({}).polluted ?? null, [].push(1)]"


async def _run(sandbox: QuickJS, code: str, **limits) -> object:
    try:
        return await sandbox.run(code, args={"req": None}, **limits)
    except Exception as exc:  # noqa: BLE001 -- the outcome under test
        return exc.code


async def test_reused_guests_start_from_the_same_state() -> None:
    sandbox = QuickJS()
    sandbox.workers = sandbox.workers[:1]  # one thread, so one pool: every call below reuses its guests
    pool = sandbox.workers[0].pool
    try:
        assert [await _run(sandbox, STATEFUL) for _ in range(3)] == [[1, 1, 1, "undefined", "undefined"]] * 3
        assert await _run(sandbox, CLEAN) == [None, None, 1]
        assert len(pool[64]) == 1  # one guest served all four calls

        # Math.random is reseeded per call (its state is in the reused image).
        draws = {tuple(await _run(sandbox, "export default () => [Math.random(), Math.random()]")) for _ in range(4)}
        assert len(draws) == 4 and all(0 <= x < 1 for pair in draws for x in pair)

        # A call whose memory grew, one that ran out of time and one that ran out
        # of memory are not reused; the next call starts clean either way.
        grow = "export default () => { globalThis.count = 99; const a = new Uint8Array(24 * 1024 * 1024); return a.length }"
        assert await _run(sandbox, grow) == 24 * MB
        assert pool[64] == []
        assert await _run(sandbox, CLEAN) == [None, None, 1]
        assert await _run(sandbox, "export default () => { globalThis.count = 5; while (true) {} }",
                          timeout_ms=200) == "FUNCTION_TIMEOUT"
        assert pool[64] == []
        assert await _run(sandbox, CLEAN) == [None, None, 1]
        hog = "export default () => { globalThis.count = 7; const a = []; while (true) a.push('x'.repeat(1000)) }"
        assert await _run(sandbox, hog, memory_mb=16, timeout_ms=20000) == "FUNCTION_ERROR"
        assert await _run(sandbox, CLEAN, memory_mb=16) == [None, None, 1]
        # A thrown error leaves the guest reusable, and clean.
        assert await _run(sandbox, "export default () => { globalThis.count = 3; throw new Error('x') }") \
            == "FUNCTION_ERROR"
        assert len(pool[64]) == 1
        assert await _run(sandbox, CLEAN) == [None, None, 1]
        # Concurrent calls each get their own guest; the pool keeps only a few.
        results = await asyncio.gather(*[_run(sandbox, STATEFUL) for _ in range(8)])
        assert results == [[1, 1, 1, "undefined", "undefined"]] * 8
        assert 1 <= len(pool[64]) <= 4
        # Idle guests are bounded per worker thread across memory budgets too.
        for memory_mb in range(20, 32):
            assert await _run(sandbox, CLEAN, memory_mb=memory_mb) == [None, None, 1]
        assert sum(len(ready) for ready in pool.values()) <= 8
    finally:
        await sandbox.close()
