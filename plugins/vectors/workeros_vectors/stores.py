"""Vector stores: the exact scan (any dialect), sqlite-vec and pgvector.

Every store reads and writes on the connection it is handed, so an index commits
or rolls back with the rows it describes. Index tables are named
``wos_vec_<table>_<field>`` and created on first use; a missing or out-of-step
index (after an import, which writes rows directly) is rebuilt from the rows.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa

from workeros.api import Database, StartupError

from .field import distances

log = logging.getLogger("workeros.vectors")


def index_table_name(collection: Any, field: Any, limit: int = 63) -> str:
    name = f"wos_vec_{collection.table.name}_{field.name}"
    if len(name) > limit:
        digest = hashlib.sha1(name.encode()).hexdigest()[:10]
        name = f"{name[:limit - 11]}_{digest}"
    return name


def _key(collection: Any, value: Any) -> Any:
    """A key as the index holds it: integers stay integers, others are text."""
    return value if collection.pk_field.type in ("integer", "bigint") else str(value)


class ExactStore:
    """No index: every search ranks the caller's permitted, filtered rows
    exactly (NumPy over the vectors read from the rows)."""

    name = "exact"

    def __init__(self, database: Database) -> None:
        self.db = database

    def indexed(self, collection: Any, field: Any) -> bool:
        return False

    async def upsert(self, connection: Any, collection: Any, field: Any,
                     items: Sequence[tuple[Any, Sequence[float]]]) -> None:
        return None

    async def delete(self, connection: Any, collection: Any, field: Any, keys: Sequence[Any]) -> None:
        return None

    async def nearest(self, collection: Any, field: Any, vector: Sequence[float], *, limit: int
                      ) -> list[tuple[Any, float]]:
        """The exact answer over every row (no permissions: callers filter)."""
        column, pk = collection.column(field.name), collection.pk_column
        async with self.db.read() as conn:
            rows = (await conn.execute(sa.select(pk, column).where(column.is_not(None)))).all()
        if not rows:
            return []
        matrix = np.array([r[1] for r in rows], dtype=np.float64)
        dist = distances(matrix, vector, field.options.get("metric", "cosine"))
        order = np.argsort(dist, kind="stable")[:limit]
        return [(rows[i][0], float(dist[i])) for i in order]


class _IndexStore:
    """Shared bookkeeping of the stores that keep an index table."""

    name = "index"

    def __init__(self, database: Database) -> None:
        self.db = database
        self.ready: set[tuple[str, int, str]] = set()

    def indexed(self, collection: Any, field: Any) -> bool:
        return True

    def _tag(self, collection: Any, field: Any) -> tuple[str, int, str]:
        return (index_table_name(collection, field), field.options["dimensions"], field.options.get("metric", "cosine"))

    def _quoted(self, name: str) -> str:
        return self.db.engine.dialect.identifier_preparer.quote(name)

    async def _rebuild_if_stale(self, conn: Any, collection: Any, field: Any, table: Any) -> None:
        column = collection.column(field.name)
        rows = (await conn.execute(sa.select(sa.func.count()).select_from(collection.table)
                                   .where(column.is_not(None)))).scalar()
        indexed = (await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar()
        if rows == indexed:
            return
        log.info("rebuilding the vector index of %s.%s (%s rows, %s indexed)", collection.name, field.name,
                 rows, indexed)
        await conn.execute(table.delete())
        result = await conn.execute(sa.select(collection.pk_column, column).where(column.is_not(None)))
        batch = [(k, v) for k, v in result.all()]
        for start in range(0, len(batch), 1000):
            await self._insert(conn, collection, field, table, batch[start:start + 1000])

    async def upsert(self, connection: Any, collection: Any, field: Any,
                     items: Sequence[tuple[Any, Sequence[float]]]) -> None:
        table = await self._ensure(connection, collection, field)
        await connection.execute(table.delete().where(table.c.id.in_([_key(collection, k) for k, _ in items])))
        await self._insert(connection, collection, field, table, items)

    async def delete(self, connection: Any, collection: Any, field: Any, keys: Sequence[Any]) -> None:
        table = await self._ensure(connection, collection, field)
        await connection.execute(table.delete().where(table.c.id.in_([_key(collection, k) for k in keys])))

    async def _insert(self, conn: Any, collection: Any, field: Any, table: Any,
                      items: Sequence[tuple[Any, Sequence[float]]]) -> None:
        raise NotImplementedError

    async def _ensure(self, conn: Any, collection: Any, field: Any) -> Any:
        raise NotImplementedError

    def _table(self, collection: Any, field: Any) -> Any:
        raise NotImplementedError


class SqliteVecStore(_IndexStore):
    """``vec0`` virtual tables of sqlite-vec in the database file itself. Its
    KNN is an exact scan in C over the whole field (no permissions inside); the
    search service checks candidates and asks again for more."""

    name = "sqlite-vec"

    def __init__(self, database: Database) -> None:
        super().__init__(database)
        import sqlite_vec

        self.path = sqlite_vec.loadable_path()

    def indexed(self, collection: Any, field: Any) -> bool:
        # vec0 measures l2 and cosine; inner-product fields are ranked exactly.
        return field.options.get("metric", "cosine") in ("l2", "cosine")

    async def _load(self, conn: Any) -> None:
        raw = await conn.get_raw_connection()
        if raw.info.get("sqlite_vec"):
            return
        driver = raw.driver_connection
        await _call(driver.enable_load_extension, True)
        await _call(driver.load_extension, self.path)
        await _call(driver.enable_load_extension, False)
        raw.info["sqlite_vec"] = True

    def _table(self, collection: Any, field: Any) -> Any:
        return sa.table(index_table_name(collection, field), sa.column("id"), sa.column("embedding"),
                        sa.column("distance"), sa.column("k"))

    async def _ensure(self, conn: Any, collection: Any, field: Any) -> Any:
        await self._load(conn)
        table = self._table(collection, field)
        tag = self._tag(collection, field)
        if tag not in self.ready:
            id_type = "integer primary key" if collection.pk_field.type in ("integer", "bigint") else "text primary key"
            ddl = (f"CREATE VIRTUAL TABLE IF NOT EXISTS {self._quoted(tag[0])} USING vec0("
                   f"id {id_type}, embedding float[{int(tag[1])}] distance_metric={tag[2]})")
            await conn.exec_driver_sql(ddl)
            await self._rebuild_if_stale(conn, collection, field, table)
            self.ready.add(tag)
        return table

    async def _insert(self, conn: Any, collection: Any, field: Any, table: Any,
                      items: Sequence[tuple[Any, Sequence[float]]]) -> None:
        if items:
            await conn.execute(table.insert(), [
                {"id": _key(collection, k), "embedding": np.asarray(v, dtype="<f4").tobytes()} for k, v in items])

    async def nearest(self, collection: Any, field: Any, vector: Sequence[float], *, limit: int
                      ) -> list[tuple[Any, float]]:
        if self._tag(collection, field) not in self.ready:
            # Created or rebuilt (after an import) in a write transaction: a
            # read connection's work is rolled back when it closes.
            async with self.db.transaction() as conn:
                await self._ensure(conn, collection, field)
        async with self.db.read() as conn:
            table = await self._ensure(conn, collection, field)
            stmt = (sa.select(table.c.id, table.c.distance)
                    .where(table.c.embedding.op("MATCH")(np.asarray(vector, dtype="<f4").tobytes()),
                           table.c.k == limit)
                    .order_by(table.c.distance))
            return [(k, float(d)) for k, d in (await conn.execute(stmt)).all()]


_PG_OPS = {"cosine": ("vector_cosine_ops", "<=>"), "l2": ("vector_l2_ops", "<->"), "ip": ("vector_ip_ops", "<#>")}


class PgVectorType(sa.types.UserDefinedType):
    """pgvector's ``vector(n)``; values travel as its text form ``[1,2,3]``."""

    cache_ok = True

    def __init__(self, dimensions: int | None = None) -> None:
        self.dimensions = dimensions

    def get_col_spec(self, **kw: Any) -> str:
        return "vector" if self.dimensions is None else f"vector({int(self.dimensions)})"

    def bind_processor(self, dialect: Any) -> Any:
        def process(value: Any) -> Any:
            return None if value is None else "[" + ",".join(repr(float(x)) for x in value) + "]"
        return process


