"""Realtime: fan-out latency to 1,000 and to 10,000 SSE subscribers of mixed
roles, and server memory per idle SSE subscriber at 10,000 connections.

Latency is measured from just before the write request is sent to the moment
each subscriber has read the event (so it includes the write itself and the
commit), p50 and p99 over every delivery. Both servers first fan out a few
warm-up writes that are not measured (the first events on a fresh server pay
for first-use caches and imports, once per process, not per event). Memory is the server process's
resident set growth divided by the number of idle connections.

Baseline, same run, same client code: a bare aiohttp-sse server that
broadcasts every published message to every connected stream with no
permission checks. Targets: p99 <= 100 ms at 1,000 subscribers; p99 within
1.1x the baseline's at 10,000; <= 40 KB per idle subscriber.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import PYTHON, clean_env, wait_http_ok

#: Fan-out sizes (subscribers) and events sent to each size.
FANOUT = ((1000, 40), (10_000, 20))
QUICK_FANOUT = ((200, 10), (1000, 10))
#: Writes fanned out, and not measured, before the measured ones.
WARMUP = 3
IDLE = 10_000

BASELINE_SERVER = r"""
import asyncio, sys
from aiohttp import web
from aiohttp_sse import sse_response

streams = set()

async def subscribe(request):
    queue = asyncio.Queue()
    streams.add(queue)
    try:
        async with sse_response(request) as resp:
            await resp.send('{"event":"ready"}', event="ready")
            while True:
                data = await queue.get()
                await resp.send(data, event="create")
    finally:
        streams.discard(queue)
    return resp

async def publish(request):
    body = await request.text()
    for queue in list(streams):
        queue.put_nowait('{"event":"create","collection":"ticks","data":[' + body + ']}')
    return web.json_response({"data": None})

async def health(request):
    return web.json_response({"data": {"status": "ok"}})

app = web.Application()
app.router.add_get("/api/realtime/items/ticks", subscribe)
app.router.add_post("/api/items/ticks", publish)
app.router.add_get("/api/server/health", health)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


def _port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Server:
    def __init__(self, argv: list[str], port: int, env: dict[str, str]) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        try:
            wait_http_ok(self.url + "/api/server/health", self.proc, timeout=60)
        except Exception:
            self.proc.kill()
            raise RuntimeError(f"server did not start: {self.proc.stderr.read().decode()[-2000:]}") from None

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def _call(http: aiohttp.ClientSession, method: str, url: str, token: str | None = None,
                body: Any = None) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.request(method, url, json=body, headers=headers) as r:
        text = await r.text()
        if r.status >= 300:
            raise RuntimeError(f"{method} {url} -> {r.status}: {text[:300]}")
        return json.loads(text) if text else None


async def _prepare_workeros(http: aiohttp.ClientSession, base: str) -> tuple[list[str], bool]:
    """An admin, a collection, and (where roles exist) three roles that see
    different rows and fields. Returns one token per subscriber kind."""
    creds = {"email": "admin@example.com", "password": "correct horse battery"}
    await _call(http, "POST", base + "/api/auth/sign-up", body=creds)
    admin = (await _call(http, "POST", base + "/api/auth/login", body={**creds, "mode": "json"}))["data"]["access_token"]
    await _call(http, "POST", base + "/api/collections", admin, {"collection": "ticks", "fields": [
        {"field": "kind", "type": "string"}, {"field": "note", "type": "string"},
        {"field": "sent_at", "type": "float"}]})
    tokens = [admin]
    try:
        rules = {
            "even_reader": {"filter": {"kind": {"_eq": "even"}}, "fields": ["*"]},
            "odd_reader": {"filter": {"kind": {"_eq": "odd"}}, "fields": ["*"]},
            "narrow_reader": {"filter": None, "fields": ["id", "kind", "sent_at"]},
        }
        for name, rule in rules.items():
            role = (await _call(http, "POST", base + "/api/roles", admin, {"name": name}))["data"]["id"]
            await _call(http, "POST", base + "/api/permissions", admin, {
                "role": role, "collection": "ticks", "action": "read", **rule})
            email = f"{name}@example.com"
            await _call(http, "POST", base + "/api/users", admin,
                        {"email": email, "password": "correct horse battery", "role": role})
            login = await _call(http, "POST", base + "/api/auth/login",
                                body={"email": email, "password": "correct horse battery", "mode": "json"})
            tokens.append(login["data"]["access_token"])
    except RuntimeError as exc:
        print(f"  roles unavailable ({exc}); every subscriber is an admin")
        return tokens, False
    return tokens, True


async def _open_streams(http: aiohttp.ClientSession, url: str, tokens: list[str], n: int,
                        on_event: Any | None) -> list[asyncio.Task[None]]:
    ready = asyncio.Semaphore(0)
    failed: list[BaseException] = []

    async def one(i: int) -> None:
        try:
            await stream(i)
        except (aiohttp.ClientError, RuntimeError) as exc:
            failed.append(exc)
            ready.release()  # the wait below stops at once
            raise

    async def stream(i: int) -> None:
        token = tokens[i % len(tokens)]
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with http.get(url, headers=headers, timeout=aiohttp.ClientTimeout(total=None)) as r:
            if r.status != 200:
                raise RuntimeError(f"stream {i}: {r.status} {await r.text()}")
            event = None
            while True:
                line = await r.content.readline()
                if not line:
                    return
                line = line.rstrip(b"\r\n")
                if line.startswith(b"event:"):
                    event = line[6:].strip()
                    if event == b"ready":
                        ready.release()
                elif line.startswith(b"data:") and event == b"create" and on_event is not None:
                    on_event(i, line[5:])

    tasks = [asyncio.create_task(one(i)) for i in range(n)]
    # The streams open concurrently, so on a loaded machine the first ``ready``
    # of 10,000 can take minutes: the wait for each is bounded by the size.
    for _ in range(n):
        await asyncio.wait_for(ready.acquire(), max(120, n / 20))
        if failed:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise RuntimeError(f"{len(failed)} of {n} streams failed: {failed[0]!r}")
    return tasks


