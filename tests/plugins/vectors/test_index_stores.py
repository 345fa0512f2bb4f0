"""The stores that keep their index in the database itself, for real: sqlite-vec
(``vec0`` tables, through ``sqlite.driver = "sqlean"`` where this Python's
sqlite3 cannot load extensions) and pgvector (HNSW, on the PostgreSQL with
pgvector that conftest starts for this module). With
``vectors.exact_threshold`` 0 every search takes the index path: oracle order
and distances per metric, a role owning 5 % of the rows getting ``limit`` rows,
refused input writing nothing (not in the index either), updates and deletes
seen at once by this instance and by a second one on the same database, and
export/import keeping vectors."""

from __future__ import annotations

import random
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient, TestServer
from callers import Api, TestCallers
from workeros_vectors.stores import index_table_name

from tests.conftest import FIRST_PARTY
from tests.plugins.vectors.test_vectors import (
    DIM,
    check_five_percent_owner,
    check_updates_and_deletes,
    expected,
    fill,
    make_docs,
    rand_vector,
)
from workeros.api import SERVICES

STORES = ["sqlite-vec", pytest.param("pgvector", marks=pytest.mark.postgres)]


def _driver() -> str:
    """The standard library's sqlite3 where it loads extensions, else sqlean."""
    return "sqlite3" if hasattr(sqlite3.Connection, "enable_load_extension") else "sqlean"


