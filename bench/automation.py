"""Webhooks and flows: what they cost a write, and how fast a delivery arrives.

Same run, same database, same server: item creates with wrk at 32 connections
with nothing listening, then with 5 active webhooks on the collection and one
action flow (event ``items.create``, one ``transform`` step) — target >= 0.85x
the creates/s without. Then commit -> delivery latency: one webhook, creates
paced at 100/s (and 25/s) for 10 s, the receiver (a real aiohttp server on loopback)
timing each delivery against the ``timestamp`` in its body (set in the
write's transaction, just before the commit).

Each dialect runs twice: with the dispatcher in the server's process (the
default), then with the server only queueing (``webhooks.dispatch`` off) and
``workeros dispatcher`` sending from a process of its own. On SQLite there is
no bus between processes, so that dispatcher polls (every 50 ms here).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import threading
import time
from typing import Any

from bench.common import PYTHON, clean_env
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
#: The server of the separate-process mode: it queues, ``workeros dispatcher`` sends.
QUEUE_ONLY = SERVER.replace('cli = {"network.allow_private": True,',
                            'cli = {"network.allow_private": True, "webhooks.dispatch": False,')
MODES = ("in-process", "separate")


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


def _ratio(part: float, whole: float) -> float | None:
    """``part / whole``; ``None`` when a phase measured nothing (no create
    answered in it), which the report prints as n/a."""
    return part / whole if whole else None


def _x(ratio: float | None) -> str:
    return "  n/a" if ratio is None else f"{ratio:4.2f}x"


def _cpu(proc: subprocess.Popen | None) -> float:
    """CPU seconds (user + system) ``proc`` has used so far."""
    if proc is None:
        return 0.0
    with open(f"/proc/{proc.pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _dispatcher(url: str, data_dir: str) -> subprocess.Popen:
    env = clean_env(WORKEROS_NETWORK_ALLOW_PRIVATE="true", WORKEROS_WEBHOOKS_POLL_SECONDS="0.05",
                    WORKEROS_LOG_ACCESS="false")
    proc = subprocess.Popen([PYTHON, "-m", "workeros", "--data-dir", data_dir, "dispatcher", "--database-url", url],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # "sending webhook deliveries as ..." once it runs
    if not line.startswith(b"sending"):
        proc.kill()
        raise RuntimeError("workeros dispatcher did not start")
    return proc


def run_dialect(dialect: str, seconds: int, mode: str = "in-process") -> dict[str, Any]:
    receiver = Receiver().start()
    latency: dict[int, dict[str, float]] = {}
    try:
        with bench_database(dialect) as (url, work):
            port = _port()
            proc = _start([PYTHON, "-c", SERVER if mode == "in-process" else QUEUE_ONLY, str(port), url,
                           str(work / "data"), ""], port, "/api/server/health")
            dispatcher = _dispatcher(url, str(work / "data")) if mode == "separate" else None
            base = f"http://127.0.0.1:{port}"
            try:
                _request(base + "/api/collections", "POST", BENCH_COLLECTION)
                target = base + "/api/items/bench"
                wrk(target, 1, CREATE_LUA)  # warm-up
                cpu = _cpu(proc)
                bare = wrk(target, seconds, CREATE_LUA)
                # CPU per create: what a create costs the server whatever else the machine runs.
                bare["api_cpu_ms"] = (_cpu(proc) - cpu) * 1000 / max(1.0, bare["rps"] * seconds)
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
                cpu, sender_cpu = _cpu(proc), _cpu(dispatcher)
                loaded = wrk(target, seconds, CREATE_LUA)
                expected = 5 * int(loaded["rps"] * seconds)
                drain = _wait(lambda: receiver.count - received_before >= expected * 0.95, 600)
                # Until the outbox is drained: the deliveries' cost is counted too.
                creates = max(1.0, loaded["rps"] * seconds)
                loaded["api_cpu_ms"] = (_cpu(proc) - cpu) * 1000 / creates
                loaded["dispatcher_cpu_ms"] = (_cpu(dispatcher) - sender_cpu) * 1000 / creates
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
                if dispatcher is not None:
                    _stop(dispatcher)
                _stop(proc)
    finally:
        receiver.stop()
    ratio = _ratio(loaded["rps"], bare["rps"])
    print(f"  {dialect:<8} dispatcher {mode}")
    print(f"  {dialect:<8} create bare {bare['rps']:7.0f} req/s p99 {bare['p99_ms']:6.1f} ms | 5 webhooks + 1 flow "
          f"{loaded['rps']:7.0f} req/s p99 {loaded['p99_ms']:6.1f} ms | ratio {_x(ratio)} | outbox drained "
          f"{drain:5.1f} s after")
    cpu_ratio = _ratio(bare["api_cpu_ms"], loaded["api_cpu_ms"])
    print(f"  {dialect:<8} server CPU per create: bare {bare['api_cpu_ms']:.2f} ms | 5 webhooks + 1 flow "
          f"{loaded['api_cpu_ms']:.2f} ms (+ dispatcher process {loaded['dispatcher_cpu_ms']:.2f} ms) | "
          f"ratio {_x(cpu_ratio)}")
    for rate, lat in latency.items():
        print(f"  {dialect:<8} commit->delivery at {rate}/s: p50 {lat['p50']:7.1f} ms p99 {lat['p99']:7.1f} ms "
              f"({lat['deliveries']:.0f} deliveries)")
    return {"dispatcher": mode, "bare": bare, "webhooks_and_flow": loaded, "rps_ratio": ratio, "cpu_ratio": cpu_ratio,
            "drain_seconds": drain,
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
    modes = [m for m in os.environ.get("WOS_BENCH_DISPATCHER", ",".join(MODES)).split(",") if m in MODES]
    for dialect in [d for d in os.environ.get("WOS_BENCH_DIALECTS", "sqlite,postgres").split(",") if d]:
        for mode in modes:
            result[f"{dialect}/{mode}"] = run_dialect(dialect, seconds, mode)
    return result
