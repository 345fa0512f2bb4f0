"""REST items: a filtered and sorted list (limit 20), get by id and create, on
100k rows, on SQLite and PostgreSQL, with wrk at 32 connections.

Baseline, same run, same database: a bare aiohttp app whose handlers run the
same SQL through the same driver (SQLAlchemy async engine) and return the rows
as JSON. Targets: list and get at >= 0.5x the baseline's requests/s, create at
>= 0.4x (it also writes an activity and a revision row), p99 <= 3x.

The workeros server runs as ``workeros serve`` would, with one extra bench-only
plugin that makes every caller an admin (sign-in is not what is measured).
``WOS_BENCH_DIALECTS=sqlite`` limits the dialects; ``WOS_BENCH_BUS=memory``
replaces the default event bus (PostgreSQL LISTEN/NOTIFY on PostgreSQL) to show
what publishing item events costs.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.common import PYTHON, clean_env, wait_http_ok

ROWS = 100_000
CONNECTIONS = 32
PG_ADMIN = os.environ.get("WOS_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
LIST_FILTER = '{"score":{"_gte":900}}'
LIST_PATH = "/api/items/bench?filter=%7B%22score%22%3A%7B%22_gte%22%3A900%7D%7D&sort=-score&limit=20"

WORKEROS_SERVER = r"""
import sys
from aiohttp import web
from workeros.accountability import Accountability
from workeros.http.app import create_app
from workeros.config import Settings
from workeros.hookspecs import hookimpl
from workeros.http.keys import ACCOUNTABILITY
from workeros.plugins import Plugins

class BenchAdmin:
    name = "bench-admin"

    @hookimpl
    def workeros_after_app_created(self, app):
        acc = Accountability(user="bench", role="admin", admin=True)

        @web.middleware
        async def admin(request, handler):
            request[ACCOUNTABILITY] = acc
            return await handler(request)

        app.middlewares.append(admin)

port, url, data_dir = int(sys.argv[1]), sys.argv[2], sys.argv[3]
cli = {"data_dir": data_dir, "database.url": url, "log.access": False}
if len(sys.argv) > 4 and sys.argv[4]:
    cli["realtime.bus"] = sys.argv[4]
settings = Settings(env={}, cli=cli)
plugins = Plugins(load=None, disable=(), strict=False, plugins_dir=None)
plugins.load_all()
plugins.register(BenchAdmin(), name="bench-admin", distribution="bench")
web.run_app(create_app(settings, plugins=plugins), host="127.0.0.1", port=port, print=None, access_log=None)
"""

BASELINE_SERVER = r"""
import asyncio, datetime, sys
import orjson
import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import create_async_engine

port, url = int(sys.argv[1]), sys.argv[2]
sqlite = url.startswith("sqlite")
engine = create_async_engine(url, pool_size=5)
lock = asyncio.Lock()
COLS = "id, title, score, category, created, body"
LIST = sa.text(f"SELECT {COLS} FROM c_bench WHERE c_bench.score >= :v ORDER BY c_bench.score DESC NULLS FIRST, "
               "c_bench.id ASC LIMIT :n")
GET = sa.text(f"SELECT {COLS} FROM c_bench WHERE c_bench.id = :id LIMIT :n")
INSERT = sa.text("INSERT INTO c_bench (title, score, category, body) VALUES (:title, :score, :category, :body) "
                 f"RETURNING {COLS}")

def out(rows):
    return [dict(r) for r in rows]

def respond(data, status=200):
    return web.Response(body=orjson.dumps({"data": data}, option=orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC),
                        status=status, content_type="application/json")

async def list_items(request):
    async with engine.connect() as conn:
        rows = (await conn.execute(LIST, {"v": 900, "n": 20})).mappings().all()
    return respond(out(rows))

async def get_item(request):
    async with engine.connect() as conn:
        rows = (await conn.execute(GET, {"id": int(request.match_info["id"]), "n": 1})).mappings().all()
    if not rows:
        return respond(None, 404)
    return respond(out(rows)[0])

