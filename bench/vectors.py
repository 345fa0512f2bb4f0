"""Vector search: recall@10 against the exact answer, queries per second against
a NumPy brute-force baseline over the same vectors in the same run, filtered
search latency (a role that may read 1 % of the rows), and storage per 100k
vectors.

Size: ``WOS_BENCH_VECTORS`` rows (default 100000; ``--quick`` 5000) of
``WOS_BENCH_DIMENSIONS`` dimensions (default 384), random unit vectors, on a fresh
SQLite database. Searches are calls of the search service in this process (the
same code ``POST /api/vectors/{slug}/search`` runs, without HTTP). The store is
the one the app picks here: ``sqlite-vec`` where this Python's sqlite3 can load
extensions, else the exact scan.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def _settings(data_dir: Path) -> Any:
    from workeros.config import Settings

    return Settings(env={}, cli={"data_dir": str(data_dir), "database.url": f"sqlite:///{data_dir / 'bench.db'}",
                                 "log.access": False, "vectors.local_embedder": False})


async def _bench(rows: int, dims: int, queries: int) -> dict[str, Any]:
    from workeros.api import Accountability
    from workeros.http.app import create_app
    from workeros.http.keys import SERVICES
    from workeros.plugins import Plugins

    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((rows, dims))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    with tempfile.TemporaryDirectory() as tmp:
        settings = _settings(Path(tmp))
        plugins = Plugins(load=settings["load_plugins"], disable=(), strict=False, plugins_dir=None)
        plugins.load_all()
        app = await create_app(settings, plugins=plugins)
        runner = __import__("aiohttp").web.AppRunner(app)
        await runner.setup()
        try:
            services = app[SERVICES]
            admin = Accountability(user=None, role=None, admin=True)
            await services.schema.create_collection(admin, {"collection": "docs", "fields": [
                {"field": "owner", "type": "string"},
                {"field": "embedding", "type": "vector", "dimensions": dims, "metric": "cosine"}]})
            t0 = time.perf_counter()
            for start in range(0, rows, 1000):
                await services.items.create(admin, "docs", [
                    {"owner": "u1" if i % 100 == 0 else "x", "embedding": vectors[i].tolist()}
                    for i in range(start, min(rows, start + 1000))])
            insert_s = time.perf_counter() - t0
            search = services.get("vector_search")
            store = services.vectors.name
            qs = rng.standard_normal((queries, dims))
            qs /= np.linalg.norm(qs, axis=1, keepdims=True)

            # NumPy brute force over the same matrix: the baseline.
            t0 = time.perf_counter()
            exact_top = [np.argsort(1 - vectors @ q, kind="stable")[:10] for q in qs]
            numpy_qps = queries / (time.perf_counter() - t0)

            # Ours, unfiltered (the store's index path above vectors.exact_threshold).
            latencies, hits = [], 0
            for q, truth in zip(qs, exact_top, strict=True):
                t0 = time.perf_counter()
                found = await search.search(admin, "docs", {"vector": q.tolist(), "limit": 10, "fields": ["id"]})
                latencies.append(time.perf_counter() - t0)
                hits += len({r["id"] - 1 for r in found} & set(truth.tolist()))
            ours_qps = queries / sum(latencies)

            # Filtered: a role reading 1 % of the rows.
            role_id = str((await services.permissions.create_role(admin, {"name": "one_percent"}))["id"])
            await services.permissions.create_permission(admin, {
                "role": role_id, "collection": "docs", "action": "read",
                "filter": {"owner": {"_eq": "$CURRENT_USER"}}, "fields": ["id", "embedding"]})
            owner = Accountability(user="u1", role=role_id)
            filtered = []
            for q in qs:
                t0 = time.perf_counter()
                found = await search.search(owner, "docs", {"vector": q.tolist(), "limit": 10, "fields": ["id"]})
                filtered.append(time.perf_counter() - t0)
                assert len(found) == 10
            size = sum(p.stat().st_size for p in Path(tmp).glob("bench.db*"))
        finally:
            await runner.cleanup()
    ms = sorted(x * 1000 for x in filtered)
    return {
        "rows": rows, "dimensions": dims, "queries": queries, "store": store,
        "insert_rows_per_s": round(rows / insert_s, 1),
        "recall_at_10": round(hits / (10 * queries), 4),
        "qps": round(ours_qps, 2), "numpy_brute_force_qps": round(numpy_qps, 2),
        "qps_ratio_vs_numpy": round(ours_qps / numpy_qps, 3),
        "p50_ms": round(statistics.median(x * 1000 for x in latencies), 1),
        "filtered_1pct_p50_ms": round(statistics.median(ms), 1),
        "filtered_1pct_p99_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 1),
        "database_bytes_per_100k_vectors": int(size / rows * 100_000),
    }


def run(quick: bool = False) -> dict[str, Any]:
    rows = int(os.environ.get("WOS_BENCH_VECTORS", 5000 if quick else 100_000))
    dims = int(os.environ.get("WOS_BENCH_DIMENSIONS", 384))
    queries = int(os.environ.get("WOS_BENCH_QUERIES", 20 if quick else 100))
    result = asyncio.run(_bench(rows, dims, queries))
    for key, value in result.items():
        print(f"  {key}: {value}")
    return result
