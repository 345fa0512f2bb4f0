"""The kernel's handle on the database: an async SQLAlchemy engine plus the
dialect's transaction discipline. Dialect plugins subclass :class:`Database`.

What differs between dialects in the services (row locks, cross-process locks,
upserts, snapshot reads, key sequences) is a *capability* of this class: the
services call ``db.for_update(stmt)``, ``db.lock(conn, key)``, ``db.insert(table)``,
``db.read_snapshot(conn)`` and ``db.advance_sequence(conn, table)`` and never
test the dialect's name. The defaults here suit a database whose writes are
serialised (SQLite); the PostgreSQL plugin overrides them."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from workeros.db.column_types import UTCDateTime, iso_utc

AfterCommit = Callable[[], "Awaitable[None] | None"]
AFTER_COMMIT_KEY = "workeros.after_commit"


#: SQLSTATEs of a statement built on a schema that changed under it (PostgreSQL):
#: undefined table or column, a cached plan whose result type changed.
_SCHEMA_STATES = frozenset({"42P01", "42703", "0A000"})
_SCHEMA_MESSAGES = re.compile(r"no such (table|column)|has no column named|database schema has changed|"
                              r"cached plan must not change result type", re.I)


def schema_race(exc: BaseException) -> bool:
    """Whether ``exc`` is a driver error from a statement built on the schema as it
    was before a change committed (a dropped table or column, a changed type).
    Every identifier is checked against the schema before SQL is built, so these
    happen only in that race: the request is answered 503 with ``Retry-After``
    and a retry sees the new shape."""
    if not isinstance(exc, sa_exc.DBAPIError):
        return False
    orig = getattr(exc, "orig", None)
    for source in (orig, getattr(orig, "__cause__", None)):
        state = getattr(source, "sqlstate", None) or getattr(source, "pgcode", None)
        if isinstance(state, str) and state in _SCHEMA_STATES:
            return True
    return bool(_SCHEMA_MESSAGES.search(str(orig if orig is not None else exc)))


class Database:
    """``transaction()`` for writes (serialised where the dialect needs it),
    ``read()`` for reads. Callbacks registered with :meth:`after_commit` run once
    the surrounding transaction has committed, never after a rollback."""

    #: SQLAlchemy dialect name: ``sqlite`` or ``postgresql``.
    dialect: str = ""

    def __init__(self, engine: AsyncEngine, *, url: str) -> None:
        self.engine = engine
        self.url = url
        self.dialect = engine.dialect.name

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            async with self._begin(conn):
                conn.info[AFTER_COMMIT_KEY] = []
                yield conn
            callbacks = conn.info.pop(AFTER_COMMIT_KEY, [])
        await run_callbacks(callbacks)

    def _begin(self, conn: AsyncConnection) -> Any:
        return conn.begin()

    def schema_transaction(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A write transaction for schema changes (DDL and catalog rows together).
        Dialects override it to serialise schema changes across processes and to
        prepare the connection for DDL; by default it is :meth:`transaction`."""
        return self.transaction()

    def schema_changed(self) -> None:
        """The schema changed (here or on another instance): forget anything the
        driver cached against the old table definitions. Nothing by default."""

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            yield conn

    async def fetch(self, stmt: sa.Executable, params: Mapping[str, Any], *,
                    json_datetimes: bool = False) -> Sequence[Sequence[Any]]:
        """The rows of one read statement as tuples (in its columns' order, each
        value through its type's result processing), on a read connection of
        its own. A dialect may prepare a statement it sees again once (compiled
        SQL, bind and result processors) and run it on the driver directly: a
        caller that keeps one statement object per query shape passes it again
        with new ``params``. With ``json_datetimes``, the values of
        :class:`~workeros.db.column_types.UTCDateTime` columns come as their
        JSON text (:func:`~workeros.db.column_types.iso_utc`) instead of
        ``datetime`` objects."""
        async with self.read() as conn:
            rows = (await conn.execute(stmt, dict(params))).all()
        if not json_datetimes:
            return rows
        columns = [i for i, c in enumerate(stmt.selected_columns)  # type: ignore[attr-defined]
                   if isinstance(c.type, UTCDateTime)]
        if not columns:
            return rows
        out = []
        for row in rows:
            values = list(row)
            for i in columns:
                if values[i] is not None:
                    values[i] = iso_utc(values[i])
            out.append(values)
        return out

    @staticmethod
    def after_commit(conn: AsyncConnection, callback: AfterCommit) -> None:
        """Run ``callback`` after ``conn``'s transaction commits."""
        pending = conn.info.get(AFTER_COMMIT_KEY)
        if pending is None:
            raise RuntimeError("after_commit outside Database.transaction()")
        pending.append(callback)

    # -- capabilities: what the services need that differs between dialects ------------------

    def for_update(self, stmt: sa.Select, *, skip_locked: bool = False) -> sa.Select:
        """``stmt`` locking the rows it selects until the transaction ends, where
        the dialect has row locks; with ``skip_locked``, rows another transaction
        holds are left out (work queues). By default unchanged (writes are
        serialised, so no row is ever held by another writer)."""
        return stmt

    async def lock(self, conn: AsyncConnection, key: int) -> None:
        """Take the transaction-scoped lock named ``key`` (a 64-bit integer):
        transactions taking the same key run one after the other, across
        processes. By default nothing: write transactions already run one at a time."""

    def insert(self, table: sa.Table) -> Any:
        """An INSERT on ``table`` that also offers ``on_conflict_do_nothing()`` and
        ``on_conflict_do_update(index_elements=, set_=)`` (an upsert)."""
        raise NotImplementedError(f"{type(self).__name__} does not provide upserts")

    async def read_snapshot(self, conn: AsyncConnection) -> None:
        """Make every read of ``conn``'s transaction see one snapshot of the
        database (call before its first statement). By default nothing: a read
        transaction already sees one snapshot."""

    async def advance_sequence(self, conn: AsyncConnection, table: sa.Table) -> None:
        """After rows were written with explicit integer keys, make the key
        generator of ``table``'s primary key hand out keys past them. By default
        nothing (a rowid key follows the largest key by itself)."""

    async def ping(self) -> float:
        """Round-trip a trivial query; return the latency in milliseconds."""
        start = time.perf_counter()
        async with self.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
        return (time.perf_counter() - start) * 1000

    async def close(self) -> None:
        await self.engine.dispose()


