"""The ``usearch`` store: an in-process HNSW index (the usearch library) per
vector field, kept in step with the rows through a change log.

The rows' own column stays the truth; the index only proposes candidates, which
the search service checks against the caller's permissions and filter and ranks
by the rows' own vectors. An index in memory cannot commit with a transaction,
so writes add ``(table, field, key)`` rows to ``wos_vec_changes`` *in the
write's transaction* (an outbox); before each search the process applies the
changes logged since its last look, re-reading the current vectors of those
keys. Every process (``serve --workers``, several instances on one PostgreSQL)
therefore sees every committed write, its own and others', at its next search.
An index is built from the rows at its first search after start, and anew
when the field's dimensions or metric change.

Log entries take the database's cross-process lock first (``Database.lock``),
so their sequence numbers are handed out in commit order and no reader can
pass over one that commits late.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sqlalchemy as sa

from workeros.api import Database, setting_or

log = logging.getLogger("workeros.vectors")

#: ``Database.lock`` key serialising change-log writers (an arbitrary 63-bit number).
LOG_LOCK = 0x766563746F72  # "vector"
_METRICS = {"cosine": "cos", "l2": "l2sq", "ip": "ip"}
_META = sa.MetaData()
CHANGES = sa.Table(
    "wos_vec_changes", _META,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("tbl", sa.String(128), nullable=False),
    sa.Column("field", sa.String(128), nullable=False),
    sa.Column("key", sa.Text(), nullable=False),
)


def usearch_missing() -> str | None:
    # Looked up, not imported: usearch loads with the first index.
    if importlib.util.find_spec("usearch") is None:
        return "usearch is not installed (pip install usearch)"
    return None


@dataclass
class _Index:
    """One field's HNSW graph and the key <-> label maps beside it."""

    graph: Any
    table: str
    seq: int = 0
    labels: dict[Any, int] = field(default_factory=dict)
    keys: dict[int, Any] = field(default_factory=dict)
    next_label: int = 0
    removed: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def put(self, items: Sequence[tuple[Any, np.ndarray]]) -> None:
        old = [self.labels.pop(k) for k, _ in items if k in self.labels]
        for label in old:
            self.keys.pop(label, None)
        if old:
            self.graph.remove(np.asarray(old, dtype=np.uint64))
            self.removed += len(old)
        if not items:
            return
        labels = np.arange(self.next_label, self.next_label + len(items), dtype=np.uint64)
        self.next_label += len(items)
        for (key, _), label in zip(items, labels.tolist(), strict=True):
            self.labels[key] = label
            self.keys[label] = key
        self.graph.add(labels, np.vstack([v for _, v in items]).astype(np.float32, copy=False))

    def drop(self, keys: Sequence[Any]) -> None:
        old = [self.labels.pop(k) for k in keys if k in self.labels]
        for label in old:
            self.keys.pop(label, None)
        if old:
            self.graph.remove(np.asarray(old, dtype=np.uint64))
            self.removed += len(old)


