"""A Chroma collection per vector field, kept in step with the rows through the
change log.

The rows' own column stays the truth; Chroma only proposes candidates, which the
search service checks against the caller's permissions and filter and ranks by
the rows' own vectors (asking again for more when too few pass).

Chroma cannot join the database transaction, so a write only adds ``(table,
field, key)`` rows to ``wos_vec_changes`` *in its own transaction* (the
outbox the vectors plugin keeps for such stores). After the commit, and before
every search, the changes logged past the field's cursor are applied: the
current vectors of those keys are read from the rows and upserted, keys
without one deleted — idempotent, so applying a change twice is harmless. The
cursor (``wos_chroma_cursors``: the last change applied, per field) advances
in the same transaction that applies a batch, under a cross-process lock, so a
batch is applied again after a crash or a Chroma outage, and two processes
never apply one change out of order.

A field's Chroma collection is named ``<prefix>-<table>-<field>-<token>``;
the token is drawn when the collection is (re)built from the rows and kept in
the cursor row, so a database restored or imported elsewhere, a wiped Chroma,
or a change of the field's dimensions or metric all lead to a fresh build
rather than to a collection describing other rows.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa

from workeros.api import Database, ServiceUnavailable, StartupError, setting_or

log = logging.getLogger("workeros.chroma")

#: ``Database.lock`` key of the vectors change log's writers (as the vectors plugin takes it).
LOG_LOCK = 0x766563746F72  # "vector"
#: ``Database.lock`` key serialising the application of changes to Chroma.
APPLY_LOCK = 0x6368726F6D61  # "chroma"
_SPACES = {"cosine": "cosine", "l2": "l2", "ip": "ip"}
_META = sa.MetaData()
#: The vectors plugin's change log (the same table: whichever store runs creates it).
CHANGES = sa.Table(
    "wos_vec_changes", _META,
    sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("tbl", sa.String(128), nullable=False),
    sa.Column("field", sa.String(128), nullable=False),
    sa.Column("key", sa.Text(), nullable=False),
)
CURSORS = sa.Table(
    "wos_chroma_cursors", _META,
    sa.Column("tbl", sa.String(128), primary_key=True),
    sa.Column("field", sa.String(128), primary_key=True),
    sa.Column("token", sa.String(32), nullable=False),
    sa.Column("shape", sa.String(64), nullable=False),
    sa.Column("seq", sa.BigInteger(), nullable=False),
)
_NAME_PART = re.compile(r"[^A-Za-z0-9_]")
_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$")
#: Keys read and applied per Chroma call.
BATCH = 1000


def chromadb_missing() -> str | None:
    """Checked at every boot: looked up, not imported (importing chromadb takes seconds)."""
    import importlib.util

    if importlib.util.find_spec("chromadb") is None:
        return "chromadb is not installed (pip install workeros[chroma])"
    return None


@dataclass
class _Field:
    """What this process knows of one field's Chroma collection."""

    token: str
    shape: str
    collection: Any
    seq: int


