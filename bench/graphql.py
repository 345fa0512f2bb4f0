"""GraphQL: the filtered list beside the same REST call, and schema build time
for a 200-collection schema.

List. The REST suite's data set (100k rows, SQLite and PostgreSQL) and its list
call, ``GET /api/items/bench?filter={"score":{"_gte":900}}&sort=-score&limit=20``,
against the same list as a GraphQL query selecting the same six fields, with wrk
at 32 connections on one server in one run. Target: GraphQL at >= 0.7x REST's
requests/s.

Build. Builds the admin's GraphQL schema (SDL generated from the live metadata, then a
tartiflette engine with its resolvers) for 200 collections of 8 fields each, 199
of them with an m2o relation to the previous one (so also 199 o2m aliases).
Baseline, same run, same SDL: graphql-core's ``build_schema``, which parses and
validates the document but builds no executor. Target: under 0.5 s.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import tempfile
import time
from typing import Any

COLLECTIONS = 200

FIELDS = [
    {"field": "title", "type": "string"},
    {"field": "body", "type": "text"},
    {"field": "score", "type": "integer"},
    {"field": "ratio", "type": "float"},
    {"field": "price", "type": "decimal"},
    {"field": "done", "type": "boolean"},
    {"field": "meta", "type": "json"},
    {"field": "at", "type": "datetime"},
]


async def _measure(collections: int, runs: int) -> dict[str, Any]:
    from aiohttp.test_utils import TestServer
    from graphql import build_schema
    from workeros_graphql import ENGINES

    from workeros.accountability import Accountability
    from workeros.config import Settings
    from workeros.http.app import create_app
    from workeros.http.keys import SERVICES

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(env={}, cli={"data_dir": tmp, "database.url": f"sqlite:///{tmp}/bench.db",
                                         "log.access": False})
        server = TestServer(await create_app(settings))
        await server.start_server()
        try:
            services = server.app[SERVICES]
            admin = Accountability.system()
            for i in range(collections):
                await services.schema.create_collection(admin, {"collection": f"c{i:03d}", "fields": FIELDS})
                if i:
                    await services.schema.create_relation(admin, {
                        "collection": f"c{i:03d}", "field": "parent", "related_collection": f"c{i - 1:03d}",
                        "one_field": "children"})
            engines = next(sub[ENGINES] for sub in server.app._subapps if ENGINES in sub)
            await engines.settled()
            builds, baselines = [], []
            for _ in range(runs):
                start = time.perf_counter()
                entry = await engines._build(admin)
                builds.append(time.perf_counter() - start)
                start = time.perf_counter()
                build_schema(entry.built.sdl)
                baselines.append(time.perf_counter() - start)
            sdl_bytes = len(entry.built.sdl)
        finally:
            await server.close()
    return {"collections": collections, "sdl_bytes": sdl_bytes, "runs": runs,
            "build_s": statistics.median(builds), "baseline_s": statistics.median(baselines)}


GRAPHQL_LIST = ('{ bench(filter: {score: {_gte: 900}}, sort: ["-score"], limit: 20) '
                '{ id title score category created body } }')


def _list_vs_rest(dialect: str, seconds: int) -> dict[str, Any]:
    from bench import rest

    graphql_lua = (
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(json.dumps({'query': GRAPHQL_LIST}))}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    with rest.bench_database(dialect) as (url, work), rest.seeded_workeros(url, work) as base:
        rest_rows = json.loads(rest._request(base + rest.LIST_PATH))["data"]
        graphql_rows = json.loads(rest._request(base + "/api/graphql", "POST",
                                                json.dumps({"query": GRAPHQL_LIST}).encode()))["data"]["bench"]
        if graphql_rows != rest_rows:
            raise RuntimeError("the GraphQL query and the REST call returned different rows")
        out: dict[str, Any] = rest._cases(base, seconds, (("rest", rest.LIST_PATH, None),
                                                           ("graphql", "/api/graphql", graphql_lua)))
    out["rps_ratio"] = out["graphql"]["rps"] / out["rest"]["rps"]
    print(f"  {dialect:<8} list  graphql {out['graphql']['rps']:8.0f} req/s p99 {out['graphql']['p99_ms']:6.1f} ms | "
          f"rest {out['rest']['rps']:8.0f} req/s p99 {out['rest']['p99_ms']:6.1f} ms | "
          f"ratio {out['rps_ratio']:4.2f}x")
    return out


def run(quick: bool = False) -> dict[str, Any]:
    from bench.common import report

    result: dict[str, Any] = {"targets": {"list_rps_ratio": 0.7, "build_s": 0.5}}
    if shutil.which("wrk") is None:
        print("  wrk is not installed: the list comparison is skipped (make bench installs it)")
    else:
        dialects = [d for d in os.environ.get("WOS_BENCH_DIALECTS", "sqlite,postgres").split(",") if d]
        result["list"] = {d: _list_vs_rest(d, 3 if quick else 10) for d in dialects}
    build = asyncio.run(_measure(50 if quick else COLLECTIONS, 3 if quick else 5))
    build["report"] = report(f"schema build, {build['collections']} collections (median)",
                             build["build_s"], build["baseline_s"])
    result["build"] = build
    return result
