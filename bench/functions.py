"""Functions: what running JavaScript in the quickjs sandbox costs against the
REST call it wraps, same server, same run.

- warm invocation of a trivial function (``export default () => 1``) vs
  ``GET /api/items/bench/1`` (each pair run back to back, in three rounds; the
  median round's ratio is reported) (wrk, 8 connections: a function costs tens of
  milliseconds of CPU, and wrk gives up on a request after 2 s) — target >= 0.5x;
- a function doing one ``ctx.db`` read vs the same REST list — target >= 0.5x;
- cold start: latency of single sequential invocations that each need a new
  guest (functions with distinct memory budgets, so no prepared guest fits:
  a new wasm store, QuickJS runtime, driver and memory image), p50, next to
  the latency of warm sequential invocations and of the REST get (p50);
- memory per concurrent invocation: the server's RSS growth while 32
  invocations wait at once on a slow ``ctx.fetch`` (a receiver on loopback).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import threading
import time
from typing import Any

from bench import rest as rest_bench
from bench.common import PYTHON
from bench.rest import BENCH_COLLECTION, WORKEROS_SERVER, _port, _request, _start, _stop, bench_database, wrk

SERVER = WORKEROS_SERVER.replace('cli = {"data_dir"', 'cli = {"network.allow_private": True, "data_dir"')
CONCURRENT = 32
#: Cold starts measured (one function each, with its own memory budget).
COLD = 20
CONNECTIONS = 8
#: Rounds of (baseline, function) pairs; the median round's ratio is reported.
ROUNDS = 3
TRIVIAL = "export default () => 1"
READ = ("export default async (req, ctx) => ctx.db.items('bench').read("
        "{filter: {score: {_gte: 900}}, sort: ['-score'], limit: 20})")
LIST_PATH = "/api/items/bench?filter=%7B%22score%22%3A%7B%22_gte%22%3A900%7D%7D&sort=-score&limit=20"


def _post(base: str, path: str, body: dict[str, Any]) -> Any:
    return json.loads(_request(base + path, "POST", json.dumps(body).encode()))["data"]


def _median_pair(pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> tuple[dict[str, Any], dict[str, Any], float]:
    """The round with the median ratio: (baseline, function, ratio)."""
    rounds = sorted(pairs, key=lambda pair: pair[1]["rps"] / pair[0]["rps"])
    rest, fn = rounds[len(rounds) // 2]
    return rest, fn, fn["rps"] / rest["rps"]


def _latencies(url: str, count: int) -> list[float]:
    out = []
    for _ in range(count):
        t0 = time.perf_counter()
        _request(url)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class SlowReceiver:
    """Answers every request after ``delay`` seconds (its own thread and loop)."""

    def __init__(self, delay: float) -> None:
        self.port, self.delay = _port(), delay
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()
        self.ready.wait(10)

    def _serve(self) -> None:
        from aiohttp import web

        async def handle(request: web.Request) -> web.Response:
            await asyncio.sleep(self.delay)
            return web.json_response({"ok": True})

        async def start() -> None:
            app = web.Application()
            app.router.add_get("/{tail:.*}", handle)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", self.port).start()
            self.ready.set()

        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(start())
        self.loop.run_forever()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)


def _concurrent_memory(base: str, pid: int, receiver: SlowReceiver) -> dict[str, float]:
    import aiohttp

    url = f"{base}/api/functions/waiter/run"

    async def go() -> tuple[int, int]:
        async with aiohttp.ClientSession() as session:
            before = _rss_kb(pid)
            tasks = [asyncio.create_task(session.get(url)) for _ in range(CONCURRENT)]
            peak = before
            while not all(t.done() for t in tasks):
                peak = max(peak, _rss_kb(pid))
                await asyncio.sleep(0.05)
            for t in tasks:
                (await t).release()
            return before, peak

    before, peak = asyncio.run(go())
    return {"rss_before_mb": before / 1024, "rss_peak_mb": peak / 1024,
            "per_invocation_mb": (peak - before) / 1024 / CONCURRENT}


def run_dialect(dialect: str, seconds: int, samples: int) -> dict[str, Any]:
    receiver = SlowReceiver(2.0)
    try:
        with bench_database(dialect) as (url, work):
            port = _port()
            proc = _start([PYTHON, "-c", SERVER, str(port), url, str(work / "data"), ""], port, "/api/server/health")
            base = f"http://127.0.0.1:{port}"
            try:
                _request(base + "/api/collections", "POST", BENCH_COLLECTION)
                rows = [{"title": f"t{i}", "score": i % 1000, "category": "c", "body": "x" * 50} for i in range(2000)]
                for i in range(0, len(rows), 500):
                    _post(base, "/api/items/bench", rows[i:i + 500])  # type: ignore[arg-type]
                _post(base, "/api/functions", {"name": "trivial", "code": TRIVIAL})
                _post(base, "/api/functions", {"name": "reader", "code": READ})
                _post(base, "/api/functions", {"name": "waiter", "timeout_ms": 30000, "code":
                                               "export default async (req, ctx) => (await ctx.fetch("
                                               f"'http://127.0.0.1:{receiver.port}/slow')).status"})
                for _ in range(3):  # the first invocation compiles the guest module
                    _request(base + "/api/functions/trivial/run")
                get_url, fn_url = base + "/api/items/bench/1", base + "/api/functions/trivial/run"
                read_url = base + "/api/functions/reader/run"
                for url in (get_url, fn_url, base + LIST_PATH, read_url):
                    wrk(url, 1)
                # Each pair back to back, in several rounds: on a shared machine the
                # load moves between runs, and a ratio is only fair within a round.
                pairs: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {"trivial": [], "db_read": []}
                for _ in range(ROUNDS):
                    pairs["trivial"].append((wrk(get_url, seconds), wrk(fn_url, seconds)))
                    pairs["db_read"].append((wrk(base + LIST_PATH, seconds), wrk(read_url, seconds)))
                (rest_get, trivial, trivial_ratio), (rest_list, reader, db_read_ratio) = (
                    _median_pair(pairs["trivial"]), _median_pair(pairs["db_read"]))
                warm = _latencies(fn_url, samples)
                rest_lat = _latencies(get_url, samples)
                cold = []
                for i in range(COLD):
                    _post(base, "/api/functions", {"name": f"cold{i}", "code": TRIVIAL, "memory_mb": 100 + i})
                    cold += _latencies(f"{base}/api/functions/cold{i}/run", 1)
                memory = _concurrent_memory(base, proc.pid, receiver)
            finally:
                _stop(proc)
    finally:
        receiver.stop()
    out = {
        "rest_get": rest_get, "trivial_function": trivial,
        "trivial_ratio": trivial_ratio, "rounds": ROUNDS,
        "trivial_ratios": [fn["rps"] / rest["rps"] for rest, fn in pairs["trivial"]],
        "rest_list": rest_list, "db_read_function": reader, "db_read_ratio": db_read_ratio,
        "db_read_ratios": [fn["rps"] / rest["rps"] for rest, fn in pairs["db_read"]],
        "cold_start_p50_ms": statistics.median(cold), "warm_p50_ms": statistics.median(warm),
        "rest_get_p50_ms": statistics.median(rest_lat),
        "memory": memory,
    }
    print(f"  {dialect:<8} ratios per round: trivial "
          f"{' '.join(f'{r:.2f}' for r in out['trivial_ratios'])}, ctx.db read "
          f"{' '.join(f'{r:.2f}' for r in out['db_read_ratios'])} (median round below)")
    print(f"  {dialect:<8} trivial function {trivial['rps']:7.0f} req/s vs REST get {rest_get['rps']:7.0f} req/s "
          f"-> {out['trivial_ratio']:4.2f}x | ctx.db read {reader['rps']:7.0f} vs REST list {rest_list['rps']:7.0f} "
          f"-> {out['db_read_ratio']:4.2f}x")
    print(f"  {dialect:<8} cold start (new guest) p50 {out['cold_start_p50_ms']:6.1f} ms, warm sequential p50 "
          f"{out['warm_p50_ms']:6.1f} ms vs REST get p50 {out['rest_get_p50_ms']:6.1f} ms | {CONCURRENT} waiting "
          "invocations: "
          f"{memory['per_invocation_mb']:5.2f} MB each (RSS {memory['rss_before_mb']:.0f} -> "
          f"{memory['rss_peak_mb']:.0f} MB)")
    return out


def run(quick: bool = False) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        print("  wrk is not installed: skipped (make bench installs it)")
        return {"skipped": "wrk not installed"}
    seconds, samples = (3, 30) if quick else (5, 100)
    result: dict[str, Any] = {"seconds": seconds, "connections": CONNECTIONS,
                              "targets": {"trivial_ratio": 0.5, "db_read_ratio": 0.5}}
    saved, rest_bench.CONNECTIONS = rest_bench.CONNECTIONS, CONNECTIONS
    try:
        for dialect in [d for d in os.environ.get("WOS_BENCH_DIALECTS", "sqlite,postgres").split(",") if d]:
            result[dialect] = run_dialect(dialect, seconds, samples)
    finally:
        rest_bench.CONNECTIONS = saved
    return result
