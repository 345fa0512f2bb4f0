"""Vector search: recall@10 against the exact answer, queries per second against
a NumPy brute-force baseline over the same vectors in the same run, filtered
search latency (a role that may read 1 % of the rows), and storage per 100k
vectors.

Size: ``WOS_BENCH_VECTORS`` rows (default 100000; ``--quick`` 5000) of
``WOS_BENCH_DIMENSIONS`` dimensions (default 384), random unit vectors, on a fresh
SQLite database. Searches are calls of the search service in this process (the
same code ``POST /api/vectors/{slug}/search`` runs, without HTTP). The store is
the one the app picks here (``usearch``, the in-process HNSW index, by default;
``WOS_BENCH_VECTOR_STORE`` names another). Its index is built by a first search
before the timed ones (``index_build_s``); ``index_bytes_per_100k_vectors`` is
what the index holds in memory (the store's own count), beside the process's
resident-memory growth while building it. ``index_load_at_start_s`` is a
store opened afresh on the same database (as a process after a restart) loading
the index saved beside the change log at its first search. The role of the
filtered searches reads the rows of one ``owner``, a field marked ``indexed``.
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

    cli = {"data_dir": str(data_dir), "database.url": f"sqlite:///{data_dir / 'bench.db'}",
           "log.access": False, "vectors.local_embedder": False}
    if os.environ.get("WOS_BENCH_VECTOR_STORE"):
        cli["vectors.backend"] = os.environ["WOS_BENCH_VECTOR_STORE"]
    return Settings(env={}, cli=cli)


DATA = os.environ.get("WOS_BENCH_VECTOR_DATA", "clustered")


def _data(rng: np.random.Generator, count: int, dims: int) -> np.ndarray:
    """Unit vectors. ``random``: isotropic Gaussian — every point nearly as far as
    every other, the worst case of any graph index (no structure to follow).
    ``clustered``: 200 centres, a shared 32-dimensional subspace of variation and
    a little full-dimensional noise — a low intrinsic dimension, as text
    embeddings have. Queries are drawn the same way (not copies of rows)."""
    if DATA == "random":
        out = rng.standard_normal((count, dims))
    else:
        shape = np.random.default_rng(1234)  # the same centres and subspace for rows and queries
        centres, basis = shape.standard_normal((200, dims)), shape.standard_normal((32, dims))
        out = (centres[rng.integers(0, 200, count)] + rng.standard_normal((count, 32)) @ basis * 0.3
               + rng.standard_normal((count, dims)) * 0.1)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def _rss() -> int:
    """Resident memory of this process, bytes (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def _bench(rows: int, dims: int, queries: int) -> dict[str, Any]:
    from workeros.api import Accountability
    from workeros.http.app import create_app
    from workeros.http.keys import SERVICES
    from workeros.plugins import Plugins

    rng = np.random.default_rng(7)
    vectors = _data(rng, rows, dims)
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
                {"field": "owner", "type": "string", "indexed": True},
                {"field": "embedding", "type": "vector", "dimensions": dims, "metric": "cosine"}]})
            t0 = time.perf_counter()
            for start in range(0, rows, 1000):
                await services.items.create(admin, "docs", [
                    {"owner": "u1" if i % 100 == 0 else "x", "embedding": vectors[i].tolist()}
                    for i in range(start, min(rows, start + 1000))])
            insert_s = time.perf_counter() - t0
            search = services.get("vector_search")
            store = services.vectors.name
            qs = _data(rng, queries, dims)

            # The index is built by the first search (as after a start).
            rss = _rss()
            t0 = time.perf_counter()
            await search.search(admin, "docs", {"vector": qs[0].tolist(), "limit": 10, "fields": ["id"]})
            build_s = time.perf_counter() - t0
            rss_growth = _rss() - rss
            index_bytes = services.vectors.memory_bytes() if hasattr(services.vectors, "memory_bytes") else 0

            # NumPy brute force over the same matrix: the baseline.
            t0 = time.perf_counter()
            exact_top = [np.argsort(1 - vectors @ q, kind="stable")[:10] for q in qs]
            numpy_qps = queries / (time.perf_counter() - t0)
            # A stronger brute force: float32 copies and a partial sort.
            v32 = vectors.astype(np.float32)
            t0 = time.perf_counter()
            for q in qs.astype(np.float32):
                d = 1 - v32 @ q
                top = np.argpartition(d, 10)[:10]
                top[np.argsort(d[top])]
            numpy32_qps = queries / (time.perf_counter() - t0)
            del v32

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

            # A process starting on this database: the index saved beside the change log is loaded.
            load_s = None
            if store == "usearch":
                fresh = type(services.vectors)(services.db, settings)
                await fresh.setup()
                collection = services.schema.current().get("docs")
                t0 = time.perf_counter()
                await fresh.nearest(collection, collection.fields["embedding"], qs[0].tolist(), limit=10)
                load_s = time.perf_counter() - t0
                assert fresh.loaded == 1, "the saved index was loaded"
        finally:
            await runner.cleanup()
    ms = sorted(x * 1000 for x in filtered)
    return {
        "rows": rows, "dimensions": dims, "queries": queries, "data": DATA, "store": store,
        "insert_rows_per_s": round(rows / insert_s, 1),
        "index_build_s": round(build_s, 1),
        "index_load_at_start_s": None if load_s is None else round(load_s, 2),
        "recall_at_10": round(hits / (10 * queries), 4),
        "qps": round(ours_qps, 2), "numpy_brute_force_qps": round(numpy_qps, 2),
        "qps_ratio_vs_numpy": round(ours_qps / numpy_qps, 3),
        "numpy_f32_partial_sort_qps": round(numpy32_qps, 2),
        "qps_ratio_vs_numpy_f32": round(ours_qps / numpy32_qps, 3),
        "p50_ms": round(statistics.median(x * 1000 for x in latencies), 1),
        "filtered_1pct_p50_ms": round(statistics.median(ms), 1),
        "filtered_1pct_p99_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 1),
        "database_bytes_per_100k_vectors": int(size / rows * 100_000),
        "index_bytes_per_100k_vectors": int(index_bytes / rows * 100_000),
        "rss_growth_building_index_per_100k_vectors": int(rss_growth / rows * 100_000),
    }


def run(quick: bool = False) -> dict[str, Any]:
    rows = int(os.environ.get("WOS_BENCH_VECTORS", 5000 if quick else 100_000))
    dims = int(os.environ.get("WOS_BENCH_DIMENSIONS", 384))
    queries = int(os.environ.get("WOS_BENCH_QUERIES", 20 if quick else 100))
    result = asyncio.run(_bench(rows, dims, queries))
    for key, value in result.items():
        print(f"  {key}: {value}")
    return result