async def _fanout(base: str, tokens: list[str], n: int, events: int, publish_token: str | None) -> dict[str, Any]:
    latencies: list[float] = []
    deliveries = 0
    measuring = False

    def on_event(i: int, data: bytes) -> None:
        nonlocal deliveries
        now = time.time()
        if not measuring:
            return
        for row in json.loads(data)["data"]:
            if "sent_at" in row:
                latencies.append((now - row["sent_at"]) * 1000)
                deliveries += 1

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        tasks = await _open_streams(http, base + "/api/realtime/items/ticks", tokens, n, on_event)
        for k in range(WARMUP):
            await _call(http, "POST", base + "/api/items/ticks", publish_token,
                        {"kind": "even" if k % 2 == 0 else "odd", "note": "warm-up", "sent_at": time.time()})
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)
        measuring = True
        for k in range(events):
            await _call(http, "POST", base + "/api/items/ticks", publish_token,
                        {"kind": "even" if k % 2 == 0 else "odd", "note": "x", "sent_at": time.time()})
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    latencies.sort()
    return {
        "subscribers": n, "events": events, "deliveries": deliveries,
        "p50_ms": round(statistics.median(latencies), 2) if latencies else None,
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 2) if latencies else None,
    }


async def _idle_memory(server: Server, tokens: list[str], n: int) -> dict[str, Any]:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        warm = await _open_streams(http, server.url + "/api/realtime/items/ticks", tokens[:1], 50, None)
        await asyncio.sleep(0.5)
        before = _rss_kb(server.proc.pid)
        tasks = await _open_streams(http, server.url + "/api/realtime/items/ticks", tokens[:1], n, None)
        await asyncio.sleep(1.0)
        after = _rss_kb(server.proc.pid)
        for task in tasks + warm:
            task.cancel()
        await asyncio.gather(*tasks, *warm, return_exceptions=True)
    return {"connections": n, "rss_before_kb": before, "rss_after_kb": after,
            "kb_per_subscriber": round((after - before) / n, 2)}


def _workeros_server(data_dir: str) -> Server:
    port = _port()
    # No connection cap, and no header deadline that a loaded machine opening
    # 10,000 streams at once would miss (the bare baseline has neither).
    env = clean_env(WORKEROS_REALTIME_MAX_CONNECTIONS_PER_USER="1000000", WORKEROS_SERVER_MAX_CONNECTIONS="0",
                    WORKEROS_SERVER_HEADER_TIMEOUT="600", WORKEROS_LOG_ACCESS="0")
    return Server([PYTHON, "-m", "workeros", "--data-dir", data_dir, "serve", "--port", str(port)], port, env)


def _baseline_server() -> Server:
    port = _port()
    return Server([PYTHON, "-c", BASELINE_SERVER, str(port)], port, clean_env())


def run(quick: bool = False) -> dict[str, Any]:
    sizes = QUICK_FANOUT if quick else FANOUT
    idle = 1000 if quick else IDLE
    result: dict[str, Any] = {"targets": {"fanout_p99_ms_at_1000": 100, "fanout_p99_ratio_at_10000": 1.1,
                                          "kb_per_idle_subscriber": 40}}

    async def measure() -> None:
        # Each size gets fresh servers (the bare baseline does not recover its
        # streams of an earlier round), both running side by side and measured
        # one after the other, so a change in the machine's load falls on both.
        result["workeros"], result["baseline"] = {"fanout": {}}, {"fanout": {}}
        for n, events in [*sizes, (None, 0)]:
            with tempfile.TemporaryDirectory() as tmp:
                server, baseline = _workeros_server(tmp), _baseline_server()
                try:
                    async with aiohttp.ClientSession() as http:
                        tokens, mixed = await _prepare_workeros(http, server.url)
                    result["mixed_roles"] = mixed
                    if n is None:
                        result["workeros"]["idle"] = await _idle_memory(server, tokens, idle)
                        result["baseline"]["idle"] = await _idle_memory(baseline, [""], idle)
                    else:
                        result["workeros"]["fanout"][str(n)] = await _fanout(server.url, tokens, n, events,
                                                                             tokens[0])
                        result["baseline"]["fanout"][str(n)] = await _fanout(baseline.url, [""], n, events, None)
                finally:
                    server.stop()
                    baseline.stop()

    asyncio.run(measure())
    w, b = result["workeros"], result["baseline"]
    result["ratios"] = {
        **{f"fanout_p99_at_{n}": round(w["fanout"][str(n)]["p99_ms"] / b["fanout"][str(n)]["p99_ms"], 2)
           for n, _ in sizes},
        "kb_per_idle_subscriber": round(w["idle"]["kb_per_subscriber"] / max(b["idle"]["kb_per_subscriber"], 0.01),
                                        2),
    }
    for n, _ in sizes:
        wf, bf = w["fanout"][str(n)], b["fanout"][str(n)]
        print(f"  fan-out to {n}: workeros p50 {wf['p50_ms']} ms, p99 {wf['p99_ms']} ms ({wf['deliveries']} "
              f"deliveries); baseline p50 {bf['p50_ms']} ms, p99 {bf['p99_ms']} ms; ratio p99 "
              f"{result['ratios'][f'fanout_p99_at_{n}']}x")
    print(f"  idle memory at {idle}: workeros {w['idle']['kb_per_subscriber']} KB/subscriber, "
          f"baseline {b['idle']['kb_per_subscriber']} KB/subscriber")
    return result


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