class PreparedStatement:
    """A statement compiled once for a dialect's :meth:`Database.fetch`: its
    SQL, the order and bind processors of its parameters, its columns' result
    processors, as SQLAlchemy would apply them."""

    __slots__ = ("binds", "compiled", "json_results", "names", "results", "sql", "stmt")

    def __init__(self, stmt: sa.Executable, compiled: Any, names: list[str], binds: list[Any],
                 results: list[Any], json_results: list[Any] | None = None) -> None:
        self.stmt = stmt  # held, so its id stays its own while cached by id
        self.compiled = compiled
        self.sql: str = compiled.string
        self.names = names
        self.binds = binds
        self.results = results if any(results) else []
        json_results = results if json_results is None else json_results
        #: the result processors with datetimes going straight to JSON text
        self.json_results = json_results if any(json_results) else []

    @classmethod
    def of(cls, stmt: sa.Executable, dialect: sa.Dialect) -> PreparedStatement | None:
        """``None`` for a statement whose SQL depends on its values (an
        expanding ``IN``) or whose result processing depends on what the driver
        says of each column (asyncpg's numerics): that one runs through
        SQLAlchemy."""
        compiled = stmt.compile(dialect=dialect)
        if compiled.positiontup is None or "POSTCOMPILE" in compiled.string:
            return None
        names = list(compiled.positiontup)
        processors = compiled._bind_processors
        try:
            types = [entry[3] for entry in compiled._result_columns]
            results = [t._cached_result_processor(dialect, None) for t in types]
            json_results = [t.json_processor(dialect) if isinstance(t, UTCDateTime) else r
                            for t, r in zip(types, results, strict=True)]
        except (TypeError, KeyError, ValueError):
            return None
        return cls(stmt, compiled, names, [processors.get(n) for n in names], results, json_results)

    def args(self, params: Mapping[str, Any]) -> list[Any]:
        """The positional arguments for ``params`` (and the statement's own values)."""
        values = self.compiled.construct_params(params, _check=False)
        return [value if proc is None or value is None else proc(value)
                for value, proc in zip((values[n] for n in self.names), self.binds, strict=True)]

    def process(self, rows: Sequence[Sequence[Any]], json_datetimes: bool = False) -> Sequence[Sequence[Any]]:
        """Driver rows as SQLAlchemy would return them (each value through its
        type's result processor); with ``json_datetimes``, datetimes as their
        JSON text (see :meth:`Database.fetch`)."""
        results = self.json_results if json_datetimes else self.results
        if not results:
            return rows
        return [tuple(v if p is None or v is None else p(v) for v, p in zip(row, results, strict=True))
                for row in rows]


class PreparedCache:
    """Prepared statements by statement object (at most ``size``)."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        #: (the statement, held so its id stays its own; its preparation or None)
        self._by_id: dict[int, tuple[sa.Executable, PreparedStatement | None]] = {}

    def get(self, stmt: sa.Executable, dialect: sa.Dialect) -> PreparedStatement | None:
        """The statement prepared, or ``None`` when it runs through SQLAlchemy
        (remembered, so it is not compiled again to find out)."""
        found = self._by_id.get(id(stmt))
        if found is not None and found[0] is stmt:
            return found[1]
        prepared = PreparedStatement.of(stmt, dialect)
        if len(self._by_id) >= self.size:
            self._by_id.clear()
        self._by_id[id(stmt)] = (stmt, prepared)
        return prepared

    def clear(self) -> None:
        self._by_id.clear()


async def run_callbacks(callbacks: list[AfterCommit]) -> None:
    for callback in callbacks:
        result = callback()
        if result is not None:
            await result
