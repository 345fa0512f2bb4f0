"""Vector stores (which one serves each dialect, pgvector's SQL; the
sqlite-vec and pgvector stores themselves run in test_index_stores.py) and the
OpenAI-compatible embedder against a real aiohttp server on loopback speaking
that API."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from callers import Api, TestCallers
from sqlalchemy.dialects import postgresql
from workeros_vectors import stores

from tests.plugins.vectors.test_vectors import DIM, make_docs
from workeros.api import SERVICES, Collection, Field


def _docs_model(metric: str = "cosine") -> tuple[Any, Any]:
    table = sa.Table("c_docs", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True))
    field = Field("embedding", "vector", options={"dimensions": 3, "metric": metric})
    return Collection("docs", table, {"id": Field("id", "integer", primary_key=True), "embedding": field}), field


async def test_the_store_serving_each_dialect(api: Any, wos_dialect: str, caplog: Any) -> None:
    from workeros_vectors.hnsw import usearch_missing

    store = api.server.app[SERVICES].vectors
    fallback = "exact" if usearch_missing() else "usearch"
    if wos_dialect == "sqlite":
        assert store.name == (fallback if usearch_missing() is None or stores.sqlite_vec_missing() else "sqlite-vec")
        return
    async with api.server.app[SERVICES].db.read() as conn:
        available = (await conn.execute(sa.text(
            "SELECT count(*) FROM pg_available_extensions WHERE name = 'vector'"))).scalar()
    assert store.name == ("pgvector" if available else fallback)
    if not available:
        assert any("pgvector is not available" in r.getMessage() for r in caplog.get_records("setup")
                   if r.levelno == logging.WARNING)


@pytest.mark.parametrize("metric,op,ops", [("cosine", "<=>", "vector_cosine_ops"), ("l2", "<->", "vector_l2_ops"),
                                           ("ip", "<#>", "vector_ip_ops")])
def test_pgvector_statements(metric: str, op: str, ops: str) -> None:
    collection, field = _docs_model(metric)
    store = stores.PgVectorStore.__new__(stores.PgVectorStore)
    table = store._table(collection, field)
    dialect = postgresql.asyncpg.dialect()
    ddl = str(sa.schema.CreateTable(table).compile(dialect=dialect))
    assert "embedding vector(3) NOT NULL" in ddl and "id BIGINT NOT NULL" in ddl
    [index] = table.indexes
    assert f"USING hnsw (embedding {ops})" in str(sa.schema.CreateIndex(index).compile(dialect=dialect))
    distance = table.c.embedding.op(op, return_type=sa.Float())(
        sa.cast(sa.literal([1.0, 2.0, 3.0], stores.PgVectorType()), stores.PgVectorType()))
    sql = str(sa.select(table.c.id, distance).order_by(distance).limit(5).compile(
        dialect=dialect, compile_kwargs={"literal_binds": False}))
    assert f"wos_vec_c_docs_embedding.embedding {op} CAST(" in sql and "AS vector)" in sql
    assert stores.PgVectorType().bind_processor(dialect)([1, 2.5, -3]) == "[1.0,2.5,-3.0]"


# -- the OpenAI-compatible embedder ----------------------------------------------------------

def fake_embedding(text: str) -> list[float]:
    """A deterministic embedding: texts sharing words are near."""
    out = [0.0] * DIM
    for word in text.lower().split():
        digest = hashlib.sha256(word.encode()).digest()
        out[digest[0] % DIM] += 1.0
    return out


@pytest.fixture
async def embeddings_server() -> Any:
    calls: list[dict] = []

    async def embeddings(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "Bearer sk-test":
            return web.json_response({"error": {"message": "bad key"}}, status=401)
        body = await request.json()
        calls.append(body)
        if body.get("model") == "broken":
            return web.json_response({"error": {"message": "overloaded"}}, status=500)
        data = [{"object": "embedding", "index": i, "embedding": fake_embedding(t)}
                for i, t in reversed(list(enumerate(body["input"])))]
        return web.json_response({"object": "list", "data": data, "model": body["model"]})

    app = web.Application()
    app.router.add_post("/v1/embeddings", embeddings)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    server.calls = calls  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        await server.close()


async def test_source_fields_and_text_searches_use_the_embedder(make_server: Any, embeddings_server: Any) -> None:
    url = str(embeddings_server.make_url("/v1"))
    settings = {"vectors.embedder_url": url, "vectors.embedder_api_key": "sk-test",
                "network.allow_hosts": ["127.0.0.1/32"]}
    async with make_server(TestCallers(), **settings) as server, TestClient(server) as client:
        admin = Api(client).as_admin()
        r = await admin.post("/api/collections", json={"collection": "notes", "fields": [
            {"field": "body", "type": "text"},
            {"field": "embedding", "type": "vector", "dimensions": DIM, "metric": "cosine", "source": "body"}]})
        assert r.status in (200, 201), r
        texts = ["red apples and pears", "fast cars on roads", "green apples", "slow boats at sea"]
        r = await admin.post("/api/items/notes", json=[{"body": t} for t in texts])
        assert r.status == 200, r
        assert embeddings_server.calls[-1]["input"] == texts, "one batched call"
        stored = (await admin.get("/api/items/notes/3", params={"fields": "embedding"})).data["embedding"]
        assert stored == fake_embedding("green apples")
        r = await admin.post("/api/vectors/notes/search", json={"text": "apples", "limit": 2, "fields": ["body"]})
        assert r.status == 200, r
        assert {row["body"] for row in r.data} == {"red apples and pears", "green apples"}
        # Updating the text re-embeds it; clearing it clears the vector.
        await admin.patch("/api/items/notes/2", json={"body": "apples apples"})
        r = await admin.post("/api/vectors/notes/search", json={"text": "apples", "limit": 1, "fields": ["id"]})
        assert r.data[0]["id"] == 2 and r.data[0]["$distance"] == pytest.approx(0.0, abs=1e-12)
        await admin.patch("/api/items/notes/2", json={"body": None})
        assert (await admin.get("/api/items/notes/2", params={"fields": "embedding"})).data["embedding"] is None
    # A failing embedder is a 503 and nothing is written.
    async with make_server(TestCallers(), **{**settings, "vectors.embedder_model": "broken"}) as server, \
            TestClient(server) as client:
        admin = Api(client).as_admin()
        r = await admin.post("/api/items/notes", json={"body": "anything"})
        assert (r.status, r.code) == (503, "SERVICE_UNAVAILABLE"), r
        assert len((await admin.get("/api/items/notes")).data) == 4
        r = await admin.post("/api/vectors/notes/search", json={"text": "apples"})
        assert (r.status, r.code) == (503, "SERVICE_UNAVAILABLE"), r
    # No embedder at all: writes of the source text are refused with 503, vectors given directly still work.
    async with make_server(TestCallers(), **{"vectors.local_embedder": False}) as server, \
            TestClient(server) as client:
        admin = Api(client).as_admin()
        r = await admin.post("/api/items/notes", json={"body": "anything"})
        assert (r.status, r.code) == (503, "SERVICE_UNAVAILABLE"), r
        r = await admin.post("/api/items/notes", json={"body": "given", "embedding": fake_embedding("given")})
        assert r.status == 200, r


async def test_the_embedder_obeys_the_network_rule(make_server: Any, embeddings_server: Any) -> None:
    url = str(embeddings_server.make_url("/v1"))
    async with make_server(TestCallers(), **{"vectors.embedder_url": url, "vectors.embedder_api_key": "sk-test"}
                           ) as server, TestClient(server) as client:
        admin = Api(client).as_admin()
        await make_docs(admin)
        r = await admin.post("/api/vectors/docs/search", json={"text": "apples"})
        assert (r.status, r.code) == (503, "SERVICE_UNAVAILABLE"), r
        assert "not allowed" in r.json["errors"][0]["message"]
    assert embeddings_server.calls == []


async def test_the_local_embedder_needs_no_download(make_server: Any) -> None:
    pytest.importorskip("wordllama", reason="the local embedder's package (wordllama) is not installed")
    async with make_server(TestCallers(), **{"network.allow_private": False}) as server, \
            TestClient(server) as client:
        assert type(server.app[SERVICES].embedder).__name__ == "LocalEmbedder"
        admin = Api(client).as_admin()
        r = await admin.post("/api/collections", json={"collection": "notes", "fields": [
            {"field": "body", "type": "text"},
            {"field": "embedding", "type": "vector", "dimensions": 256, "source": "body"}]})
        assert r.status in (200, 201), r
        texts = ["a recipe for apple pie with cinnamon", "the engine of a racing car", "baking bread and cakes",
                 "formula one drivers and their cars"]
        assert (await admin.post("/api/items/notes", json=[{"body": t} for t in texts])).status == 200
        r = await admin.post("/api/vectors/notes/search", json={"text": "desserts to bake", "limit": 2,
                                                                "fields": ["body"]})
        assert r.status == 200, r
        assert {row["body"] for row in r.data} == {texts[0], texts[2]}
        r = await admin.post("/api/vectors/notes/search", json={"text": "motor racing", "limit": 2, "fields": ["id"]})
        assert {row["id"] for row in r.data} == {2, 4}
