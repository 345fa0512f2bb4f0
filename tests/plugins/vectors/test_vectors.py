"""Vector fields and POST /api/vectors/{slug}/search over real HTTP, on both
dialects: nearest-first order and distances against a pure-Python oracle for
each metric, permissions and filters applied before ranking (a role owning 5 %
of the rows still gets ``limit`` rows, by the exact scan and by an index with
over-fetch), invalid vectors refused with nothing written, updates and deletes
seen at once, export/import keeping vectors."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from callers import Api, TestCallers
from workeros_vectors.stores import ExactStore

from workeros.api import SERVICES
from workeros.hookspecs import hookimpl
from workeros.hookspecs.vectors import VectorBackend

DIM = 8


def oracle(metric: str, a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    if metric == "ip":
        return -dot
    if metric == "l2":
        return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b, strict=True)))
    return 1 - dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def rand_vector(rng: random.Random) -> list[float]:
    return [round(rng.uniform(-1, 1), 6) for _ in range(DIM)]


async def make_docs(admin: Any, metric: str = "cosine", slug: str = "docs") -> None:
    r = await admin.post("/api/collections", json={"collection": slug, "fields": [
        {"field": "title", "type": "string"}, {"field": "owner", "type": "string"},
        {"field": "n", "type": "integer"},
        {"field": "embedding", "type": "vector", "dimensions": DIM, "metric": metric}]})
    assert r.status in (200, 201), r


async def fill(admin: Any, count: int, rng: random.Random, owner: Any = None, slug: str = "docs") -> list[dict]:
    items = [{"title": f"doc {i}", "n": i, "owner": owner(i) if owner else "x", "embedding": rand_vector(rng)}
             for i in range(count)]
    r = await admin.post(f"/api/items/{slug}", json=items)
    assert r.status == 200, r
    return [{**item, "id": row["id"]} for item, row in zip(items, r.data, strict=True)]


def expected(docs: list[dict], metric: str, q: list[float], limit: int) -> list[tuple[Any, float]]:
    scored = sorted((oracle(metric, d["embedding"], q), d["id"]) for d in docs)
    return [(key, dist) for dist, key in scored[:limit]]


@pytest.mark.parametrize("metric", ["cosine", "l2", "ip"])
async def test_nearest_first_with_distances_of_each_metric(api: Any, metric: str) -> None:
    admin = api.as_admin()
    rng = random.Random(metric)
    await make_docs(admin, metric)
    docs = await fill(admin, 60, rng)
    for _ in range(3):
        q = rand_vector(rng)
        r = await admin.post("/api/vectors/docs/search", json={"field": "embedding", "vector": q, "limit": 7,
                                                               "fields": ["id", "title"]})
        assert r.status == 200, r
        want = expected(docs, metric, q, 7)
        assert [row["id"] for row in r.data] == [k for k, _ in want]
        for row, (_, dist) in zip(r.data, want, strict=True):
            assert row["$distance"] == pytest.approx(dist, abs=1e-9)
            assert set(row) == {"id", "title", "$distance"}
    # A filter on a readable field applies before ranking.
    q = rand_vector(rng)
    r = await admin.post("/api/vectors/docs/search", json={"vector": q, "limit": 5, "filter": {"n": {"_gte": 50}}})
    assert [row["id"] for row in r.data] == [k for k, _ in expected([d for d in docs if d["n"] >= 50], metric, q, 5)]
    assert "embedding" not in r.data[0]


async def test_vectors_are_returned_only_when_selected_and_validated(api: Any) -> None:
    admin = api.as_admin()
    await make_docs(admin)
    fields = (await admin.get("/api/fields/docs")).data
    assert {f["field"]: f for f in fields}["embedding"]["options"] == {"dimensions": DIM, "metric": "cosine"}
    vec = [0.1, -0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    created = (await admin.post("/api/items/docs", json={"title": "a", "embedding": vec})).data
    assert "embedding" not in created
    r = await admin.get(f"/api/items/docs/{created['id']}")
    assert "embedding" not in r.data
    r = await admin.get(f"/api/items/docs/{created['id']}", params={"fields": "id,embedding"})
    assert r.data == {"id": created["id"], "embedding": vec}
    for bad in ([1.0] * (DIM - 1), [1.0] * (DIM + 1), [1.0] * (DIM - 1) + ["x"], [1.0] * (DIM - 1) + [True],
                "[1,2]", [0.0] * DIM, [1.0] * (DIM - 1) + [1e400]):
        r = await admin.post("/api/items/docs", json=[{"title": "ok"}, {"title": "bad", "embedding": bad}])
        assert (r.status, r.code) == (400, "INVALID_PAYLOAD"), (bad, r)
    for raw in (b'{"title": "nan", "embedding": [NaN,1,1,1,1,1,1,1]}',
                b'{"title": "inf", "embedding": [Infinity,1,1,1,1,1,1,1]}'):
        r = await admin.post("/api/items/docs", data=raw, headers={"Content-Type": "application/json"})
        assert r.status == 400, r
        r = await admin.post("/api/vectors/docs/search", data=raw.replace(b'"embedding"', b'"vector"')
                             .replace(b'"title": "nan", ', b"").replace(b'"title": "inf", ', b""),
                             headers={"Content-Type": "application/json"})
        assert r.status == 400, r
    assert len((await admin.get("/api/items/docs")).data) == 1, "nothing written"
    for body in ({"vector": [1.0] * 3}, {"vector": [1.0] * DIM, "limit": 0}, {"vector": [1.0] * DIM, "text": "x"},
                 {}, {"field": "title", "vector": [1.0] * DIM}, {"vector": [1.0] * DIM, "filter": {"nope": {"_eq": 1}}}):
        r = await admin.post("/api/vectors/docs/search", json=body)
        assert r.status == 400, (body, r)
    r = await admin.post("/api/vectors/docs/search", json={"text": "hello"})
    assert (r.status, r.code) == (503, "SERVICE_UNAVAILABLE"), r
    r = await api.anonymous().post("/api/vectors/docs/search", json={"vector": vec})
    assert r.status == 403, r
    r = await api.anonymous().post("/api/vectors/nothing/search", json={"vector": vec})
    assert r.status == 403, r
    r = await admin.post("/api/fields/docs", json={"field": "v2", "type": "vector", "dimensions": 0})
    assert r.status == 400, r
    r = await admin.post("/api/fields/docs", json={"field": "v2", "type": "vector", "dimensions": 4, "metric": "dot"})
    assert r.status == 400, r


async def test_updates_and_deletes_are_seen_at_once(api: Any) -> None:
    admin = api.as_admin()
    await make_docs(admin, "l2")
    docs = await fill(admin, 20, random.Random(3))
    q = [5.0] * DIM
    top = (await admin.post("/api/vectors/docs/search", json={"vector": q, "limit": 1})).data[0]
    target = docs[7]["id"] if top["id"] != docs[7]["id"] else docs[8]["id"]
    r = await admin.patch(f"/api/items/docs/{target}", json={"embedding": [4.9] * DIM})
    assert r.status == 200, r
    r = await admin.post("/api/vectors/docs/search", json={"vector": q, "limit": 2})
    assert r.data[0]["id"] == target
    assert r.data[0]["$distance"] == pytest.approx(math.sqrt(DIM * 0.01))
    assert (await admin.delete(f"/api/items/docs/{target}")).status == 204
    r = await admin.post("/api/vectors/docs/search", json={"vector": q, "limit": 2})
    assert target not in [row["id"] for row in r.data]
    await admin.patch(f"/api/items/docs/{r.data[0]['id']}", json={"embedding": None})
    r2 = await admin.post("/api/vectors/docs/search", json={"vector": q, "limit": 50})
    assert r.data[0]["id"] not in [row["id"] for row in r2.data] and len(r2.data) == 18


class ScanIndex(ExactStore):
    """An index over the whole field, blind to permissions like any index (the
    exact answer over every row): makes the search take its over-fetch path."""

    name = "scan-index"

    def indexed(self, collection: Any, field: Any) -> bool:
        return True


class ScanIndexPlugin:
    name = "scan-index"

    @hookimpl
    def workeros_register_vector_stores(self) -> list[VectorBackend]:
        return [VectorBackend(name="scan-index", factory=lambda settings, db: ScanIndex(db))]


async def _grant_owner_rows(admin: Any) -> str:
    role = (await admin.post("/api/roles", json={"name": "owner"})).data["id"]
    r = await admin.post("/api/permissions", json={"role": role, "collection": "docs", "action": "read",
                                                   "filter": {"owner": {"_eq": "$CURRENT_USER"}},
                                                   "fields": ["id", "title", "n", "embedding"]})
    assert r.status in (200, 201), r
    return str(role)


async def check_five_percent_owner(api: Any, seed: int) -> None:
    """Through a store's index: a role reading 5 % of 400 rows (its own) gets
    `limit` of them, nearest first, every one of them when it asks for more,
    and `limit` again with a filter on top of its row filter."""
    admin = api.as_admin()
    await make_docs(admin)
    rng = random.Random(seed)
    docs = await fill(admin, 400, rng, owner=lambda i: "u1" if i % 20 == 0 else "other")
    role = await _grant_owner_rows(admin)
    mine = [d for d in docs if d["owner"] == "u1"]
    caller = api.as_role(role, user="u1")
    for _ in range(3):
        q = rand_vector(rng)
        r = await caller.post("/api/vectors/docs/search", json={"vector": q, "limit": 10})
        assert r.status == 200, r
        assert [row["id"] for row in r.data] == [k for k, _ in expected(mine, "cosine", q, 10)]
    r = await caller.post("/api/vectors/docs/search", json={"vector": q, "limit": 30})
    assert sorted(row["id"] for row in r.data) == sorted(d["id"] for d in mine)
    # A filter on top of the row filter: 10 of the 20.
    r = await caller.post("/api/vectors/docs/search", json={"vector": q, "limit": 10,
                                                            "filter": {"n": {"_lt": 200}}})
    assert [row["id"] for row in r.data] == [k for k, _ in expected([d for d in mine if d["n"] < 200],
                                                                    "cosine", q, 10)]


async def check_updates_and_deletes(api: Any, other: Any) -> None:
    """Through a store's index, on two instances of one database: an update,
    a delete, a vector set to null and a create made on either are seen by the
    next search on both (299 of 300 rows left, the new one nearest)."""
    admin = api.as_admin()
    await make_docs(admin, "l2")
    docs = await fill(admin, 300, random.Random(3))
    # The second instance loads the collection the first one created.
    await other.as_admin().get("/api/collections/docs")
    admin2 = other.as_admin()
    q = [5.0] * DIM
    for caller in (admin, admin2):  # both build their index now
        r = await caller.post("/api/vectors/docs/search", json={"vector": q, "limit": 1})
        assert r.status == 200, r
    target = docs[7]["id"] if r.data[0]["id"] != docs[7]["id"] else docs[8]["id"]
    assert (await admin.patch(f"/api/items/docs/{target}", json={"embedding": [4.9] * DIM})).status == 200
    for caller in (admin, admin2):
        r = await caller.post("/api/vectors/docs/search", json={"vector": q, "limit": 2})
        assert r.data[0]["id"] == target, (caller is admin, r)
        assert r.data[0]["$distance"] == pytest.approx(math.sqrt(DIM * 0.01))
    assert (await admin2.delete(f"/api/items/docs/{target}")).status == 204
    for caller in (admin, admin2):
        r = await caller.post("/api/vectors/docs/search", json={"vector": q, "limit": 2})
        assert target not in [row["id"] for row in r.data]
    nulled = r.data[0]["id"]
    await admin.patch(f"/api/items/docs/{nulled}", json={"embedding": None})
    created = (await admin2.post("/api/items/docs", json={"title": "new", "embedding": [5.0] * DIM})).data
    for caller in (admin, admin2):
        r = await caller.post("/api/vectors/docs/search", json={"vector": q, "limit": 400, "fields": ["id"]})
        ids = [row["id"] for row in r.data]
        assert ids[0] == created["id"] and nulled not in ids and target not in ids and len(ids) == 299
        assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("path", ["exact", "index"])
async def test_a_role_owning_five_percent_gets_limit_rows(make_server: Any, path: str) -> None:
    extra, overrides = ((ScanIndexPlugin(),), {"vectors.backend": "scan-index", "vectors.exact_threshold": 0}) \
        if path == "index" else ((), {})
    async with make_server(TestCallers(), *extra, **overrides) as server, TestClient(server) as client:
        api = Api(client)
        admin = api.as_admin()
        await make_docs(admin)
        rng = random.Random(5)
        docs = await fill(admin, 400, rng, owner=lambda i: "u1" if i % 20 == 0 else "other")
        role = await _grant_owner_rows(admin)
        mine = [d for d in docs if d["owner"] == "u1"]
        assert len(mine) == 20
        caller = api.as_role(role, user="u1")
        for _ in range(3):
            q = rand_vector(rng)
            r = await caller.post("/api/vectors/docs/search", json={"vector": q, "limit": 10})
            assert r.status == 200, r
            assert [row["id"] for row in r.data] == [k for k, _ in expected(mine, "cosine", q, 10)]
            assert all(set(row) == {"id", "title", "n", "$distance"} for row in r.data)
        r = await caller.post("/api/vectors/docs/search", json={"vector": q, "limit": 30})
        assert len(r.data) == 20, "every readable row, and only those"
        r = await caller.post("/api/vectors/docs/search", json={"vector": q, "limit": 10, "fields": ["owner"]})
        assert r.status == 403 or r.status == 400, r
        store = server.app[SERVICES].vectors
        assert store.name == ("scan-index" if path == "index" else store.name)


async def test_export_import_keeps_vectors(api: Any, tmp_path: Any, wos_dialect: str) -> None:
    from tests.kernel.snapshot.conftest import running
    from workeros.schema import transfer
    from workeros.sdk.testing import create_pg_database, drop_pg_database

    admin = api.as_admin()
    await make_docs(admin, "l2")
    docs = await fill(admin, 15, random.Random(9))
    archive = tmp_path / "export.zip"
    await transfer.export_archive(api.server.app[SERVICES], archive)
    url = f"sqlite:///{tmp_path / 'b.db'}" if wos_dialect == "sqlite" else await create_pg_database()
    try:
        async with running(url, tmp_path / "b") as b:
            await transfer.import_archive(b.services, archive)
            q = rand_vector(random.Random(1))
            r = await b.as_admin().post("/api/vectors/docs/search", json={"vector": q, "limit": 4})
            assert [row["id"] for row in r.data] == [k for k, _ in expected(docs, "l2", q, 4)]
            r = await b.as_admin().get(f"/api/items/docs/{docs[0]['id']}", params={"fields": "embedding"})
            assert r.data["embedding"] == docs[0]["embedding"]
    finally:
        if wos_dialect != "sqlite":
            await drop_pg_database(url)


async def test_graphql_reads_and_writes_vectors_as_json_arrays(api: Any) -> None:
    admin = api.as_admin()
    await make_docs(admin)
    vec = [0.5, -0.25, 1.0, 2.0, 0.0, 0.125, -1.0, 3.0]
    q = "mutation($v: JSON) { create_docs_item(data: {title: \"g\", embedding: $v}) { id title } }"
    r = await admin.post("/api/graphql", json={"query": q, "variables": {"v": vec}})
    assert r.status == 200 and "errors" not in r.json, r
    key = r.json["data"]["create_docs_item"]["id"]
    r = await admin.post("/api/graphql", json={"query": f"{{ docs_by_id(id: {key}) {{ title embedding }} }}"})
    assert r.json["data"]["docs_by_id"] == {"title": "g", "embedding": vec}
    r = await admin.post("/api/graphql", json={"query": q, "variables": {"v": vec[:3]}})
    assert r.json.get("errors"), r
    assert len((await admin.get("/api/items/docs")).data) == 1


async def test_mcp_vector_tools(api: Any) -> None:
    from workeros.api import Accountability
    from workeros.hookspecs.mcp import ToolContext

    admin = api.as_admin()
    await make_docs(admin, "l2")
    docs = await fill(admin, 12, random.Random(4), owner=lambda i: "u1" if i < 3 else "x")
    role = await _grant_owner_rows(admin)
    services = api.server.app[SERVICES]
    tools = {t.name: t for _, entries in services.plugins.collect("workeros_register_mcp_tools") for t in entries}
    search, upsert = tools["vector_search"], tools["vector_upsert"]
    assert (search.read_only, upsert.read_only, upsert.destructive) == (True, False, False)
    system = ToolContext(Accountability(user=None, role=None, admin=True), services)
    q = rand_vector(random.Random(2))
    rows = await search.handler(system, {"collection": "docs", "vector": q, "limit": 3, "fields": ["id"]})
    assert [r["id"] for r in rows] == [k for k, _ in expected(docs, "l2", q, 3)]
    # The caller's permissions apply: the owner sees its three rows only.
    owner = ToolContext(Accountability(user="u1", role=role), services)
    rows = await search.handler(owner, {"collection": "docs", "vector": q, "limit": 10, "fields": ["id"]})
    assert sorted(r["id"] for r in rows) == sorted(d["id"] for d in docs if d["owner"] == "u1")
    # Upsert goes through the write path: the next search sees it.
    await upsert.handler(system, {"collection": "docs", "id": docs[5]["id"], "field": "embedding", "vector": q})
    rows = await search.handler(system, {"collection": "docs", "vector": q, "limit": 1})
    assert rows[0]["id"] == docs[5]["id"] and rows[0]["$distance"] == 0.0
    created = await upsert.handler(system, {"collection": "docs", "field": "embedding", "vector": [9.0] * DIM,
                                            "data": {"title": "new"}})
    rows = await search.handler(system, {"collection": "docs", "vector": [9.0] * DIM, "limit": 1})
    assert rows[0]["id"] == created["id"]
    with pytest.raises(Exception) as refused:
        await upsert.handler(owner, {"collection": "docs", "id": docs[0]["id"], "field": "embedding", "vector": q})
    assert getattr(refused.value, "status", None) in (403, 404)


async def test_graphql_nearest_equals_rest_search_per_role(api: Any) -> None:
    """``<slug>_nearest`` answers what ``POST /api/vectors/{slug}/search``
    answers the same caller — the role's row filter before ranking, only the
    selected fields, ``_distance`` — and is absent for a role that may not read
    the vector field."""
    admin = api.as_admin()
    await make_docs(admin)
    rng = random.Random(15)
    docs = await fill(admin, 30, rng, owner=lambda i: "a" if i % 3 == 0 else "b")
    for role, fields in (("owner_a", ["id", "title", "n", "embedding"]), ("blind", ["id", "title"])):
        assert (await admin.post("/api/roles", json={"id": role, "name": role})).status == 201
        r = await admin.post("/api/permissions", json={"role": role, "collection": "docs", "action": "read",
                                                       "fields": fields, "filter": {"owner": {"_eq": "a"}}})
        assert r.status == 201, r
    q = rand_vector(rng)
    query = ("query($v: [Float!], $f: docs_Filter) { docs_nearest(vector: $v, limit: 4, filter: $f) "
             "{ id title _distance } }")
    for caller in (admin, api.as_role("owner_a")):
        for flt in (None, {"n": {"_gte": 9}}):
            r = await caller.post("/api/graphql", json={"query": query, "variables": {"v": q, "f": flt}})
            assert r.status == 200 and "errors" not in r.json, r
            got = r.json["data"]["docs_nearest"]
            body = {"vector": q, "limit": 4, "fields": ["id", "title"], **({"filter": flt} if flt else {})}
            rest = await caller.post("/api/vectors/docs/search", json=body)
            assert rest.status == 200, rest
            assert [(g["id"], g["title"]) for g in got] == [(x["id"], x["title"]) for x in rest.data]
            assert [g["_distance"] for g in got] == pytest.approx([x["$distance"] for x in rest.data])
            assert len(got) == 4
    mine = {d["id"] for d in docs if d["owner"] == "a"}
    r = await api.as_role("owner_a").post("/api/graphql", json={"query": query, "variables": {"v": q}})
    assert {g["id"] for g in r.json["data"]["docs_nearest"]} <= mine
    # Distances against the oracle, over the admin's whole set.
    r = await admin.post("/api/graphql", json={"query": query, "variables": {"v": q}})
    want = expected(docs, "cosine", q, 4)
    got = r.json["data"]["docs_nearest"]
    assert [g["id"] for g in got] == [k for k, _ in want]
    assert [g["_distance"] for g in got] == pytest.approx([d for _, d in want])
    # A role that may not read the vector field has no such query.
    r = await api.as_role("blind").post("/api/graphql", json={"query": query, "variables": {"v": q}})
    assert r.json.get("errors") and not (r.json.get("data") or {}).get("docs_nearest"), r
    # Bad input is an error in the response, not a 500.
    r = await admin.post("/api/graphql", json={"query": query, "variables": {"v": [1.0, 2.0]}})
    assert r.status == 200 and r.json["errors"] and "Traceback" not in str(r.json), r
