"""GraphQL schema build time for a 200-collection schema.

Builds the admin's GraphQL schema (SDL generated from the live metadata, then a
tartiflette engine with its resolvers) for 200 collections of 8 fields each, 199
of them with an m2o relation to the previous one (so also 199 o2m aliases).
Baseline, same run, same SDL: graphql-core's ``build_schema``, which parses and
validates the document but builds no executor. Target: under 0.5 s.
"""

from __future__ import annotations

import asyncio
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
    from workeros.app import create_app
    from workeros.config import Settings
    from workeros.keys import SERVICES

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


def run(quick: bool = False) -> dict[str, Any]:
    from bench.common import report

    result = asyncio.run(_measure(50 if quick else COLLECTIONS, 3 if quick else 5))
    result["build"] = report(f"schema build, {result['collections']} collections (median)",
                             result["build_s"], result["baseline_s"])
    result["target_s"] = 0.5
    return result