class UsearchStore:
    """HNSW in the process (usearch), synchronised through ``wos_vec_changes``."""

    name = "usearch"

    def __init__(self, database: Database, settings: Any = None) -> None:
        self.db = database
        self.connectivity = int(setting_or(settings, "vectors.index_connectivity", 16))
        self.ef_construction = int(setting_or(settings, "vectors.index_ef_construction", 128))
        self.ef_search = int(setting_or(settings, "vectors.index_ef_search", 128))
        self.dtype = str(setting_or(settings, "vectors.index_dtype", "f32"))
        self.indexes: dict[tuple[Any, ...], _Index] = {}
        self._building: dict[tuple[Any, ...], asyncio.Lock] = {}

    async def setup(self) -> None:
        async with self.db.transaction() as conn:
            await conn.run_sync(_META.create_all, checkfirst=True)

    def indexed(self, collection: Any, field: Any) -> bool:
        return True

    # -- writes: the outbox, in the write's transaction ---------------------------------------
    async def _log(self, connection: Any, collection: Any, field: Any, keys: Sequence[Any]) -> None:
        if not keys:
            return
        await self.db.lock(connection, LOG_LOCK)
        await connection.execute(CHANGES.insert(), [
            {"tbl": collection.table.name, "field": field.name, "key": str(k)} for k in keys])

    async def upsert(self, connection: Any, collection: Any, field: Any,
                     items: Sequence[tuple[Any, Sequence[float]]]) -> None:
        await self._log(connection, collection, field, [k for k, _ in items])

    async def delete(self, connection: Any, collection: Any, field: Any, keys: Sequence[Any]) -> None:
        await self._log(connection, collection, field, keys)

    # -- reads --------------------------------------------------------------------------------
    def _tag(self, collection: Any, field: Any) -> tuple[Any, ...]:
        # A field whose shape changes (dimensions, metric, key type) gets a new index.
        return (collection.name, field.name, collection.table.name, collection.pk_field.type,
                field.options["dimensions"], field.options.get("metric", "cosine"))

    def _key_of(self, collection: Any, text: str) -> Any:
        return int(text) if collection.pk_field.type in ("integer", "bigint") else text

    async def _vectors(self, conn: Any, collection: Any, field: Any, keys: Sequence[Any] | None = None
                       ) -> tuple[list[Any], np.ndarray]:
        raw = sa.type_coerce(collection.column(field.name), sa.LargeBinary())
        stmt = sa.select(collection.pk_column, raw).where(collection.column(field.name).is_not(None))
        if keys is not None:
            stmt = stmt.where(collection.pk_column.in_(keys))
        rows = (await conn.execute(stmt)).all()
        dims = field.options["dimensions"]
        if not rows:
            return [], np.zeros((0, dims), dtype=np.float32)
        matrix = np.frombuffer(b"".join(bytes(r[1]) for r in rows), dtype="<f8").reshape(len(rows), dims)
        return [r[0] for r in rows], matrix.astype(np.float32)

    async def _build(self, collection: Any, field: Any) -> _Index:
        from usearch.index import Index

        dims, metric = field.options["dimensions"], field.options.get("metric", "cosine")
        graph = Index(ndim=dims, metric=_METRICS[metric], dtype=self.dtype, connectivity=self.connectivity,
                      expansion_add=self.ef_construction, expansion_search=self.ef_search)
        async with self.db.read() as conn:
            # The log's head first: a write committing in between is applied again at the next look.
            seq = (await conn.execute(sa.select(sa.func.max(CHANGES.c.seq)))).scalar() or 0
            keys, matrix = await self._vectors(conn, collection, field)
        index = _Index(graph=graph, table=collection.table.name, seq=int(seq))
        if keys:
            labels = np.arange(len(keys), dtype=np.uint64)
            await asyncio.to_thread(graph.add, labels, matrix)
            index.labels = {k: i for i, k in enumerate(keys)}
            index.keys = dict(enumerate(keys))
            index.next_label = len(keys)
        log.info("built the vector index of %s.%s (%d vectors)", collection.name, field.name, len(keys))
        return index

    async def _current(self, collection: Any, field: Any) -> _Index:
        tag = self._tag(collection, field)
        index = self.indexes.get(tag)
        if index is None:
            building = self._building.setdefault(tag, asyncio.Lock())
            async with building:
                index = self.indexes.get(tag)
                if index is None:
                    for old in [t for t in self.indexes if t[:2] == tag[:2]]:
                        del self.indexes[old]
                    index = self.indexes[tag] = await self._build(collection, field)
            self._building.pop(tag, None)
        async with index.lock:
            await self._catch_up(index, collection, field)
        return index

    async def _catch_up(self, index: _Index, collection: Any, field: Any) -> None:
        """Apply the changes logged since ``index.seq``."""
        async with self.db.read() as conn:
            changes = (await conn.execute(
                sa.select(CHANGES.c.seq, CHANGES.c.key)
                .where(CHANGES.c.seq > index.seq, CHANGES.c.tbl == index.table, CHANGES.c.field == field.name)
                .order_by(CHANGES.c.seq))).all()
            if not changes:
                return
            keys = list(dict.fromkeys(self._key_of(collection, k) for _, k in changes))
            found: dict[Any, np.ndarray] = {}
            for start in range(0, len(keys), 500):
                ks, matrix = await self._vectors(conn, collection, field, keys[start:start + 500])
                found.update(zip(ks, matrix, strict=True))
        present = [(k, found[k]) for k in keys if k in found]
        index.drop([k for k in keys if k not in found])
        if len(present) > 2000:
            await asyncio.to_thread(index.put, present)
        else:
            index.put(present)
        index.seq = int(changes[-1][0])
        if index.removed > max(1000, len(index.labels)):
            # Many removals leave the graph sparse: build it afresh.
            self.indexes.pop(self._tag(collection, field), None)

    async def nearest(self, collection: Any, field: Any, vector: Sequence[float], *, limit: int
                      ) -> list[tuple[Any, float]]:
        index = await self._current(collection, field)
        async with index.lock:  # no catch-up changes the graph while it is searched
            if not index.labels:
                return []
            count = min(int(limit), len(index.labels))
            query = np.asarray(vector, dtype=np.float32)
            if count > index.graph.expansion_search:
                matches = await asyncio.to_thread(index.graph.search, query, count)
            else:
                matches = index.graph.search(query, count)
            keys = index.keys
            return [(keys[int(label)], float(d)) for label, d in zip(matches.keys, matches.distances, strict=True)
                    if int(label) in keys]

    def memory_bytes(self) -> int:
        """Bytes the indexes hold (graphs and vectors)."""
        return sum(int(i.graph.memory_usage) for i in self.indexes.values())


async def open_usearch(settings: Any, database: Database) -> UsearchStore:
    store = UsearchStore(database, settings)
    await store.setup()
    return store
