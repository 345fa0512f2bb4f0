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

Each index is saved to the data directory (``<data_dir>/vectors/``) with the
change-log position it covers, after it is built, after many changes and at
shutdown; a process starting on the same database loads the file and applies
only the changes logged after that position. A file is used only when it
belongs to this database (a token in ``wos_vec_state``), to this field's shape
and the index settings, when the log entry at its position is still the one it
recorded and, once the newer changes are applied, it holds as many vectors as
the field has rows; anything else (a corrupt, foreign or stale file) is
ignored and the index is built from the rows.

Log entries take the database's cross-process lock first (``Database.lock``),
so their sequence numbers are handed out in commit order and no reader can
pass over one that commits late.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
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
#: This database's token (``name = "database"``): an index file saved for another database is not used.
STATE = sa.Table(
    "wos_vec_state", _META,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text(), nullable=False),
)
#: Save an index again once this many changes (and a tenth of its size) were applied since the last save.
SAVE_AFTER = 1000
FORMAT = 1


def usearch_missing() -> str | None:
    # Looked up, not imported: usearch loads with the first index.
    if importlib.util.find_spec("usearch") is None:
        return "usearch is not installed (pip install usearch)"
    return None


def _unit(matrix: np.ndarray) -> np.ndarray:
    """Each row at unit length (a cosine field's vectors: the field refuses
    all-zero ones), scaled by its largest component first so that neither
    tiny nor huge components underflow or overflow on the way."""
    scale = np.abs(matrix).max(axis=1, keepdims=True)
    scale[scale == 0] = 1.0
    matrix = matrix / scale
    norm = np.linalg.norm(matrix, axis=1, keepdims=True)
    norm[norm == 0] = 1.0
    return matrix / norm


@dataclass
class _Index:
    """One field's HNSW graph and the key <-> label maps beside it."""

    graph: Any
    table: str
    seq: int = 0
    #: Cosine fields: the graph holds unit vectors, and queries are scaled to unit length too.
    unit: bool = False
    labels: dict[Any, int] = field(default_factory=dict)
    keys: dict[int, Any] = field(default_factory=dict)
    next_label: int = 0
    removed: int = 0
    #: Changes applied since the index was last saved (or loaded).
    unsaved: int = 0
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
        self.graph.add(labels, np.vstack([v for _, v in items]).astype(np.float32, copy=False), threads=1)

    def drop(self, keys: Sequence[Any]) -> None:
        old = [self.labels.pop(k) for k in keys if k in self.labels]
        for label in old:
            self.keys.pop(label, None)
        if old:
            self.graph.remove(np.asarray(old, dtype=np.uint64))
            self.removed += len(old)