async def _pg(admin_url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
async def new_url(request: pytest.FixtureRequest, store: str, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """``await new_url(name)``: a fresh database for the test's store (on the
    bundled pgvector server for pgvector; dropped afterwards)."""
    admin = request.getfixturevalue("pgvector_server") if store == "pgvector" else None
    created: list[str] = []

    async def make(name: str) -> str:
        if admin is None:
            return f"sqlite:///{tmp_path / f'{name}.db'}"
        db = f"wos_v_{name}_{uuid.uuid4().hex[:10]}"
        await _pg(admin, f'CREATE DATABASE "{db}"')
        created.append(db)
        return admin.rpartition("/")[0] + "/" + db

    yield make
    for db in created:
        await _pg(admin, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')  # type: ignore[arg-type]


@pytest.fixture
def instance(store: str, tmp_path: Path) -> Callable[..., Any]:
    """``async with instance(url) as (api, services)``: the app on ``url`` with
    the test's store selected by name and every search on its index."""

    @asynccontextmanager
    async def run(url: str, name: str = "a", **overrides: Any) -> AsyncIterator[tuple[Api, Any]]:
        from workeros.config import Settings
        from workeros.http.app import create_app
        from workeros.plugins import Plugins

        data_dir = tmp_path / name
        data_dir.mkdir(exist_ok=True)
        settings = Settings(env={}, cli={
            "data_dir": str(data_dir), "database.url": url, "database.pool_size": 5, "log.access": False,
            "load_plugins": FIRST_PARTY, "vectors.backend": store, "vectors.exact_threshold": 0,
            "sqlite.driver": _driver(), **overrides})
        plugins = Plugins(load=settings["load_plugins"], disable=(), strict=False, plugins_dir=None)
        plugins.load_all()
        plugins.register(TestCallers(), name="test-callers", distribution="test-fixtures")
        server = TestServer(await create_app(settings, plugins=plugins))
        async with TestClient(server) as client:
            services = server.app[SERVICES]
            assert services.vectors.name == store
            yield Api(client), services

    return run


async def _indexed(services: Any, slug: str = "docs") -> int:
    """Rows in the store's own index table of ``slug``'s vector field."""
    collection = services.schema.current().get(slug)
    table = index_table_name(collection, collection.fields["embedding"])
    async with services.db.read() as conn:
        if services.vectors.name == "sqlite-vec":
            await services.vectors._load(conn)
        return int((await conn.execute(sa.select(sa.func.count()).select_from(sa.table(table)))).scalar())


@pytest.mark.parametrize("store", STORES)
@pytest.mark.parametrize("metric", ["cosine", "l2", "ip"])
async def test_index_path_matches_the_oracle_for_each_metric(new_url: Any, instance: Any, store: str,
                                                             metric: str) -> None:
    async with instance(await new_url("a")) as (api, services):
        admin = api.as_admin()
        rng = random.Random(f"{store}-{metric}")
        await make_docs(admin, metric)
        docs = await fill(admin, 200, rng)
        for _ in range(4):
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
        collection = services.schema.current().get("docs")
        if services.vectors.indexed(collection, collection.fields["embedding"]):
            assert await _indexed(services) == 200, "the index path ran on the store's own table"
        else:  # sqlite-vec measures l2 and cosine only: inner product is ranked exactly
            assert (store, metric) == ("sqlite-vec", "ip")


@pytest.mark.parametrize("store", STORES)
async def test_a_role_owning_five_percent_gets_limit_rows_from_the_index(new_url: Any, instance: Any,
                                                                         store: str) -> None:
    async with instance(await new_url("a")) as (api, services):
        await check_five_percent_owner(api, seed=56)
        assert await _indexed(services) == 400


@pytest.mark.parametrize("store", STORES)
async def test_refused_input_writes_nothing_not_even_in_the_index(new_url: Any, instance: Any, store: str) -> None:
    async with instance(await new_url("a")) as (api, services):
        admin = api.as_admin()
        await make_docs(admin)
        await fill(admin, 5, random.Random(1))
        assert await _indexed(services) == 5
        for bad in ([1.0] * (DIM - 1), [1.0] * (DIM + 1), [1.0] * (DIM - 1) + ["x"], [0.0] * DIM):
            r = await admin.post("/api/items/docs", json=[{"title": "ok", "embedding": [1.0] * DIM},
                                                          {"title": "bad", "embedding": bad}])
            assert (r.status, r.code) == (400, "INVALID_PAYLOAD"), r
        for raw in (b'{"title": "nan", "embedding": [NaN,1,1,1,1,1,1,1]}',
                    b'{"title": "inf", "embedding": [1,1,1,Infinity,1,1,1,1]}'):
            r = await admin.post("/api/items/docs", data=raw, headers={"Content-Type": "application/json"})
            assert r.status == 400, r
        first = (await admin.get("/api/items/docs", params={"limit": 1})).data[0]["id"]
        r = await admin.patch(f"/api/items/docs/{first}", json={"embedding": [1.0] * (DIM - 1)})
        assert (r.status, r.code) == (400, "INVALID_PAYLOAD"), r
        assert await _indexed(services) == 5
        assert len((await admin.get("/api/items/docs")).data) == 5
        r = await admin.post("/api/vectors/docs/search", json={"vector": [1.0] * DIM, "limit": 50})
        assert len(r.data) == 5
        r = await admin.post("/api/vectors/docs/search", json={"vector": [1.0] * (DIM - 1)})
        assert (r.status, r.code) == (400, "INVALID_PAYLOAD"), r


@pytest.mark.parametrize("store", STORES)
async def test_updates_and_deletes_are_seen_at_once_here_and_by_another_instance(new_url: Any, instance: Any,
                                                                                 store: str) -> None:
    url = await new_url("a")
    async with instance(url) as (api, services), instance(url, name="b") as (other, _):
        await check_updates_and_deletes(api, other)
        assert await _indexed(services) == 299


@pytest.mark.parametrize("store", STORES)
async def test_export_import_keeps_vectors_in_the_index(new_url: Any, instance: Any, store: str,
                                                        tmp_path: Path) -> None:
    from workeros.schema import transfer

    async with instance(await new_url("a")) as (api, services):
        admin = api.as_admin()
        await make_docs(admin, "l2")
        docs = await fill(admin, 40, random.Random(9))
        archive = tmp_path / "export.zip"
        await transfer.export_archive(services, archive)
    async with instance(await new_url("b"), name="b") as (api, b):
        await transfer.import_archive(b, archive)
        admin = api.as_admin()
        q = rand_vector(random.Random(1))
        r = await admin.post("/api/vectors/docs/search", json={"vector": q, "limit": 4})
        assert [row["id"] for row in r.data] == [k for k, _ in expected(docs, "l2", q, 4)]
        assert await _indexed(b) == 40, "the index was rebuilt from the imported rows"
        # Written after the import, through the items service: in the index at once.
        new = (await admin.post("/api/items/docs", json={"embedding": q})).data
        r = await admin.post("/api/vectors/docs/search", json={"vector": q, "limit": 1})
        assert r.data[0]["id"] == new["id"] and r.data[0]["$distance"] == 0.0
        assert await _indexed(b) == 41
