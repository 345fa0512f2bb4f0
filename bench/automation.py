"""Webhooks and flows: what they cost a write, and how fast a delivery arrives.

Same run, same database, same server: item creates with wrk at 32 connections
with nothing listening, then with 5 active webhooks on the collection and one
action flow (event ``items.create``, one ``transform`` step) — target >= 0.85x
the creates/s without. Then commit -> delivery latency: one webhook, creates
paced at 100/s (and 25/s) for 10 s, the receiver (a real aiohttp server on loopback)
timing each delivery against the ``timestamp`` in its body (set in the
write's transaction, just before the commit).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import shutil
import statistics
import threading
import time
from typing import Any

from bench.common import PYTHON
from bench.rest import (
    BENCH_COLLECTION,
    CREATE_LUA,
    WORKEROS_SERVER,
    _port,
    _request,
    _start,
    _stop,
    bench_database,
    wrk,
)

#: Paced create rates for the latency measure (events per second).
RATES = (100, 25)
SERVER = WORKEROS_SERVER.replace('cli = {"data_dir"', 'cli = {"network.allow_private": True, "data_dir"')


class Receiver:
    """An aiohttp server on its own thread: counts deliveries and their latency."""

    def __init__(self) -> None:
        self.port = _port()
        self.count = 0
        self.latencies: list[float] = []
        self.measure = False
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        from aiohttp import web

        async def handle(request: web.Request) -> web.Response:
            body = await request.read()
            self.count += 1
            if self.measure:
                stamp = json.loads(body)["timestamp"]
                sent = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
                self.latencies.append((dt.datetime.now(dt.UTC) - sent).total_seconds() * 1000)
            return web.Response(status=204)

        async def start() -> None:
            app = web.Application()
            app.router.add_post("/{tail:.*}", handle)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", self.port).start()
            self.ready.set()

        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(start())
        self.loop.run_forever()

    def start(self) -> Receiver:
        self.thread.start()
        self.ready.wait(10)
        return self

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)


def _post(base: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    return json.loads(_request(base + path, "POST", json.dumps(body).encode()))["data"]


def _wait(check: Any, timeout: float) -> float:
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout:
            break
        time.sleep(0.05)
    return time.monotonic() - started


def _paced(base: str, rate: int, seconds: int) -> None:
    import aiohttp

    async def go() -> None:
        async with aiohttp.ClientSession() as session:
            body = {"title": "paced", "score": 1, "category": "c", "body": "x"}
            interval = 1 / rate
            start = time.monotonic()
            tasks = []
            for i in range(rate * seconds):
                delay = start + i * interval - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(session.post(base + "/api/items/bench", json=body)))
            for response in await asyncio.gather(*tasks):
                response.release()

    asyncio.run(go())


def run_dialect(dialect: str, seconds: int) -> dict[str, Any]:
    receiver = Receiver().start()
    latency: dict[int, dict[str, float]] = {}
    try:
        with bench_database(dialect) as (url, work):
            port = _port()
            proc = _start([PYTHON, "-c", SERVER, str(port), url, str(work / "data"), ""], port,
                          "/api/server/health")
            base = f"http://127.0.0.1:{port}"
            try:
                _request(base + "/api/collections", "POST", BENCH_COLLECTION)
                target = base + "/api/items/bench"
                wrk(target, 1, CREATE_LUA)  # warm-up
                bare = wrk(target, seconds, CREATE_LUA)
                hooks = [_post(base, "/api/webhooks", {"name": f"h{i}", "url": f"http://127.0.0.1:{receiver.port}/{i}",
                                                       "events": ["items.create"], "collections": ["bench"]})
                         for i in range(5)]
                flow = _post(base, "/api/flows", {"name": "on create", "trigger": "event",
                                                  "options": {"events": ["items.create"], "collections": ["bench"]},
                                                  "operations": [{"key": "shape", "type": "transform", "options": {
                                                      "json": {"title": "{{ $trigger.payload.title }}"}}}]})
                time.sleep(0.5)
                wrk(target, 1, CREATE_LUA)  # warm-up with the listeners
                received_before = receiver.count
                loaded = wrk(target, seconds, CREATE_LUA)
                expected = 5 * int(loaded["rps"] * seconds)
                drain = _wait(lambda: receiver.count - received_before >= expected * 0.95, 600)
                # Latency: one webhook, no flow, 100 creates/s.
                for hook in hooks[1:]:
                    _request(base + f"/api/webhooks/{hook['id']}", "PATCH", b'{"active": false}')
                _request(base + f"/api/flows/{flow['id']}", "PATCH", b'{"status": "inactive"}')
                time.sleep(1.5)
                for rate in RATES:
                    receiver.measure, receiver.latencies = True, []
                    _paced(base, rate, 10)
                    _wait(lambda rate=rate: len(receiver.latencies) >= rate * 10, 120)
                    receiver.measure = False
                    latency[rate] = _percentiles(receiver.latencies)
                    time.sleep(1.0)
            finally:
                _stop(proc)
    finally:
        receiver.stop()
    ratio = loaded["rps"] / bare["rps"]
    print(f"  {dialect:<8} create bare {bare['rps']:7.0f} req/s p99 {bare['p99_ms']:6.1f} ms | 5 webhooks + 1 flow "
          f"{loaded['rps']:7.0f} req/s p99 {loaded['p99_ms']:6.1f} ms | ratio {ratio:4.2f}x | outbox drained "
          f"{drain:5.1f} s after")
    for rate, lat in latency.items():
        print(f"  {dialect:<8} commit->delivery at {rate}/s: p50 {lat['p50']:7.1f} ms p99 {lat['p99']:7.1f} ms "
              f"({lat['deliveries']:.0f} deliveries)")
    return {"bare": bare, "webhooks_and_flow": loaded, "rps_ratio": ratio, "drain_seconds": drain,
            "latency_ms": {str(rate): lat for rate, lat in latency.items()}}


def _percentiles(values: list[float]) -> dict[str, float]:
    lat = sorted(values)
    if not lat:
        return {"p50": float("nan"), "p99": float("nan"), "deliveries": 0}
    return {"p50": statistics.median(lat), "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))],
            "deliveries": len(lat)}


def run(quick: bool = False) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        print("  wrk is not installed: skipped (make bench installs it)")
        return {"skipped": "wrk not installed"}
    seconds = 3 if quick else 5
    result: dict[str, Any] = {"seconds": seconds, "targets": {"rps_ratio": 0.85}}
    for dialect in [d for d in os.environ.get("WOS_BENCH_DIALECTS", "sqlite,postgres").split(",") if d]:
        result[dialect] = run_dialect(dialect, seconds)
    return result