async def create_item(request):
    body = orjson.loads(await request.read())
    async def write():
        async with engine.begin() as conn:
            return (await conn.execute(INSERT, body)).mappings().one()
    if sqlite:
        async with lock:
            row = await write()
    else:
        row = await write()
    return respond(dict(row))

app = web.Application()
app.router.add_get("/api/items/bench", list_items)
app.router.add_get("/api/items/bench/{id}", get_item)
app.router.add_post("/api/items/bench", create_item)
web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)
"""

GET_LUA = """
math.randomseed(7)
request = function()
  return wrk.format("GET", "/api/items/bench/" .. math.random(1, ROWS))
end
""".replace("ROWS", str(ROWS))

CREATE_LUA = """
wrk.method = "POST"
wrk.body = '{"title":"new item","score":5,"category":"c1","body":"created by the benchmark"}'
wrk.headers["Content-Type"] = "application/json"
"""


def _port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(argv: list[str], port: int, ready_path: str) -> subprocess.Popen:
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=clean_env())
    try:
        wait_http_ok(f"http://127.0.0.1:{port}{ready_path}", proc, timeout=60)
    except Exception:
        proc.kill()
        raise RuntimeError(f"server did not start: {proc.stderr.read().decode()[-2000:]}") from None
    return proc


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


def _request(url: str, method: str = "GET", body: bytes | None = None) -> bytes:
    req = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.read()


_LATENCY = re.compile(r"^\s*99%\s+([\d.]+)(us|ms|s)\s*$", re.M)
_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_NON2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")


def wrk(url: str, seconds: int, script: str | None = None) -> dict[str, float]:
    argv = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", url]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        if script:
            f.write(script)
    if script:
        argv[1:1] = ["-s", f.name]
    try:
        done = subprocess.run(argv, capture_output=True, text=True)
    finally:
        os.unlink(f.name)
    text = done.stdout
    found = _RPS.search(text)
    if found is None:  # wrk failed outright (its socket errors are otherwise counted, not fatal)
        print(f"  wrk failed on {url}: {done.stderr.strip()[-300:]}")
        return {"rps": float("nan"), "p99_ms": float("nan"), "non_2xx": -1}
    rps = float(found.group(1))
    m = _LATENCY.search(text)
    p99 = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)] if m else float("nan")
    errors = _NON2XX.search(text)
    return {"rps": rps, "p99_ms": p99, "non_2xx": int(errors.group(1)) if errors else 0}


async def _seed(url: str) -> None:
    import datetime as dt
    import random

    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    rnd = random.Random(1)
    table = sa.table("c_bench", sa.column("title"), sa.column("score"), sa.column("category"),
                     sa.column("created"), sa.column("body"))
    base = dt.datetime(2024, 1, 1)
    try:
        async with engine.begin() as conn:
            for start in range(0, ROWS, 5000):
                rows = [{"title": f"item {i}", "score": rnd.randrange(1000), "category": f"c{i % 10}",
                         "created": base + dt.timedelta(minutes=i), "body": "lorem ipsum " * 4}
                        for i in range(start, min(ROWS, start + 5000))]
                await conn.execute(table.insert(), rows)
    finally:
        await engine.dispose()


def _driver_url(url: str) -> str:
    if url.startswith("sqlite"):
        return url.replace("sqlite://", "sqlite+aiosqlite://", 1)
    return url.replace("postgresql://", "postgresql+asyncpg://", 1)


async def _pg_database(action: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN)
    try:
        if action == "create":
            await conn.execute(f'CREATE DATABASE "{name}"')
        else:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


BENCH_COLLECTION = (b'{"collection":"bench","fields":['
                    b'{"field":"title","type":"string"},{"field":"score","type":"integer","indexed":true},'
                    b'{"field":"category","type":"string"},{"field":"created","type":"datetime"},'
                    b'{"field":"body","type":"text"}]}')


@contextlib.contextmanager
def bench_database(dialect: str) -> Iterator[tuple[str, Path]]:
    """A fresh database (a file in a temporary directory, or a new PostgreSQL
    database) and a working directory, both gone afterwards."""
    work = Path(tempfile.mkdtemp(prefix="wos-bench-"))
    pg_name = None
    try:
        if dialect == "sqlite":
            url = f"sqlite:///{work / 'bench.db'}"
        else:
            pg_name = "wos_bench_" + uuid.uuid4().hex[:8]
            asyncio.run(_pg_database("create", pg_name))
            url = PG_ADMIN.rpartition("/")[0] + "/" + pg_name
        yield url, work
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if pg_name:
            asyncio.run(_pg_database("drop", pg_name))


@contextlib.contextmanager
def seeded_workeros(url: str, work: Path, bus: str = "") -> Iterator[str]:
    """A workeros server on ``url`` holding the ``bench`` collection and its
    rows; yields its base URL."""
    port = _port()
    proc = _start([PYTHON, "-c", WORKEROS_SERVER, str(port), url, str(work / "data"), bus], port,
                  "/api/server/health")
    base = f"http://127.0.0.1:{port}"
    try:
        _request(base + "/api/collections", "POST", BENCH_COLLECTION)
        asyncio.run(_seed(_driver_url(url)))
        yield base
    finally:
        _stop(proc)


def run_dialect(dialect: str, seconds: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with bench_database(dialect) as (url, work):
        with seeded_workeros(url, work, os.environ.get("WOS_BENCH_BUS", "")) as base:
            results["workeros"] = _cases(base, seconds)
        port = _port()
        proc = _start([PYTHON, "-c", BASELINE_SERVER, str(port), _driver_url(url)], port, "/api/items/bench/1")
        try:
            results["baseline"] = _cases(f"http://127.0.0.1:{port}", seconds)
        finally:
            _stop(proc)
    out: dict[str, Any] = {}
    for case in ("list", "get", "create"):
        w, b = results["workeros"][case], results["baseline"][case]
        out[case] = {"workeros": w, "baseline": b, "rps_ratio": w["rps"] / b["rps"],
                     "p99_ratio": w["p99_ms"] / b["p99_ms"]}
        print(f"  {dialect:<8} {case:<7} workeros {w['rps']:8.0f} req/s p99 {w['p99_ms']:7.1f} ms | baseline "
              f"{b['rps']:8.0f} req/s p99 {b['p99_ms']:7.1f} ms | ratio {out[case]['rps_ratio']:4.2f}x "
              f"p99 {out[case]['p99_ratio']:4.2f}x" + (f"  NON-2XX {w['non_2xx']}" if w["non_2xx"] else ""))
    return out


CASES = (("list", LIST_PATH, None), ("get", "/api/items/bench/1", GET_LUA), ("create", "/api/items/bench", CREATE_LUA))


def _cases(base: str, seconds: int, cases: tuple[tuple[str, str, str | None], ...] = CASES) -> dict[str, dict[str, float]]:
    """wrk on each (name, path, lua script) after a one-second warm-up."""
    out = {}
    for case, path, script in cases:
        wrk(base + path, 1, script)  # warm-up
        time.sleep(0.2)
        out[case] = wrk(base + path, seconds, script)
    return out


def run(quick: bool = False) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        print("  wrk is not installed: skipped (make bench installs it)")
        return {"skipped": "wrk not installed"}
    seconds = 3 if quick else 10
    result: dict[str, Any] = {"rows": ROWS, "connections": CONNECTIONS, "seconds": seconds,
                              "targets": {"list_get_rps_ratio": 0.5, "create_rps_ratio": 0.4, "p99_ratio": 3.0}}
    dialects = [d for d in os.environ.get("WOS_BENCH_DIALECTS", "sqlite,postgres").split(",") if d]
    for dialect in dialects:
        result[dialect] = run_dialect(dialect, seconds)
    return result
