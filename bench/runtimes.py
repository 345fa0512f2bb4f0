"""Runtimes: the ASGI adapter under uvicorn against ``workeros serve`` (native
aiohttp) on the same database and machine, the Lambda handler's cold start
against ``workeros serve``'s boot to a healthy answer, and N instances on one
PostgreSQL (Redis as the bus) against one.

Throughput is measured with wrk (GET of a small item list and of the health
check, 32 connections); both servers are started the same way, one after the
other, with the same SQLite database. Ratios are ASGI / native (target >= 0.8)
and Lambda cold start / serve boot.

Many instances: 1, 2 and 3 ``workeros serve`` processes on one PostgreSQL
database, loaded by three wrk clients at once (one connection pool each, the
clients spread over the instances: client-side balancing, so no proxy process
competes for the cores). The same three clients load the single instance, the
baseline. Ratios are N instances / one.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.common import PYTHON, clean_env, median_of, report, wait_http_ok

ADMIN = {"WORKEROS_ADMIN_EMAIL": "bench@wos.test", "WORKEROS_ADMIN_PASSWORD": "bench password 1234",
         "WORKEROS_AUTH_SECRET": "b" * 40, "WORKEROS_LOG_ACCESS": "0", "WORKEROS_LOG_LEVEL": "warning",
         "WORKEROS_SERVER_SHUTDOWN_TIMEOUT": "2"}


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def _port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(kind: str, data_dir: Path, port: int, **extra_env: str) -> subprocess.Popen:
    env = clean_env(**ADMIN, WORKEROS_DATA_DIR=str(data_dir), **extra_env)
    if kind == "native":
        argv = [PYTHON, "-m", "workeros", "--data-dir", str(data_dir), "serve", "--port", str(port)]
    else:
        argv = [PYTHON, "-m", "uvicorn", "workeros_asgi:app", "--port", str(port), "--log-level", "warning",
                "--no-access-log", "--loop", "asyncio"]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_http_ok(f"http://127.0.0.1:{port}/api/server/health", proc, timeout=300)
    return proc


def _token(base: str) -> str:
    body = json.dumps({"email": ADMIN["WORKEROS_ADMIN_EMAIL"], "password": ADMIN["WORKEROS_ADMIN_PASSWORD"],
                       "mode": "json"}).encode()
    req = urllib.request.Request(base + "/api/auth/login", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.load(r)["data"]["access_token"]


def _seed(base: str, token: str) -> None:
    def call(path: str, payload: Any) -> None:
        req = urllib.request.Request(base + path, data=json.dumps(payload).encode(), headers={
            "Content-Type": "application/json", "Authorization": f"Bearer {token}"})
        urllib.request.urlopen(req).read()

    call("/api/collections", {"collection": "notes", "fields": [{"field": "title", "type": "string"}]})
    call("/api/items/notes", [{"title": f"note {i}"} for i in range(20)])


def _wrk(url: str, seconds: int, headers: dict[str, str], threads: int = 2, connections: int = 32) -> float:
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for k, v in headers.items():
        argv += ["-H", f"{k}: {v}"]
    out = subprocess.run([*argv, url], capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    # Count only answers that succeeded: a 429 or 5xx is quick, not throughput.
    failed = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if failed:
        total = int(re.search(r"(\d+) requests in", out).group(1))
        print(f"  {url}: {failed.group(1)} of {total} answers were not 2xx (not counted)")
        rate *= 1 - int(failed.group(1)) / max(total, 1)
    return rate


def _throughput(kind: str, data_dir: Path, seconds: int, token: str) -> dict[str, float]:
    port = _port()
    proc = _start(kind, data_dir, port)
    try:
        base = f"http://127.0.0.1:{port}"
        auth = {"Authorization": f"Bearer {token}"}
        _wrk(base + "/api/server/health", 2, {})  # warm up
        return {"health": _wrk(base + "/api/server/health", seconds, {}),
                "list": _wrk(base + "/api/items/notes?limit=20", seconds, auth)}
    finally:
        _stop(proc)


COLD = """
import json, sys, time
began = time.perf_counter()
from workeros_lambda import LambdaHandler
handler = LambdaHandler()
event = {"version": "2.0", "rawPath": "/api/server/health", "rawQueryString": "", "headers": {},
         "requestContext": {"http": {"method": "GET", "path": "/api/server/health", "sourceIp": "1.2.3.4"}}}