class PgVectorStore(_IndexStore):
    """pgvector: one table per field with an HNSW index for the field's metric."""

    name = "pgvector"

    def _table(self, collection: Any, field: Any) -> Any:
        metadata = sa.MetaData()
        id_type = sa.BigInteger() if collection.pk_field.type in ("integer", "bigint") else sa.Text()
        table = sa.Table(index_table_name(collection, field), metadata, sa.Column("id", id_type, primary_key=True, autoincrement=False),
                         sa.Column("embedding", PgVectorType(field.options["dimensions"]), nullable=False))
        ops = _PG_OPS[field.options.get("metric", "cosine")][0]
        sa.Index(index_table_name(collection, field, limit=58) + "_hnsw", table.c.embedding,
                 postgresql_using="hnsw", postgresql_ops={"embedding": ops})
        return table

    async def _ensure(self, conn: Any, collection: Any, field: Any) -> Any:
        table = self._table(collection, field)
        tag = self._tag(collection, field)
        if tag not in self.ready:
            await conn.run_sync(table.metadata.create_all, checkfirst=True)
            await self._rebuild_if_stale(conn, collection, field, table)
            self.ready.add(tag)
        return table

    async def _insert(self, conn: Any, collection: Any, field: Any, table: Any,
                      items: Sequence[tuple[Any, Sequence[float]]]) -> None:
        if items:
            await conn.execute(table.insert(), [{"id": _key(collection, k), "embedding": list(v)} for k, v in items])

    async def nearest(self, collection: Any, field: Any, vector: Sequence[float], *, limit: int
                      ) -> list[tuple[Any, float]]:
        op = _PG_OPS[field.options.get("metric", "cosine")][1]
        async with self.db.transaction() as conn:
            table = await self._ensure(conn, collection, field)
            # hnsw.ef_search bounds how many rows one index scan returns; widen it for large over-fetches.
            await conn.execute(sa.select(sa.func.set_config("hnsw.ef_search", str(max(40, min(int(limit), 1000))),
                                                            True)))
            distance = table.c.embedding.op(op, return_type=sa.Float())(
                sa.cast(sa.literal(list(vector), PgVectorType()), PgVectorType()))
            stmt = sa.select(table.c.id, distance.label("distance")).order_by(distance).limit(int(limit))
            rows = (await conn.execute(stmt)).all()
            if len(rows) < limit:
                # One HNSW scan returns at most hnsw.ef_search rows, and can return fewer than asked (an
                # inner-product graph may leave rows out of reach), while fewer means "no more rows" to
                # the caller: rank the field exactly instead.
                await conn.execute(sa.select(sa.func.set_config("enable_indexscan", "off", True)))
                rows = (await conn.execute(stmt)).all()
        return [(k, float(d)) for k, d in rows]