class ChromaStore:
    """Chroma collections, synchronised through ``wos_vec_changes``."""

    name = "chroma"

    def __init__(self, database: Database, client: Any, prefix: str, where: str, settings: Any = None) -> None:
        self.db = database
        self.client = client
        self.prefix = prefix
        self.where = where
        self.ef_search = int(setting_or(settings, "chroma.ef_search", 256))
        self.ef_construction = int(setting_or(settings, "chroma.ef_construction", 256))
        self.fields: dict[tuple[str, str], _Field] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._pending: set[tuple[str, str]] = set()

    async def setup(self) -> None:
        async with self.db.transaction() as conn:
            await conn.run_sync(_META.create_all, checkfirst=True)

    def indexed(self, collection: Any, field: Any) -> bool:
        return True

    # -- writes: the outbox, in the write's transaction; applied after the commit ------------
    async def _log(self, connection: Any, collection: Any, field: Any, keys: Sequence[Any]) -> None:
        if not keys:
            return
        await self.db.lock(connection, LOG_LOCK)
        await connection.execute(CHANGES.insert(), [
            {"tbl": collection.table.name, "field": field.name, "key": str(k)} for k in keys])
        self.db.after_commit(connection, lambda: self._soon(collection, field))

    async def upsert(self, connection: Any, collection: Any, field: Any,
                     items: Sequence[tuple[Any, Sequence[float]]]) -> None:
        await self._log(connection, collection, field, [k for k, _ in items])

    async def delete(self, connection: Any, collection: Any, field: Any, keys: Sequence[Any]) -> None:
        await self._log(connection, collection, field, keys)

    def _soon(self, collection: Any, field: Any) -> None:
        """Apply the field's new changes in the background (once per burst of writes)."""
        ident = (collection.table.name, field.name)
        if ident not in self.fields or ident in self._pending:
            return  # a field not used yet here is built at its first search
        self._pending.add(ident)

        async def run() -> None:
            self._pending.discard(ident)
            try:
                await self._catch_up(collection, field)
            except Exception as exc:  # applied again before the next search
                log.warning("applying vector changes of %s.%s to Chroma failed: %s", collection.name, field.name,
                            exc)

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- Chroma calls (the client is synchronous) --------------------------------------------
    async def _chroma(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except Exception as exc:
            log.warning("Chroma call failed (%s): %s", self.where, exc)
            raise ServiceUnavailable("The vector index (Chroma) did not answer") from None

    def _name(self, collection: Any, field: Any, token: str) -> str:
        table = _NAME_PART.sub("_", collection.table.name)[:120]
        return f"{self.prefix}-{table}-{_NAME_PART.sub('_', field.name)[:120]}-{token}"

    @staticmethod
    def _shape(collection: Any, field: Any) -> str:
        return f"{field.options['dimensions']}:{field.options.get('metric', 'cosine')}:{collection.pk_field.type}"

    @staticmethod
    def _key_of(collection: Any, text: str) -> Any:
        return int(text) if collection.pk_field.type in ("integer", "bigint") else text

    @staticmethod
    async def _vectors(conn: Any, collection: Any, field: Any, keys: Sequence[Any] | None = None,
                       after: Any = None) -> list[tuple[Any, list[float]]]:
        raw = sa.type_coerce(collection.column(field.name), sa.LargeBinary())
        pk = collection.pk_column
        stmt = sa.select(pk, raw).where(collection.column(field.name).is_not(None))
        if keys is not None:
            stmt = stmt.where(pk.in_(keys))
        else:
            stmt = stmt.order_by(pk).limit(BATCH)
            if after is not None:
                stmt = stmt.where(pk > after)
        rows = (await conn.execute(stmt)).all()
        return [(r[0], np.frombuffer(bytes(r[1]), dtype="<f8").tolist()) for r in rows]

    # -- a field's collection ----------------------------------------------------------------
    def _lock(self, ident: tuple[str, str]) -> asyncio.Lock:
        return self._locks.setdefault(ident, asyncio.Lock())

    async def _cursor(self, conn: Any, ident: tuple[str, str]) -> Any:
        return (await conn.execute(sa.select(CURSORS.c.token, CURSORS.c.shape, CURSORS.c.seq).where(
            CURSORS.c.tbl == ident[0], CURSORS.c.field == ident[1]))).first()

    async def _open(self, conn: Any, collection: Any, field: Any, row: Any) -> _Field | None:
        """The field's collection as the cursor row describes it, or ``None``
        when it must be built (no row, another shape, no such collection)."""
        shape = self._shape(collection, field)
        if row is None or row.shape != shape:
            return None
        name = self._name(collection, field, row.token)
        try:
            handle = await asyncio.to_thread(self.client.get_collection, name, embedding_function=None)
        except Exception:
            return None
        return _Field(token=row.token, shape=shape, collection=handle, seq=int(row.seq))

    async def _field(self, collection: Any, field: Any) -> _Field:
        ident = (collection.table.name, field.name)
        state = self.fields.get(ident)
        if state is not None and state.shape == self._shape(collection, field):
            return state
        async with self._lock(ident):
            state = self.fields.get(ident)
            if state is not None and state.shape == self._shape(collection, field):
                return state
            async with self.db.transaction() as conn:
                await self.db.lock(conn, APPLY_LOCK)
                state = await self._open(conn, collection, field, await self._cursor(conn, ident))
                if state is None:
                    state = await self._build(conn, collection, field)
            self.fields[ident] = state
            return state

    async def _build(self, conn: Any, collection: Any, field: Any) -> _Field:
        """A new collection filled from the rows; the cursor row names it."""
        ident = (collection.table.name, field.name)
        # The log's head first: a change committing meanwhile is applied again later (idempotent).
        seq = int((await conn.execute(sa.select(sa.func.max(CHANGES.c.seq)))).scalar() or 0)
        token = secrets.token_hex(4)
        name = self._name(collection, field, token)
        metric = field.options.get("metric", "cosine")
        handle = await self._chroma(self.client.create_collection, name, embedding_function=None,
                                    metadata={"hnsw:space": _SPACES[metric], "hnsw:search_ef": self.ef_search,
                                              "hnsw:construction_ef": self.ef_construction,
                                              "workeros_table": ident[0], "workeros_field": ident[1]})
        count, after = 0, None
        while True:
            batch = await self._vectors(conn, collection, field, after=after)
            if not batch:
                break
            await self._chroma(handle.add, ids=[str(k) for k, _ in batch], embeddings=[v for _, v in batch])
            count += len(batch)
            after = batch[-1][0]
        values = {"token": token, "shape": self._shape(collection, field), "seq": seq}
        insert = self.db.insert(CURSORS).values(tbl=ident[0], field=ident[1], **values)
        await conn.execute(insert.on_conflict_do_update(index_elements=[CURSORS.c.tbl, CURSORS.c.field],
                                                        set_=values))
        await self._drop_others(collection, field, name)
        log.info("built the Chroma collection %s for %s.%s (%d vectors)", name, collection.name, field.name, count)
        return _Field(token=token, shape=values["shape"], collection=handle, seq=seq)

    async def _drop_others(self, collection: Any, field: Any, keep: str) -> None:
        """Earlier collections of the same field (older tokens): nothing reads them any more."""
        stem = self._name(collection, field, "")
        try:
            names = [getattr(c, "name", c) for c in await asyncio.to_thread(self.client.list_collections)]
            for name in names:
                if name != keep and name.startswith(stem) and len(name) == len(keep):
                    await asyncio.to_thread(self.client.delete_collection, name)
        except Exception as exc:  # only space is lost
            log.warning("could not remove old Chroma collections of %s.%s: %s", collection.name, field.name, exc)

    async def _catch_up(self, collection: Any, field: Any) -> _Field:
        """Apply the changes logged past the field's cursor; return the field's state."""
        ident = (collection.table.name, field.name)
        state = await self._field(collection, field)
        pending = CHANGES.c.tbl == ident[0], CHANGES.c.field == ident[1]
        async with self.db.read() as conn:
            head = (await conn.execute(sa.select(sa.func.max(CHANGES.c.seq)).where(
                CHANGES.c.seq > state.seq, *pending))).scalar()
        if head is None:
            return state
        async with self._lock(ident), self.db.transaction() as conn:
            await self.db.lock(conn, APPLY_LOCK)
            row = await self._cursor(conn, ident)
            if row is None or row.token != state.token or row.shape != state.shape:
                # Rebuilt by another process (or removed): take up the collection it names.
                fresh = await self._open(conn, collection, field, row)
                if fresh is None:
                    fresh = await self._build(conn, collection, field)
                self.fields[ident] = state = fresh
            state.seq = max(state.seq, int(row.seq) if row is not None and row.token == state.token else 0)
            changes = (await conn.execute(sa.select(CHANGES.c.seq, CHANGES.c.key).where(
                CHANGES.c.seq > state.seq, *pending).order_by(CHANGES.c.seq))).all()
            if not changes:
                return state
            keys = list(dict.fromkeys(self._key_of(collection, k) for _, k in changes))
            for start in range(0, len(keys), BATCH):
                part = keys[start:start + BATCH]
                found = await self._vectors(conn, collection, field, part)
                # Every logged key out, then the current vectors in: Chroma's upsert of an existing id can
                # leave the new vector out of its graph's reach, a fresh add does not (both idempotent).
                await self._chroma(state.collection.delete, ids=[str(k) for k in part])
                if found:
                    await self._chroma(state.collection.add, ids=[str(k) for k, _ in found],
                                       embeddings=[v for _, v in found])
            seq = int(changes[-1][0])
            await conn.execute(CURSORS.update().where(CURSORS.c.tbl == ident[0], CURSORS.c.field == ident[1])
                               .values(seq=seq))
        state.seq = seq
        return state

    # -- reads --------------------------------------------------------------------------------
    async def nearest(self, collection: Any, field: Any, vector: Sequence[float], *, limit: int
                      ) -> list[tuple[Any, float]]:
        state = await self._catch_up(collection, field)
        count = await self._chroma(state.collection.count)
        if not count:
            return []
        found = await self._chroma(state.collection.query, query_embeddings=[list(vector)],
                                   n_results=min(int(limit), count), include=["distances"])
        metric = field.options.get("metric", "cosine")
        out = []
        for key, distance in zip(found["ids"][0], found["distances"][0], strict=True):
            d = float(distance)
            # Chroma's l2 is squared and its ip is 1 - dot; the project's are the distance and -dot.
            d = float(np.sqrt(max(d, 0.0))) if metric == "l2" else d - 1.0 if metric == "ip" else d
            out.append((self._key_of(collection, key), d))
        return out

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _client(settings: Any) -> tuple[Any, str]:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    url = setting_or(settings, "chroma.url", None)
    if url:
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise StartupError(f"chroma.url must be an http(s) URL, not {url[:80]!r}")
        token = setting_or(settings, "chroma.token", None)
        headers = {"Authorization": f"Bearer {token}"} if token else None
        client = chromadb.HttpClient(host=parts.hostname, port=parts.port or (443 if parts.scheme == "https" else 80),
                                     ssl=parts.scheme == "https", headers=headers, settings=chroma_settings)
        return client, f"{parts.scheme}://{parts.hostname}:{parts.port or ''}"
    path = setting_or(settings, "chroma.path", None) or str(Path(setting_or(settings, "data_dir", ".workeros"))
                                                          / "chroma")
    Path(path).mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=path, settings=chroma_settings), "embedded"


async def open_chroma(settings: Any, database: Database) -> ChromaStore:
    prefix = str(setting_or(settings, "chroma.prefix", "wos"))
    if not _PREFIX.match(prefix):
        raise StartupError("chroma.prefix must be 1 to 32 letters, digits, '_' or '-', starting with a letter or "
                           "digit")
    try:
        client, where = await asyncio.to_thread(_client, settings)
        if where != "embedded":
            await asyncio.to_thread(client.heartbeat)
    except StartupError:
        raise
    except Exception as exc:
        raise StartupError(f"cannot reach Chroma ({type(exc).__name__}: {str(exc)[:200]})") from None
    store = ChromaStore(database, client, prefix, where, settings)
    await store.setup()
    return store