response = handler(event, None)
assert response["statusCode"] == 200, response
first = time.perf_counter() - began
t = time.perf_counter(); handler(event, None); warm = time.perf_counter() - t
print(json.dumps({"cold": first, "warm": warm, "app": handler.cold_start}))
handler.close()
"""


def _lambda_cold(data_dir: Path) -> dict[str, float]:
    env = clean_env(**ADMIN, WORKEROS_DATA_DIR=str(data_dir))
    out = subprocess.run([PYTHON, "-c", COLD], capture_output=True, text=True, env=env, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _serve_boot(data_dir: Path) -> float:
    port = _port()
    began = time.perf_counter()
    proc = _start("native", data_dir, port)
    took = time.perf_counter() - began
    _stop(proc)
    return took


CLIENTS = 3


def _postgres_and_redis() -> bool:
    import socket

    for port in (5432, 6379):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        except OSError:
            return False
    return True


def _spread_load(bases: list[str], seconds: int, token: str) -> float:
    """Requests/s of ``CLIENTS`` wrk clients at once, client i on instance i mod N."""
    from concurrent.futures import ThreadPoolExecutor

    auth = {"Authorization": f"Bearer {token}"}
    with ThreadPoolExecutor(CLIENTS) as pool:
        rates = list(pool.map(lambda i: _wrk(bases[i % len(bases)] + "/api/items/notes?limit=20", seconds, auth,
                                             threads=1, connections=12), range(CLIENTS)))
    return sum(rates)


def _instances(seconds: int) -> dict[str, Any]:
    """1, 2, 3 instances on one PostgreSQL database with Redis as the bus."""
    from bench.rest import bench_database

    out: dict[str, Any] = {}
    with bench_database("postgres") as (url, work):
        env = {"WORKEROS_DATABASE_URL": url, "WORKEROS_REALTIME_BUS": "redis",
               "WORKEROS_REDIS_PREFIX": f"wos-bench-{work.name}:", "WORKEROS_DATABASE_POOL_SIZE": "10"}
        procs: list[subprocess.Popen] = []
        bases: list[str] = []
        try:
            samples: dict[int, list[float]] = {1: [], 2: [], 3: []}
            for n in (1, 2, 3):
                while len(procs) < n:  # one at a time: the first one migrates the database
                    port = _port()
                    procs.append(_start("native", work / f"i{len(procs)}", port, **env))
                    bases.append(f"http://127.0.0.1:{port}")
                if n == 1:
                    token = _token(bases[0])
                    _seed(bases[0], token)
                    _spread_load(bases, 2, token)  # warm up
                samples[n].append(_spread_load(bases, seconds, token))
            # Again in the other order (the idle instances stay up), so a change
            # of the machine's load during the run does not favour one side.
            for n in (3, 2, 1):
                samples[n].append(_spread_load(bases[:n], seconds, token))
            rates = {n: sum(v) / len(v) for n, v in samples.items()}
            out["instances_samples_rps"] = samples
            print("  samples (req/s, forward then reverse): "
                  + "; ".join(f"{n}: {', '.join(f'{x:.0f}' for x in v)}" for n, v in samples.items()))
            for n in (2, 3):
                out[f"instances_{n}_rps"] = report(f"{n} instances (PostgreSQL) list req/s vs one", rates[n],
                                                   rates[1], unit="r/s")
        finally:
            for proc in procs:
                _stop(proc)
    return out


def run(quick: bool = False) -> dict[str, Any]:
    seconds = 3 if quick else 10
    runs = 2 if quick else 5
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        port = _port()
        proc = _start("native", data_dir, port)
        try:
            base = f"http://127.0.0.1:{port}"
            token = _token(base)
            _seed(base, token)
        finally:
            _stop(proc)
        if shutil.which("wrk"):
            native = _throughput("native", data_dir, seconds, token)
            asgi = _throughput("asgi", data_dir, seconds, token)
            for name in ("health", "list"):
                result[f"asgi_{name}_rps"] = report(f"ASGI (uvicorn) {name} req/s vs workeros serve", asgi[name],
                                                    native[name], unit="r/s")
        else:
            print("  wrk not installed: ASGI throughput skipped")
        if shutil.which("wrk") and _postgres_and_redis():
            result.update(_instances(seconds))
        else:
            print("  wrk, PostgreSQL or Redis missing: the many-instance throughput is skipped")
        boot, _ = median_of(lambda: _serve_boot(data_dir), runs)
        colds = [_lambda_cold(data_dir) for _ in range(runs)]
        cold = sorted(c["cold"] for c in colds)[len(colds) // 2]
        result["lambda_cold_start"] = report("Lambda cold start (import + app + 1st call)", cold, boot)
        result["lambda_warm_call"] = {"value": sorted(c["warm"] for c in colds)[len(colds) // 2]}
        print(f"  Lambda warm call                             {result['lambda_warm_call']['value'] * 1000:8.2f} ms")
    return result