async def _call(method: Any, *args: Any) -> Any:
    """A driver connection's method: aiosqlite's are coroutines, those of
    ``sqlite3`` (the engines that run on the event loop's thread) are not."""
    result = method(*args)
    return await result if inspect.isawaitable(result) else result


def sqlite_vec_missing() -> str | None:
    try:
        import sqlite_vec  # noqa: F401
    except ImportError:
        return "sqlite-vec is not installed (pip install workeros-vectors[sqlite-vec])"
    import sqlite3

    if not hasattr(sqlite3.Connection, "enable_load_extension") and importlib.util.find_spec("sqlean") is None:
        return ("this Python's sqlite3 cannot load extensions (built without --enable-loadable-sqlite-extensions), "
                "and sqlean.py is not installed (pip install workeros-vectors[sqlite-vec])")
    return None


async def open_sqlite_vec(settings: Any, database: Database) -> Any:
    """sqlite-vec once its extension loads on the database's connections.
    Where it cannot (this Python's sqlite3 was built without extension loading
    and ``sqlite.driver`` is not ``sqlean``, or the database is in memory), a
    startup error when ``vectors.backend`` names it, else, with a warning, the
    usearch store or the exact scan."""
    store = SqliteVecStore(database)
    try:
        async with database.read() as conn:
            await store._load(conn)
    except Exception as exc:  # no enable_load_extension, or the library refused the file
        reason = (f"its extension does not load on this database's connections ({type(exc).__name__}); where "
                  "this Python's sqlite3 cannot load extensions, set sqlite.driver = \"sqlean\" (installed with "
                  "workeros-vectors[sqlite-vec]; a database in memory always uses the standard library's sqlite3)")
        if settings["vectors.backend"] == SqliteVecStore.name:
            raise StartupError(f"vector store 'sqlite-vec' is unavailable: {reason}") from None
        from .hnsw import open_usearch, usearch_missing

        if usearch_missing() is None:
            log.warning("sqlite-vec: %s; vector searches use the in-process usearch index instead", reason)
            return await open_usearch(settings, database)
        log.warning("sqlite-vec: %s; vector searches use an exact scan of the permitted rows instead", reason)
        return ExactStore(database)
    return store


def open_exact(settings: Any, database: Database) -> ExactStore:
    return ExactStore(database)


async def open_pgvector(settings: Any, database: Database) -> Any:
    """pgvector when ``CREATE EXTENSION vector`` works here; else, with a
    warning, the in-process usearch index where it is installed, or the exact
    scan."""
    from .hnsw import open_usearch, usearch_missing

    try:
        async with database.transaction() as conn:
            await conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS vector")
    except Exception as exc:  # no extension files, or no privilege to create it
        if usearch_missing() is None:
            log.warning("pgvector is not available on this PostgreSQL server (%s); vector searches use the "
                        "in-process usearch index instead", type(exc).__name__)
            return await open_usearch(settings, database)
        log.warning("pgvector is not available on this PostgreSQL server (%s); vector searches use an exact "
                    "scan of the permitted rows instead of an HNSW index", type(exc).__name__)
        return ExactStore(database)
    return PgVectorStore(database)
