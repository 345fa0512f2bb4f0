"""The usearch store (an in-process HNSW index kept in step by a change log)
over real HTTP on both dialects, with ``vectors.exact_threshold`` 0 so every
search takes the index path: oracle order and distances per metric, filtered
and row-permission-filtered searches returning ``limit`` rows, refused input
writing nothing (not even a change-log entry), updates and deletes seen at
once by this instance and by a second instance on the same database, and
export/import keeping vectors. Also ``ctx.db.items(slug).nearest`` in a
function, as the caller."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient
from callers import Api, TestCallers

from tests.plugins.vectors.test_vectors import (
    DIM,
    _grant_owner_rows,
    check_five_percent_owner,
    check_updates_and_deletes,
    expected,
    fill,
    make_docs,
    rand_vector,
)
from workeros.api import SERVICES

INDEXED = {"vectors.backend": "usearch", "vectors.exact_threshold": 0}


@pytest.fixture
def indexed(make_server: Any) -> Any:
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def run(**overrides: Any) -> Any:
        async with make_server(TestCallers(), **{**INDEXED, **overrides}) as server, \
                TestClient(server) as client:
            assert server.app[SERVICES].vectors.name == "usearch"
            yield Api(client), server.app[SERVICES]

    return run


async def _changes(services: Any) -> int:
    async with services.db.read() as conn:
        return int((await conn.execute(sa.text("SELECT count(*) FROM wos_vec_changes"))).scalar())


@pytest.mark.parametrize("metric", ["cosine", "l2", "ip"])
async def test_index_path_matches_the_oracle_for_each_metric(indexed: Any, metric: str) -> None:
    async with indexed() as (api, services):
        admin = api.as_admin()
        rng = random.Random(f"usearch-{metric}")
        await make_docs(admin, metric)
        docs = await fill(admin, 200, rng)
        for _ in range(30):  # enough queries that a poorly linked graph shows
            q = rand_vector(rng)
            r = await admin.post("/api/vectors/docs/search", json={"vector": q, "limit": 7, "fields": ["id"]})
            assert r.status == 200, r
            want = expected(docs, metric, q, 7)
            assert [row["id"] for row in r.data] == [k for k, _ in want]
            assert [row["$distance"] for row in r.data] == pytest.approx([d for _, d in want], abs=1e-9)
        # The filter applies before ranking: a quarter of the rows, still `limit` of them.
        q = rand_vector(rng)
        r = await admin.post("/api/vectors/docs/search", json={"vector": q, "limit": 9, "fields": ["id"],
                                                               "filter": {"n": {"_gte": 150}}})
        assert [row["id"] for row in r.data] == [k for k, _ in expected([d for d in docs if d["n"] >= 150],
                                                                        metric, q, 9)]
        assert services.vectors.indexes, "the index path ran"
        # vectors.index_dtype "auto": bytes for cosine (unit vectors), f32 for the metrics of any scale.
        assert {i.graph.dtype.name for i in services.vectors.indexes.values()} == {
            "I8" if metric == "cosine" else "F32"}
        assert services.vectors.memory_bytes() > 0, [(k, i.graph.memory_usage, len(i.graph)) for k, i in services.vectors.indexes.items()]


async def test_a_role_owning_five_percent_gets_limit_rows_from_the_index(indexed: Any) -> None:
    async with indexed() as (api, _):
        await check_five_percent_owner(api, seed=55)


async def test_refused_input_writes_nothing_not_even_a_log_entry(indexed: Any) -> None:
    async with indexed() as (api, services):
        admin = api.as_admin()
        await make_docs(admin)
        await fill(admin, 5, random.Random(1))
        before = await _changes(services)
        assert before == 5
        for bad in ([1.0] * (DIM - 1), [1.0] * (DIM - 1) + ["x"], [0.0] * DIM):
            r = await admin.post("/api/items/docs", json=[{"title": "ok", "embedding": [1.0] * DIM},
                                                          {"title": "bad", "embedding": bad}])
            assert (r.status, r.code) == (400, "INVALID_PAYLOAD"), r
        r = await admin.post("/api/items/docs", data=b'{"title": "nan", "embedding": [NaN,1,1,1,1,1,1,1]}',
                             headers={"Content-Type": "application/json"})
        assert r.status == 400, r
        assert await _changes(services) == before
        assert len((await admin.get("/api/items/docs")).data) == 5
        r = await admin.post("/api/vectors/docs/search", json={"vector": [1.0] * DIM, "limit": 50})
        assert len(r.data) == 5


async def test_updates_and_deletes_are_seen_at_once_here_and_by_another_instance(indexed: Any) -> None:
    async with indexed() as (api, _), indexed() as (other, _):
        await check_updates_and_deletes(api, other)


async def test_export_import_keeps_vectors_in_the_index(indexed: Any, make_server: Any, tmp_path: Any,
                                                        wos_dialect: str) -> None:
    from tests.kernel.snapshot.conftest import instance_settings
    from workeros.schema import transfer
    from workeros.sdk.testing import create_pg_database, drop_pg_database

    async with indexed() as (api, services):
        admin = api.as_admin()
        await make_docs(admin, "l2")
        docs = await fill(admin, 40, random.Random(9))
        archive = tmp_path / "export.zip"
        await transfer.export_archive(services, archive)
    url = f"sqlite:///{tmp_path / 'b.db'}" if wos_dialect == "sqlite" else await create_pg_database()
    try:
        settings = instance_settings(url, tmp_path / "b")
        async with make_server(TestCallers(), settings=settings, **INDEXED) as server, TestClient(server) as client:
            b = server.app[SERVICES]
            assert b.vectors.name == "usearch"
            await transfer.import_archive(b, archive)
            q = rand_vector(random.Random(1))
            r = await Api(client).as_admin().post("/api/vectors/docs/search", json={"vector": q, "limit": 4})
            assert [row["id"] for row in r.data] == [k for k, _ in expected(docs, "l2", q, 4)]
            # Written after the import, through the items service: in the index at once.
            new = (await Api(client).as_admin().post("/api/items/docs", json={"embedding": q})).data
            r = await Api(client).as_admin().post("/api/vectors/docs/search", json={"vector": q, "limit": 1})
            assert r.data[0]["id"] == new["id"] and r.data[0]["$distance"] == 0.0
    finally:
        if wos_dialect != "sqlite":
            await drop_pg_database(url)


NEAREST = """
export default async function (req, ctx) {
  try { return {rows: await ctx.db.items("docs").nearest(req.body)}; }
  catch (e) { return {code: e.code, message: e.message}; }
}"""


async def test_functions_search_through_ctx_db_as_the_caller(indexed: Any) -> None:
    async with indexed() as (api, services):
        if services.get("functions") is None:
            pytest.skip("the functions plugin is not installed")
        admin = api.as_admin()
        await make_docs(admin)
        rng = random.Random(21)
        docs = await fill(admin, 60, rng, owner=lambda i: "u1" if i % 4 == 0 else "x")
        role = await _grant_owner_rows(admin)
        r = await admin.post("/api/functions", json={"name": "near", "code": NEAREST, "public": True})
        assert r.status == 201, r
        q = rand_vector(rng)
        for caller, pool in ((admin, docs), (api.as_role(role, user="u1"), [d for d in docs if d["owner"] == "u1"])):
            body = {"vector": q, "limit": 5, "fields": ["id", "title"]}
            fn = await caller.post("/api/functions/near/run", json=body)
            rest = await caller.post("/api/vectors/docs/search", json=body)
            assert fn.status == 200 and rest.status == 200, (fn, rest)
            assert fn.data == {"rows": rest.data}
            assert [row["id"] for row in fn.data["rows"]] == [k for k, _ in expected(pool, "cosine", q, 5)]
        fn = await admin.post("/api/functions/near/run", json={"vector": [1.0, 2.0]})
        assert fn.data["code"] == "INVALID_PAYLOAD", fn


async def _search_ids(caller: Any, q: list[float], limit: int) -> list[Any]:
    r = await caller.post("/api/vectors/docs/search", json={"vector": q, "limit": limit, "fields": ["id"]})
    assert r.status == 200, r
    return [row["id"] for row in r.data]


async def test_the_index_is_saved_and_loaded_applying_only_newer_changes(indexed: Any, tmp_path: Any) -> None:
    """An instance saves its index in its data directory; one starting later
    on that directory loads it and applies the changes logged since (written
    meanwhile by an instance with a data directory of its own). A corrupt
    file, or one saved for another database, is ignored: the index is built
    from the rows, and answers stay those of the oracle."""
    here, there = tmp_path / "here", tmp_path / "there"
    rng = random.Random(77)
    async with indexed(data_dir=str(here)) as (api, services):
        admin = api.as_admin()
        await make_docs(admin, "l2")
        docs = await fill(admin, 150, rng)
        q = rand_vector(rng)
        assert await _search_ids(admin, q, 5) == [k for k, _ in expected(docs, "l2", q, 5)]
        [saved] = (here / "vectors").glob("*.json")
    async with indexed(data_dir=str(there)) as (api, _):
        admin = api.as_admin()
        moved, gone = docs[3], docs[4]
        moved["embedding"] = [x + 0.01 for x in q]
        assert (await admin.patch(f"/api/items/docs/{moved['id']}", json={"embedding": moved["embedding"]})).status == 200
        assert (await admin.delete(f"/api/items/docs/{gone['id']}")).status == 204
        new = (await admin.post("/api/items/docs", json={"title": "new", "embedding": q})).data
        docs = [d for d in docs if d is not gone] + [{"id": new["id"], "embedding": q}]
    async with indexed(data_dir=str(here)) as (api, services):
        assert await _search_ids(api.as_admin(), q, 6) == [k for k, _ in expected(docs, "l2", q, 6)]
        assert services.vectors.loaded == 1 and services.vectors.built == 0
        [index] = services.vectors.indexes.values()
        assert len(index.labels) == len(docs)
    # A file saved for another database: ignored.
    meta = json.loads(saved.read_text())
    saved.write_text(json.dumps({**meta, "database": "another"}))
    async with indexed(data_dir=str(here)) as (api, services):
        assert await _search_ids(api.as_admin(), q, 6) == [k for k, _ in expected(docs, "l2", q, 6)]
        assert services.vectors.loaded == 0 and services.vectors.built == 1
    # A corrupt graph file: ignored; the index built instead is saved, and loaded at the next start.
    meta = json.loads(saved.read_text())
    (here / "vectors" / meta["graph"]).write_bytes(b"\0garbage" * 100)
    for loaded in (0, 1):
        async with indexed(data_dir=str(here)) as (api, services):
            assert await _search_ids(api.as_admin(), q, 6) == [k for k, _ in expected(docs, "l2", q, 6)]
            assert (services.vectors.loaded, services.vectors.built) == (loaded, 1 - loaded)
    # A corrupt description: ignored.
    saved.write_text("{not json")
    async with indexed(data_dir=str(here)) as (api, services):
        assert await _search_ids(api.as_admin(), q, 6) == [k for k, _ in expected(docs, "l2", q, 6)]
        assert (services.vectors.loaded, services.vectors.built) == (0, 1)


async def test_fields_read_with_the_candidates_are_those_of_the_items_api(indexed: Any) -> None:
    async with indexed() as (api, _):
        admin = api.as_admin()
        rng = random.Random("fields")
        await make_docs(admin)
        docs = await fill(admin, 120, rng)
        q = rand_vector(rng)
        want = [k for k, _ in expected(docs, "cosine", q, 5)]
        for fields, filter_ in ((None, None), (["title", "embedding"], None), (["id", "n"], {"n": {"_lt": 60}})):
            body: dict[str, Any] = {"vector": q, "limit": 5}
            if fields:
                body["fields"] = fields
            if filter_:
                body["filter"] = filter_
            r = await admin.post("/api/vectors/docs/search", json=body)
            assert r.status == 200, r
            keys = want if not filter_ else [k for k, _ in expected([d for d in docs if d["n"] < 60], "cosine", q, 5)]
            params = {"filter": json.dumps({"id": {"_in": keys}}), "limit": "5"}
            if fields:
                params["fields"] = ",".join({*fields, "id"})
            items = (await admin.get("/api/items/docs", params=params)).data
            by_key = {row["id"]: row for row in items}
            assert len(r.data) == 5
            for row, key in zip(r.data, keys, strict=True):
                item = by_key[key]
                assert {k: v for k, v in row.items() if k != "$distance"} == {
                    k: v for k, v in item.items() if not fields or k in fields}, row
        # A field that is not readable is refused as /api/items refuses it.
        r = await admin.post("/api/vectors/docs/search", json={"vector": q, "limit": 5, "fields": ["nope"]})
        assert r.status == (await admin.get("/api/items/docs", params={"fields": "nope"})).status
