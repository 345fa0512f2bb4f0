"""The chroma store over real HTTP on both dialects, embedded (a Chroma in the
data folder) and against a real ``chroma run`` server on loopback, with
``vectors.exact_threshold`` 0 so every search takes the index path: oracle
order and distances per metric, filtered and row-permission-filtered searches
returning ``limit`` rows, refused input writing nothing (not in the change
log, not in Chroma), updates and deletes seen at once by this instance and by
a second one, changes applied after the commit without a search, a lost
application replayed, a Chroma outage answered 503 and caught up afterwards,
and export/import keeping vectors."""

from __future__ import annotations

import asyncio
import random
import shutil
import socket
import subprocess
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient
from callers import Api, TestCallers

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

chromadb = pytest.importorskip("chromadb")

MODES = ["embedded", "http"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ChromaServer:
    """``chroma run`` on loopback, with its data in ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        exe = shutil.which("chroma", path=str(Path(__import__("sys").executable).parent)) or shutil.which("chroma")
        assert exe, "the chromadb package provides the chroma command"
        self.proc = subprocess.Popen([exe, "run", "--path", str(self.path), "--host", "127.0.0.1",
                                      "--port", str(self.port)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        client = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "chroma run exited"
            try:
                client = chromadb.HttpClient(host="127.0.0.1", port=self.port)
                client.heartbeat()
                return
            except Exception:
                time.sleep(0.2)
        raise AssertionError("chroma run did not answer within 60 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: Any) -> Any:
    server = ChromaServer(tmp_path_factory.mktemp("chroma-server"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=MODES)
def mode(request: Any) -> str:
    return request.param


@pytest.fixture
def chroma_settings(mode: str, request: Any, tmp_path: Path) -> dict[str, Any]:
    """The store's settings for this test: its own embedded folder, or the
    shared server with a prefix of its own."""
    base = {"vectors.backend": "chroma", "vectors.exact_threshold": 0,
            "chroma.prefix": f"t{random.Random().randrange(16 ** 8):08x}"}
    if mode == "http":
        return {**base, "chroma.url": request.getfixturevalue("chroma_server").url}
    return {**base, "chroma.path": str(tmp_path / "chroma")}


@pytest.fixture
def indexed(make_server: Any, chroma_settings: dict[str, Any]) -> Any:
    @asynccontextmanager
    async def run(**overrides: Any) -> Any:
        async with make_server(TestCallers(), **{**chroma_settings, **overrides}) as server, \
                TestClient(server) as client:
            assert server.app[SERVICES].vectors.name == "chroma"
            yield Api(client), server.app[SERVICES]

    return run


async def _changes(services: Any) -> int:
    async with services.db.read() as conn:
        return int((await conn.execute(sa.text("SELECT count(*) FROM wos_vec_changes"))).scalar())


async def _chroma_ids(services: Any, slug: str = "docs") -> set[str]:
    """The ids the field's Chroma collection holds (read from Chroma itself), once
    the changes logged so far are applied (as before a search)."""
    collection = services.schema.current().get(slug)
    state = await services.vectors._catch_up(collection, collection.fields["embedding"])
    got = await asyncio.to_thread(state.collection.get, include=[])
    return set(got["ids"])


@pytest.mark.parametrize("metric", ["cosine", "l2", "ip"])
async def test_index_path_matches_the_oracle_for_each_metric(indexed: Any, metric: str) -> None:
    async with indexed() as (api, services):
        admin = api.as_admin()
        rng = random.Random(f"chroma-{metric}")
        await make_docs(admin, metric)
        docs = await fill(admin, 200, rng)
        for _ in range(4):
            q = rand_vector(rng)
            r = await admin.post("/api/vectors/docs/search", json={"vector": q, "limit": 7, "fields": ["id"]})
            assert r.status == 200, r
            want = expected(docs, metric, q, 7)
            assert [row["id"] for row in r.data] == [k for k, _ in want]
            assert [row["$distance"] for row in r.data] == pytest.approx([d for _, d in want], abs=1e-9)
        # Chroma's own distances, brought to the project's convention, agree with the oracle too.
        collection = services.schema.current().get("docs")
        proposed = await services.vectors.nearest(collection, collection.fields["embedding"], q, limit=5)
        want = expected(docs, metric, q, 5)
        assert [k for k, _ in proposed] == [k for k, _ in want]
        assert [d for _, d in proposed] == pytest.approx([d for _, d in want], abs=1e-4)
        # The filter applies before ranking: a quarter of the rows, still `limit` of them.
        r = await admin.post("/api/vectors/docs/search", json={"vector": q, "limit": 9, "fields": ["id"],
                                                               "filter": {"n": {"_gte": 150}}})
        assert [row["id"] for row in r.data] == [k for k, _ in expected([d for d in docs if d["n"] >= 150],
                                                                        metric, q, 9)]
        assert await _chroma_ids(services) == {str(d["id"]) for d in docs}


async def test_a_role_owning_five_percent_gets_limit_rows_from_the_index(indexed: Any) -> None:
    async with indexed() as (api, _):
        await check_five_percent_owner(api, seed=55)


async def test_refused_input_writes_nothing_not_in_the_log_nor_in_chroma(indexed: Any) -> None:
    async with indexed() as (api, services):
        admin = api.as_admin()
        await make_docs(admin)
        docs = await fill(admin, 5, random.Random(1))
        r = await admin.post("/api/vectors/docs/search", json={"vector": [1.0] * DIM, "limit": 50})
        assert len(r.data) == 5
        before = await _changes(services)
        for bad in ([1.0] * (DIM - 1), [1.0] * (DIM + 1), [1.0] * (DIM - 1) + ["x"], [0.0] * DIM):
            r = await admin.post("/api/items/docs", json=[{"title": "ok", "embedding": [1.0] * DIM},
                                                          {"title": "bad", "embedding": bad}])
            assert (r.status, r.code) == (400, "INVALID_PAYLOAD"), r
        r = await admin.post("/api/items/docs", data=b'{"title": "nan", "embedding": [NaN,1,1,1,1,1,1,1]}',
                             headers={"Content-Type": "application/json"})
        assert r.status == 400, r
        r = await admin.patch(f"/api/items/docs/{docs[0]['id']}", json={"embedding": [1.0] * (DIM - 1)})
        assert r.status == 400, r
        assert await _changes(services) == before
        assert len((await admin.get("/api/items/docs")).data) == 5
        r = await admin.post("/api/vectors/docs/search", json={"vector": [1.0] * DIM, "limit": 50})
        assert len(r.data) == 5
        assert await _chroma_ids(services) == {str(d["id"]) for d in docs}


async def test_updates_and_deletes_are_seen_at_once_here_and_by_another_instance(indexed: Any) -> None:
    async with indexed() as (api, _), indexed() as (other, _):
        await check_updates_and_deletes(api, other)


async def test_changes_are_applied_after_commit_and_replayed_when_lost(indexed: Any) -> None:
    async with indexed() as (api, services):
        admin = api.as_admin()
        await make_docs(admin, "l2")
        docs = await fill(admin, 30, random.Random(7))
        q = [3.0] * DIM
        assert (await admin.post("/api/vectors/docs/search", json={"vector": q, "limit": 1})).status == 200
        collection = services.schema.current().get("docs")
        assert (collection.table.name, "embedding") in services.vectors.fields, "the index path ran"
        # After the commit, without a search: Chroma holds the new row soon.
        new = (await admin.post("/api/items/docs", json={"title": "n", "embedding": q})).data
        state = services.vectors.fields[(collection.table.name, "embedding")]
        for _ in range(100):
            if str(new["id"]) in (await asyncio.to_thread(state.collection.get, include=[]))["ids"]:
                break
            await asyncio.sleep(0.05)
        assert str(new["id"]) in (await asyncio.to_thread(state.collection.get, include=[]))["ids"]
        # A write whose application was lost (the process died after the commit): logged, not applied.
        table, column = collection.table, collection.column("embedding")
        moved = docs[3]["id"]
        async with services.db.transaction() as conn:
            await conn.execute(table.update().where(collection.pk_column == moved).values({column.name: q}))
            await conn.execute(sa.text("INSERT INTO wos_vec_changes (tbl, field, key) VALUES (:t, 'embedding', :k)"),
                               {"t": table.name, "k": str(moved)})
            await conn.execute(table.delete().where(collection.pk_column == docs[4]["id"]))
            await conn.execute(sa.text("INSERT INTO wos_vec_changes (tbl, field, key) VALUES (:t, 'embedding', :k)"),
                               {"t": table.name, "k": str(docs[4]["id"])})
    # A new process on the same database and Chroma applies them before its first answer.
    async with indexed() as (api, services):
        admin = api.as_admin()
        await admin.get("/api/collections/docs")
        r = await admin.post("/api/vectors/docs/search", json={"vector": q, "limit": 2, "fields": ["id"]})
        assert sorted(row["id"] for row in r.data) == sorted([new["id"], moved]), r
        assert all(row["$distance"] == 0.0 for row in r.data)
        ids = await _chroma_ids(services)
        assert str(docs[4]["id"]) not in ids and len(ids) == 30
        # Applying a batch again (a crash before the cursor moved) changes nothing.
        async with services.db.transaction() as conn:
            await conn.execute(sa.text("UPDATE wos_chroma_cursors SET seq = 0"))
        services.vectors.fields.clear()
        r = await admin.post("/api/vectors/docs/search", json={"vector": q, "limit": 400, "fields": ["id"]})
        assert len(r.data) == 30 and r.data[0]["$distance"] == 0.0
        assert len(await _chroma_ids(services)) == 30


async def test_export_import_keeps_vectors_in_the_index(indexed: Any, make_server: Any, chroma_settings: Any,
                                                        tmp_path: Any, wos_dialect: str) -> None:
    from tests.kernel.snapshot.conftest import instance_settings
    from workeros.schema import transfer
    from workeros.sdk.testing import create_pg_database, drop_pg_database

    async with indexed() as (api, services):
        admin = api.as_admin()
        await make_docs(admin, "l2")
        docs = await fill(admin, 40, random.Random(9))
        q = rand_vector(random.Random(1))
        assert (await admin.post("/api/vectors/docs/search", json={"vector": q, "limit": 4})).status == 200
        archive = tmp_path / "export.zip"
        await transfer.export_archive(services, archive)
    url = f"sqlite:///{tmp_path / 'b.db'}" if wos_dialect == "sqlite" else await create_pg_database()
    try:
        # The same Chroma and prefix: the imported database must not take up the first one's collection.
        settings = instance_settings(url, tmp_path / "b")
        async with make_server(TestCallers(), settings=settings, **chroma_settings) as server, \
                TestClient(server) as client:
            b = server.app[SERVICES]
            assert b.vectors.name == "chroma"
            await transfer.import_archive(b, archive)
            r = await Api(client).as_admin().post("/api/vectors/docs/search", json={"vector": q, "limit": 4})
            assert [row["id"] for row in r.data] == [k for k, _ in expected(docs, "l2", q, 4)]
            new = (await Api(client).as_admin().post("/api/items/docs", json={"embedding": q})).data
            r = await Api(client).as_admin().post("/api/vectors/docs/search", json={"vector": q, "limit": 1})
            assert r.data[0]["id"] == new["id"] and r.data[0]["$distance"] == 0.0
            assert len(await _chroma_ids(b)) == 41
    finally:
        if wos_dialect != "sqlite":
            await drop_pg_database(url)


async def test_a_chroma_outage_is_a_503_and_is_caught_up_after(make_server: Any, tmp_path: Path) -> None:
    server = ChromaServer(tmp_path / "outage")
    server.start()
    try:
        settings = {"vectors.backend": "chroma", "vectors.exact_threshold": 0, "chroma.url": server.url}
        async with make_server(TestCallers(), **settings) as app, TestClient(app) as client:
            admin = Api(client).as_admin()
            await make_docs(admin, "l2")
            docs = await fill(admin, 20, random.Random(2))
            q = [2.0] * DIM
            assert (await admin.post("/api/vectors/docs/search", json={"vector": q, "limit": 3})).status == 200
            server.stop()
            # Writes still succeed (the rows are the truth); searches by the index answer 503.
            changed = (await admin.patch(f"/api/items/docs/{docs[0]['id']}", json={"embedding": q}))
            assert changed.status == 200, changed
            r = await admin.post("/api/vectors/docs/search", json={"vector": q, "limit": 3})
            assert (r.status, r.code) == (503, "SERVICE_UNAVAILABLE"), r
            assert b"Traceback" not in r.raw and b"127.0.0.1" not in r.raw
            server.start()  # the same folder and port
            r = await admin.post("/api/vectors/docs/search", json={"vector": q, "limit": 1})
            assert r.status == 200 and r.data[0]["id"] == docs[0]["id"] and r.data[0]["$distance"] == 0.0, r
    finally:
        server.stop()