class UsearchStore:
    """HNSW in the process (usearch), synchronised through ``wos_vec_changes``
    and saved to ``<data_dir>/vectors/`` with the log position it covers."""

    name = "usearch"

    def __init__(self, database: Database, settings: Any = None) -> None:
        self.db = database
        self.connectivity = int(setting_or(settings, "vectors.index_connectivity", 16))
        self.ef_construction = int(setting_or(settings, "vectors.index_ef_construction", 128))
        self.ef_search = int(setting_or(settings, "vectors.index_ef_search", 128))
        self.dtype = str(setting_or(settings, "vectors.index_dtype", "auto"))
        data_dir = setting_or(settings, "data_dir", None)
        #: Where indexes are saved (``None``: not saved).
        self.directory: Path | None = Path(data_dir) / "vectors" if data_dir else None
        self.token = ""
        #: Indexes loaded from their file, and built from the rows, by this process.
        self.loaded = self.built = 0
        self.indexes: dict[tuple[Any, ...], _Index] = {}
        self._building: dict[tuple[Any, ...], asyncio.Lock] = {}
        self._changes_stmt = (sa.select(CHANGES.c.seq, CHANGES.c.key)
                              .where(CHANGES.c.seq > sa.bindparam("seq", type_=sa.BigInteger()),
                                     CHANGES.c.tbl == sa.bindparam("tbl", type_=sa.String()),
                                     CHANGES.c.field == sa.bindparam("field", type_=sa.String()))
                              .order_by(CHANGES.c.seq))
        self._pending = (sa.select(sa.func.max(CHANGES.c.seq))
                         .where(CHANGES.c.seq > sa.bindparam("vec_seq", type_=sa.BigInteger()),
                                CHANGES.c.tbl == sa.bindparam("vec_tbl", type_=sa.String()),
                                CHANGES.c.field == sa.bindparam("vec_field", type_=sa.String()))
                         .scalar_subquery())

    async def setup(self) -> None:
        async with self.db.transaction() as conn:
            await conn.run_sync(_META.create_all, checkfirst=True)
            token = (await conn.execute(sa.select(STATE.c.value).where(STATE.c.name == "database"))).scalar()
            if token is None:
                await conn.execute(self.db.insert(STATE).on_conflict_do_nothing(),
                                   {"name": "database", "value": uuid.uuid4().hex})
        async with self.db.read() as conn:
            self.token = (await conn.execute(sa.select(STATE.c.value).where(STATE.c.name == "database"))).scalar()

    async def close(self) -> None:
        """Save the indexes that changed since they were last saved."""
        for tag, index in list(self.indexes.items()):
            if index.unsaved:
                async with index.lock:
                    await self._save(tag, index)

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

    def _new_graph(self, dims: int, metric: str) -> Any:
        from usearch.index import Index

        return Index(ndim=dims, metric=_METRICS[metric], dtype=self._dtype(metric), connectivity=self.connectivity,
                     expansion_add=self.ef_construction, expansion_search=self.ef_search)

    def _dtype(self, metric: str) -> str:
        """How the graph holds vectors. ``auto``: bytes (i8) for cosine fields,
        whose vectors the graph holds at unit length, so every component is in
        [-1, 1]; f32 for l2 and ip, whose vectors may have any scale. The graph
        only proposes candidates: they are ranked by the rows' own float64
        vectors, so i8 costs no recall there (0.985 against f32's 0.989 at 100k
        x 384) and halves the search time."""
        if self.dtype != "auto":
            return self.dtype
        return "i8" if metric == "cosine" else "f32"

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
        if field.options.get("metric", "cosine") == "cosine":
            matrix = _unit(matrix)
        return [r[0] for r in rows], matrix.astype(np.float32)

    async def _build(self, collection: Any, field: Any) -> _Index:
        dims, metric = field.options["dimensions"], field.options.get("metric", "cosine")
        graph = self._new_graph(dims, metric)
        async with self.db.read() as conn:
            # The log's head first: a write committing in between is applied again at the next look.
            seq = (await conn.execute(sa.select(sa.func.max(CHANGES.c.seq)))).scalar() or 0
            keys, matrix = await self._vectors(conn, collection, field)
        index = _Index(graph=graph, table=collection.table.name, seq=int(seq), unit=metric == "cosine")
        if keys:
            labels = np.arange(len(keys), dtype=np.uint64)
            # One thread: usearch's parallel insertion links a graph less well (on 200 random rows,
            # 1 search in 15 missed one of its 7 nearest within 14 candidates; none did built this way).
            await asyncio.to_thread(graph.add, labels, matrix, threads=1)
            index.labels = {k: i for i, k in enumerate(keys)}
            index.keys = dict(enumerate(keys))
            index.next_label = len(keys)
        self.built += 1
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
                    index = await self._load(tag, collection, field)
                    if index is None:
                        index = await self._build(collection, field)
                        async with index.lock:
                            await self._save(tag, index)
                    self.indexes[tag] = index
            self._building.pop(tag, None)
        async with index.lock:
            await self._catch_up(index, collection, field)
            if self.indexes.get(tag) is index and index.unsaved >= max(SAVE_AFTER, len(index.labels) // 10):
                await self._save(tag, index)
        return index

    async def _catch_up(self, index: _Index, collection: Any, field: Any) -> int:
        """Apply the changes logged since ``index.seq``; how many there were."""
        changes = await self.db.fetch(self._changes_stmt, {"seq": index.seq, "tbl": index.table,
                                                           "field": field.name})
        if not changes:
            return 0
        keys = list(dict.fromkeys(self._key_of(collection, k) for _, k in changes))
        found: dict[Any, np.ndarray] = {}
        async with self.db.read() as conn:
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
        index.unsaved += len(keys)
        if index.removed > max(1000, len(index.labels)):
            # Many removals leave the graph sparse: build it afresh (not from the file).
            tag = self._tag(collection, field)
            self.indexes.pop(tag, None)
            path = self._path(tag)
            if path is not None:
                with contextlib.suppress(OSError):
                    path.unlink()
        return len(keys)

    # -- the file ------------------------------------------------------------------------------
    def _settings_tag(self) -> dict[str, Any]:
        return {"connectivity": self.connectivity, "dtype": self.dtype, "format": FORMAT}

    def _path(self, tag: tuple[Any, ...]) -> Path | None:
        if self.directory is None:
            return None
        name = json.dumps([str(t) for t in tag])
        return self.directory / f"{tag[0]}.{tag[1]}-{hashlib.sha1(name.encode()).hexdigest()[:16]}.json"

    async def _log_entry(self, seq: int) -> list[str] | None:
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(CHANGES.c.tbl, CHANGES.c.field, CHANGES.c.key)
                                      .where(CHANGES.c.seq == seq))).first()
        return None if row is None else [str(v) for v in row]

    async def _save(self, tag: tuple[Any, ...], index: _Index) -> None:
        """Write the graph and its key map beside the log position they cover
        (under ``index.lock``). A new graph file, then the description naming
        it, each written whole and renamed into place: a reader sees the old
        pair or the new one."""
        path = self._path(tag)
        if path is None:
            return
        meta = {"tag": [str(t) for t in tag], "settings": self._settings_tag(), "database": self.token,
                "seq": index.seq, "entry": await self._log_entry(index.seq) if index.seq else None,
                "labels": list(index.keys), "keys": list(index.keys.values()), "next_label": index.next_label,
                "removed": index.removed, "size": len(index.graph)}
        try:
            await asyncio.to_thread(_write, path, index.graph, meta)
        except OSError as exc:
            log.warning("could not save the vector index of %s.%s (%s); indexes are not saved until the next "
                        "start", tag[0], tag[1], exc.strerror or type(exc).__name__)
            self.directory = None
            return
        index.unsaved = 0

    async def _load(self, tag: tuple[Any, ...], collection: Any, field: Any) -> _Index | None:
        """The saved index of ``tag`` brought up to date, or ``None`` when there
        is none this database can use."""
        path = self._path(tag)
        if path is None or not path.exists():
            return None
        started = time.perf_counter()
        try:
            meta, graph = await asyncio.to_thread(_read, path)
            usable = (meta["tag"] == [str(t) for t in tag] and meta["settings"] == self._settings_tag()
                      and meta["database"] == self.token and graph is not None
                      and graph.ndim == field.options["dimensions"] and len(graph) == meta["size"]
                      and len(meta["labels"]) == len(meta["keys"]) <= len(graph))
            if usable and meta["seq"]:
                usable = await self._log_entry(int(meta["seq"])) == meta["entry"]
            if not usable:
                raise ValueError("saved for another database, field or setting")
            graph.expansion_search, graph.expansion_add = self.ef_search, self.ef_construction
            labels = [int(x) for x in meta["labels"]]
            index = _Index(graph=graph, table=collection.table.name, seq=int(meta["seq"]),
                           unit=field.options.get("metric", "cosine") == "cosine",
                           labels=dict(zip(meta["keys"], labels, strict=True)),
                           keys=dict(zip(labels, meta["keys"], strict=True)),
                           next_label=int(meta["next_label"]), removed=int(meta["removed"]))
            await self._catch_up(index, collection, field)
            column = collection.column(field.name)
            async with self.db.read() as conn:
                rows = (await conn.execute(sa.select(sa.func.count()).select_from(collection.table)
                                           .where(column.is_not(None)))).scalar()
            if rows != len(index.labels):
                raise ValueError(f"holds {len(index.labels)} vectors, the field has {rows}")
        except Exception as exc:  # a corrupt, foreign or stale file: build from the rows
            log.warning("not using the saved vector index of %s.%s (%s); building it from the rows",
                        collection.name, field.name, str(exc)[:200] or type(exc).__name__)
            return None
        self.loaded += 1
        log.info("loaded the vector index of %s.%s (%d vectors) in %.2f s", collection.name, field.name,
                 len(index.labels), time.perf_counter() - started)
        return index

    async def nearest(self, collection: Any, field: Any, vector: Sequence[float], *, limit: int
                      ) -> list[tuple[Any, float]]:
        index = await self._current(collection, field)
        async with index.lock:  # no catch-up changes the graph while it is searched
            return await self._search(index, vector, limit)

    async def propose(self, collection: Any, field: Any, vector: Sequence[float], *, limit: int
                      ) -> tuple[list[tuple[Any, float]], dict[str, Any]] | None:
        """:meth:`nearest` without reading the change log first, and the
        parameters of :meth:`pending` for the position the index covers:
        the caller reads :meth:`pending` in the statement that reads the
        candidates, and when it names a change, asks :meth:`nearest` again.
        ``None`` while the field's index is not in memory."""
        index = self.indexes.get(self._tag(collection, field))
        if index is None:
            return None
        async with index.lock:
            return await self._search(index, vector, limit), {"vec_seq": index.seq, "vec_tbl": index.table,
                                                        "vec_field": field.name}

    def pending(self) -> Any:
        """A scalar SQL expression: the newest change logged after the position
        :meth:`propose` returned (NULL when there is none)."""
        return self._pending

    async def _search(self, index: _Index, vector: Sequence[float], limit: int) -> list[tuple[Any, float]]:
        """The graph's ``limit`` nearest as (key, distance); a search wider
        than the graph's own expansion runs off the event loop."""
        if not index.labels:
            return []
        count = min(int(limit), len(index.labels))
        query = np.asarray(vector, dtype=np.float64)
        query = (_unit(query[None, :])[0] if index.unit else query).astype(np.float32)
        if count > index.graph.expansion_search:
            matches = await asyncio.to_thread(index.graph.search, query, count)
        else:
            matches = index.graph.search(query, count, threads=1)  # one query: no thread pool
        keys = index.keys
        return [(keys[label], d) for label, d in zip(matches.keys.tolist(), matches.distances.tolist(), strict=True)
                if label in keys]

    def memory_bytes(self) -> int:
        """Bytes the indexes hold (graphs and vectors)."""
        return sum(int(i.graph.memory_usage) for i in self.indexes.values())


def _write(path: Path, graph: Any, meta: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    graph_name = f"{path.stem}-{uuid.uuid4().hex[:12]}.usearch"
    graph.save(str(path.parent / graph_name))
    meta = {**meta, "graph": graph_name}
    partial = path.with_name(f"{path.name}.{uuid.uuid4().hex[:8]}.partial")
    partial.write_text(json.dumps(meta))
    os.replace(partial, path)
    # Older graph files of this index (a minute old: another process may be about to name its new one).
    for old in path.parent.glob(f"{path.stem}-*.usearch"):
        with contextlib.suppress(OSError):
            if old.name != graph_name and time.time() - old.stat().st_mtime > 60:
                old.unlink()


def _read(path: Path) -> tuple[dict[str, Any], Any]:
    from usearch.index import Index

    meta = json.loads(path.read_text())
    graph_name = meta["graph"]
    if "/" in graph_name or "\\" in graph_name:
        raise ValueError("bad graph file name")
    graph = Index.restore(str(path.parent / graph_name))
    return meta, graph


async def open_usearch(settings: Any, database: Database) -> UsearchStore:
    store = UsearchStore(database, settings)
    await store.setup()
    return store
