"""SQLite dialect: embedded, zero configuration, the default.

Write discipline, so that concurrent writers never see ``database is locked``:

* WAL journal: readers never block the writer and the writer never blocks readers.
* One writer at a time per process (an asyncio lock), so connections of one
  process never compete for SQLite's write lock.
* Every write transaction starts with ``BEGIN IMMEDIATE``: the write lock is
  taken up front, where SQLite's busy handler can wait for it (a deferred
  transaction that reads first and then tries to write fails at once with
  ``SQLITE_BUSY`` instead). Writers from other processes therefore queue on the
  busy timeout (``sqlite.busy_timeout_ms``).
* Reads begin a deferred transaction and see one consistent snapshot.

Execution: reads run on the event loop's own thread through the standard
library's ``sqlite3`` (a read of an indexed row takes microseconds, less than
handing it to a thread and back; a read in WAL mode never waits for a lock).
So do the statements of write transactions: once ``BEGIN IMMEDIATE`` holds the
write lock no statement waits for a lock. Taking the lock (which may wait for
another process), the commit (its I/O), schema changes and long batches run on
a worker thread. An in-memory database is one database per connection set, so
it uses one driver thread (aiosqlite) for everything.

Group commit: write transactions that queue while one runs share its database
transaction, each in a savepoint, and are acknowledged together once it
commits (one lock, one commit for the group). A transaction whose body fails
rolls back to its savepoint and fails alone; the bodies run, and their
after-commit callbacks start, in the order they queued; none returns before
its changes are committed.

Durability: ``synchronous=NORMAL`` in WAL mode writes every commit to the WAL
file before the commit returns, so a killed process (SIGKILL, OOM, crash) loses
no acknowledged write — the operating system still holds the data. Only an
operating-system crash or power loss can lose the last commits; set
``sqlite.synchronous = "FULL"`` to fsync on every commit if that matters more
than write throughput.

Driver: ``sqlite.driver`` names the DB-API module of a file database, the
standard library's ``sqlite3`` (the default) or ``sqlean`` (the sqlean.py
package: the same module over its own SQLite, which can load extensions where
the standard library's was built without that, as the sqlite-vec store needs).
Either runs the same code above; an in-memory database always uses
``sqlite3`` through aiosqlite.

Foreign keys are enforced on every connection (``PRAGMA foreign_keys=ON``). Schema
changes run with enforcement off (SQLite rebuilds tables to ALTER them, and
dropping a parent table would fire its children's ``ON DELETE`` actions) and the
schema service checks ``PRAGMA foreign_key_check`` before committing.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, pool
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import registry, sqlite
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.util.concurrency import await_, in_greenlet

from workeros.api import (
    AFTER_COMMIT_KEY,
    Database,
    PreparedCache,
    ServiceUnavailable,
    StartupError,
    dumps_str,
    loads,
    run_callbacks,
)
from workeros.hookspecs import hookimpl
from workeros.hookspecs.db import Dialect
from workeros.hookspecs.lifecycle import ConfigKey
from workeros.hookspecs.realtime import BusBackend

from . import bus

_WRITE = "workeros.sqlite.write"
_SYNCHRONOUS = {
    "NORMAL": "PRAGMA synchronous=NORMAL",
    "FULL": "PRAGMA synchronous=FULL",
    "EXTRA": "PRAGMA synchronous=EXTRA",
}


def _set_foreign_keys(sync_conn: sa.Connection, enabled: bool) -> None:
    """Outside any transaction (the pragma is a no-op inside one), on the raw
    driver connection, so SQLAlchemy does not begin a transaction first."""
    cursor = sync_conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute("PRAGMA foreign_keys=ON" if enabled else "PRAGMA foreign_keys=OFF")
    finally:
        cursor.close()


def _json_loads(value: Any) -> Any:
    """SQLite gives a column declared ``JSON`` NUMERIC affinity, so a JSON
    document that is a bare number (``5``, ``1.5``) is stored, and read back, as
    a number rather than text. It already is the decoded value."""
    if isinstance(value, (int, float)):
        return value
    return loads(value)


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


#: Most write transactions one group commit holds (more wait for the next group).
MAX_GROUP = 256


class _Group:
    """Write transactions applied one after the other on one connection inside
    one database transaction, committed together."""

    __slots__ = ("conn", "members", "done", "committer")

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        #: bodies that finished and wait for the commit
        self.members = 0
        #: the commit's outcome, awaited by every member before it is acknowledged
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.committer: asyncio.Task[None] | None = None


class _Done:
    """A future that is already done (the database is created outside a loop)."""

    @staticmethod
    def done() -> bool:
        return True


_DONE = _Done()


class SqliteDatabase(Database):
    """Write transactions are group-committed: callers that queue for the
    writer while another transaction runs are applied one after the other,
    each in a savepoint of one database transaction, and acknowledged together
    once it commits. A caller whose body fails rolls back to its savepoint and
    fails alone; no caller returns before its changes are committed."""

    def __init__(self, engine: AsyncEngine, *, url: str, write_engine: AsyncEngine | None = None,
                 connect: Callable[[], Any] | None = None, driver: _Driver | None = None) -> None:
        super().__init__(engine, url=url)
        #: The DB-API module and connection classes (``sqlite.driver``).
        self.driver = driver or _driver("sqlite3")
        #: The engine of write transactions; reads use ``engine``.
        self.write_engine = write_engine or engine
        #: one transaction body at a time on the writer
        self._turn = asyncio.Lock()
        #: transaction bodies waiting for their turn
        self._queued = 0
        self._group: _Group | None = None
        self._committers: set[asyncio.Task[None]] = set()
        #: set when the last acknowledged body has started its after-commit callbacks
        self._started: asyncio.Future[None] | _Done = _DONE
        #: Opens the connection :meth:`fetch` runs prepared statements on.
        self._connect = connect
        self._fetch_conn: Any = None
        self._prepared = PreparedCache()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        self._queued += 1
        try:
            await self._turn.acquire()
        finally:
            self._queued -= 1
        callbacks: list[Any] = []
        try:
            group = self._group
            if group is None:
                group = self._group = _Group(await self._open())
            conn = group.conn
            conn.info[AFTER_COMMIT_KEY] = callbacks
            first = group.members == 0
            try:
                if first:
                    # Alone in the group so far: a failure rolls the whole transaction back.
                    yield conn
                else:
                    async with conn.begin_nested():
                        yield conn
            except BaseException:
                conn.info.pop(AFTER_COMMIT_KEY, None)
                if first or not _in_transaction(conn):
                    await self._abandon(group)
                else:
                    await self._member_done(group)
                raise
            conn.info.pop(AFTER_COMMIT_KEY, None)
            group.members += 1
            # After-commit callbacks start in the order the bodies ran.
            previous, started = self._started, asyncio.get_running_loop().create_future()
            self._started = started
            await self._member_done(group)
        finally:
            self._turn.release()
        try:
            await asyncio.shield(group.done)
            if not previous.done():
                await asyncio.shield(previous)
        finally:
            if not started.done():
                started.set_result(None)
        await run_callbacks(callbacks)

    async def _open(self) -> AsyncConnection:
        conn = await self.write_engine.connect()
        try:
            self._begin(conn)
            await conn.begin()
        except BaseException:
            await conn.close()
            raise
        return conn

    async def _member_done(self, group: _Group) -> None:
        """A body finished: commit now when nobody else waits for the writer (or
        the group is full), else leave the group open for the next body and make
        sure a commit follows the ones queued now."""
        if self._group is not group:
            return
        if self._queued == 0 or group.members >= MAX_GROUP:
            await asyncio.shield(self._commit_task(group))
        elif group.committer is None:
            group.committer = asyncio.create_task(self._commit_later(group), name="workeros-sqlite-commit")
            self._committers.add(group.committer)
            group.committer.add_done_callback(self._committers.discard)

    def _commit_task(self, group: _Group) -> asyncio.Task[None]:
        # Its own task: a caller cancelled while waiting does not cut the commit short.
        self._group = None
        return asyncio.create_task(self._commit(group), name="workeros-sqlite-commit")

    async def _commit_later(self, group: _Group) -> None:
        async with self._turn:
            if self._group is group:
                await asyncio.shield(self._commit_task(group))

    async def _commit(self, group: _Group) -> None:
        try:
            try:
                await group.conn.commit()
            finally:
                await group.conn.close()
        except BaseException as exc:  # every member sees the failure; none was acknowledged
            if group.members:
                group.done.set_exception(exc)
            else:
                group.done.set_result(None)
        else:
            group.done.set_result(None)

    async def _abandon(self, group: _Group) -> None:
        """The group's transaction is lost (its only body failed, or a failure
        took the transaction with it): roll it back; bodies that finished in it
        were not acknowledged and fail with a retryable error."""
        if self._group is group:
            self._group = None
        conn = group.conn
        try:
            await conn.rollback()
        except Exception:  # noqa: BLE001 - the connection is dropped below
            await conn.invalidate()
        finally:
            await conn.close()
        if group.members:
            group.done.set_exception(ServiceUnavailable("The write could not be committed; try again",
                                                        retry_after=1))
        else:
            group.done.set_result(None)

    async def _flush(self) -> None:
        """Commit the open group (the caller holds the turn)."""
        if self._group is not None:
            await asyncio.shield(self._commit_task(self._group))

    def _begin(self, conn: AsyncConnection) -> Any:
        conn.sync_connection.info[_WRITE] = True  # type: ignore[union-attr]
        return conn.begin()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        if self.engine is self.write_engine:
            async with self.engine.connect() as conn:
                yield conn
            return
        # Closed directly, not through ``async with``: AsyncConnection's exit
        # closes in a shielded task, which yields to the event loop with the
        # connection still checked out. Under load every request then took a
        # fresh connection (beyond the pool, opened with its pragmas and closed
        # again): a quarter of a get's time. A close on this engine never yields,
        # so nothing can cancel it halfway.
        conn = await self.engine.connect()
        try:
            yield conn
        finally:
            await conn.close()

    def insert(self, table: sa.Table) -> Any:
        return sqlite.insert(table)

    async def fetch(self, stmt: sa.Executable, params: Mapping[str, Any], *,
                    json_datetimes: bool = False) -> Sequence[Sequence[Any]]:
        """A statement seen before runs as SQL compiled once, on a connection of
        its own on the event loop's thread, with no SQLAlchemy execution around
        it (pool checkout, ``BEGIN``/``ROLLBACK``, cache key, result object): one
        statement reads one consistent snapshot by itself."""
        if self._connect is None:
            return await super().fetch(stmt, params, json_datetimes=json_datetimes)
        prepared = self._prepared.get(stmt, self.engine.dialect)
        if prepared is None:
            return await super().fetch(stmt, params, json_datetimes=json_datetimes)
        conn = self._fetch_conn
        if conn is None:
            conn = self._fetch_conn = self._connect()
        args = prepared.args(params)
        try:
            rows = conn.execute(prepared.sql, args).fetchall()
        except self.driver.dbapi.Error as exc:
            raise sa_exc.DBAPIError.instance(prepared.sql, args, exc, self.driver.dbapi.Error) from exc
        return prepared.process(rows, json_datetimes)

    def schema_changed(self) -> None:
        self._prepared.clear()

    @asynccontextmanager
    async def schema_transaction(self) -> AsyncIterator[AsyncConnection]:
        """``BEGIN IMMEDIATE`` with foreign-key enforcement off for the DDL; the
        caller checks ``PRAGMA foreign_key_check`` before the block ends. SQLite's
        DDL is transactional (the driver never commits on its own here), so a
        failure rolls back the rebuilt tables with the catalog rows. Never part
        of a group: the open group commits first."""
        async with self._turn:
            await self._flush()
            async with self.write_engine.connect() as conn:
                driver = (await conn.get_raw_connection()).driver_connection
                if isinstance(driver, self.driver.WriteConnection):
                    driver.offload = True
                await conn.run_sync(_set_foreign_keys, False)
                callbacks: list[Any] = []
                try:
                    async with self._begin(conn):
                        conn.info[AFTER_COMMIT_KEY] = callbacks
                        yield conn
                finally:
                    conn.info.pop(AFTER_COMMIT_KEY, None)
                    if isinstance(driver, self.driver.WriteConnection):
                        driver.offload = False
                    try:
                        await conn.run_sync(_set_foreign_keys, True)
                    except Exception:
                        # Never hand a connection without enforcement back to the pool.
                        await conn.invalidate()
                        raise
        await run_callbacks(callbacks)

    async def close(self) -> None:
        async with self._turn:
            await self._flush()
        if self._fetch_conn is not None:
            self._fetch_conn.close()
            self._fetch_conn = None
        await super().close()
        if self.write_engine is not self.engine:
            await self.write_engine.dispose()


def _in_transaction(conn: AsyncConnection) -> bool:
    """Whether the driver connection is still inside the group's transaction
    (some SQLite errors roll the whole transaction back)."""
    try:
        # sqlite3's connection, or aiosqlite's (which asks sqlite3's)
        return bool(conn.sync_connection.connection.driver_connection.in_transaction)  # type: ignore[union-attr]
    except Exception:  # noqa: BLE001 - unknown: treat the transaction as lost
        return False


async def _nothing() -> None:
    return None


def _pass_through_await() -> None:
    """SQLAlchemy's asyncio engine insists that a statement awaited something
    (it guards against a blocking driver); an already-finished coroutine costs a
    greenlet switch, and never yields to the event loop."""
    if in_greenlet():
        await_(_nothing())


class _Driver:
    """The connection and cursor classes of one DB-API module (the standard
    library's ``sqlite3``, or ``sqlean``): the same code over either."""

    def __init__(self, dbapi: ModuleType) -> None:
        self.dbapi = dbapi

        class _Cursor(dbapi.Cursor):  # type: ignore[name-defined,misc]
            def execute(self, *args: Any) -> Any:  # type: ignore[override]
                _pass_through_await()
                return super().execute(*args)

            def executemany(self, *args: Any) -> Any:  # type: ignore[override]
                _pass_through_await()
                return super().executemany(*args)

            async def _async_soft_close(self) -> None:
                """Results are read from the cursor as they are; nothing to buffer."""

        class _Connection(dbapi.Connection):  # type: ignore[name-defined,misc]
            def cursor(self, factory: Any = _Cursor) -> Any:  # type: ignore[override]
                return super().cursor(factory)

        class _WriteCursor(_Cursor):
            def execute(self, sql: str, *args: Any) -> Any:  # type: ignore[override]
                if sql == "BEGIN IMMEDIATE" or self.connection.offload:
                    # Waiting for another process's write lock (the busy timeout), or
                    # rebuilding a table for a schema change: not on the loop.
                    return _on_thread(dbapi.Cursor.execute, self, sql, *args)
                return super().execute(sql, *args)

            def executemany(self, sql: str, rows: Any) -> Any:  # type: ignore[override]
                if self.connection.offload or (isinstance(rows, list) and len(rows) > _LONG_BATCH):
                    return _on_thread(dbapi.Cursor.executemany, self, sql, rows)
                return super().executemany(sql, rows)

        class _WriteConnection(dbapi.Connection):  # type: ignore[name-defined,misc]
            """The writer: statements run on the event loop's thread (once ``BEGIN
            IMMEDIATE`` holds the write lock no statement waits for a lock); taking the
            lock and committing (the I/O of the commit) run on a worker thread."""

            #: every statement on a worker thread (a schema change)
            offload = False

            def cursor(self, factory: Any = _WriteCursor) -> Any:  # type: ignore[override]
                return super().cursor(factory)

            def commit(self) -> None:
                _on_thread(dbapi.Connection.commit, self)

        self.Connection = _Connection
        self.WriteConnection = _WriteConnection


def _on_thread(fn: Any, *args: Any) -> Any:
    """Run ``fn`` on a worker thread while the event loop goes on (from inside
    SQLAlchemy's greenlet); outside one, call it here."""
    if not in_greenlet():
        return fn(*args)
    return await_(asyncio.get_running_loop().run_in_executor(None, fn, *args))


#: An ``executemany`` with more rows than this runs on a worker thread.
_LONG_BATCH = 200

_DRIVERS: dict[str, _Driver] = {}


def _driver(name: str) -> _Driver:
    """The classes over ``sqlite.driver``'s module, made once per process."""
    found = _DRIVERS.get(name)
    if found is None:
        if name == "sqlean":
            try:
                from sqlean import dbapi2
            except ImportError:
                raise StartupError('sqlite.driver is "sqlean", and the sqlean.py package is not installed '
                                   "(pip install sqlean.py, or workeros-vectors[sqlite-vec])") from None
        else:
            dbapi2 = sqlite3
        found = _DRIVERS[name] = _Driver(dbapi2)
    return found


class _ExecutionContext(SQLiteDialect_pysqlite.execution_ctx_cls):  # type: ignore[misc,name-defined]
    def create_server_side_cursor(self) -> Any:
        """``sqlite3`` cursors already step through their rows as they are
        fetched: a streamed read (an export) is a plain cursor."""
        return self._dbapi_connection.cursor()


class SQLiteDialect_inline(SQLiteDialect_pysqlite):  # noqa: N801 (SQLAlchemy's naming)
    """The standard library's ``sqlite3`` (or ``sqlean``, the same module over
    its own SQLite) under SQLAlchemy's asyncio engine, called on the event
    loop's thread (no hop to a driver thread)."""

    driver = "wos_inline"
    is_async = True
    supports_statement_cache = True
    supports_server_side_cursors = True
    execution_ctx_cls = _ExecutionContext

    @classmethod
    def get_pool_class(cls, url: Any) -> Any:
        return pool.AsyncAdaptedQueuePool

    # Every member of a group commit but the first runs in a savepoint.
    # SQLAlchemy's own savepoint statements are compiled afresh each time (each
    # name is new, so nothing is cached): about three quarters of their cost.
    # The SQL is the same; SQLAlchemy still keeps the transaction's state, and
    # driver errors are still wrapped as its own.
    def do_savepoint(self, connection: Any, name: str) -> None:
        connection.exec_driver_sql(f"SAVEPOINT {self.identifier_preparer.quote(name)}")

    def do_rollback_to_savepoint(self, connection: Any, name: str) -> None:
        connection.exec_driver_sql(f"ROLLBACK TO SAVEPOINT {self.identifier_preparer.quote(name)}")

    def do_release_savepoint(self, connection: Any, name: str) -> None:
        connection.exec_driver_sql(f"RELEASE SAVEPOINT {self.identifier_preparer.quote(name)}")


registry.register("sqlite.wos_inline", __name__, "SQLiteDialect_inline")


def create(url: str, settings: Any) -> SqliteDatabase:
    parsed = make_url(url).set(drivername="sqlite+aiosqlite")
    in_memory = not parsed.database or parsed.database == ":memory:" or "mode=memory" in str(parsed)
    if not in_memory:
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    synchronous_pragma = _SYNCHRONOUS[settings["sqlite.synchronous"]]
    if in_memory:
        return SqliteDatabase(_engine(parsed, settings, synchronous_pragma), url=url)
    driver = _driver(settings["sqlite.driver"])
    inline = parsed.set(drivername="sqlite+wos_inline")
    read_engine = _engine(inline, settings, synchronous_pragma, module=driver.dbapi, check_same_thread=False,
                          factory=driver.Connection)
    write_engine = _engine(inline, settings, synchronous_pragma, module=driver.dbapi, check_same_thread=False,
                           factory=driver.WriteConnection)

    def connect() -> Any:
        cargs, cparams = read_engine.dialect.create_connect_args(inline)
        conn = driver.dbapi.connect(*cargs, **{**cparams, "timeout": settings["sqlite.busy_timeout_ms"] / 1000,
                                          "check_same_thread": False})
        _setup_connection(conn, synchronous_pragma)
        return conn

    return SqliteDatabase(read_engine, url=url, write_engine=write_engine, connect=connect, driver=driver)


def _setup_connection(dbapi_connection: Any, synchronous_pragma: str) -> None:
    # Let SQLAlchemy, not the driver, decide where transactions begin.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(synchronous_pragma)
    cursor.close()
    # Case-insensitive filters lower-case both sides; SQLite's own lower()
    # folds ASCII only, this one folds like Python (and PostgreSQL) do.
    dbapi_connection.create_function("wos_lower", 1, _lower, deterministic=True)


def _engine(parsed: Any, settings: Any, synchronous_pragma: str, module: ModuleType | None = None,
            **connect_args: Any) -> AsyncEngine:
    engine = create_async_engine(
        parsed,
        # The DB-API module (``sqlite.driver``); aiosqlite's own otherwise.
        **({"module": module} if module is not None else {}),
        pool_size=settings["database.pool_size"],
        max_overflow=10,
        pool_timeout=settings["database.pool_timeout"],
        json_serializer=dumps_str,
        json_deserializer=_json_loads,
        # sqlite3's timeout is SQLite's busy timeout: how long a writer waits for
        # another process's lock before giving up.
        connect_args={"timeout": settings["sqlite.busy_timeout_ms"] / 1000, **connect_args},
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        _setup_connection(dbapi_connection, synchronous_pragma)

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        write = conn.info.pop(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


@hookimpl
def workeros_register_config_keys() -> list[ConfigKey]:
    return [
        ConfigKey("sqlite.busy_timeout_ms", "int", 30000, "How long a writer waits for another process's lock"),
        ConfigKey("sqlite.synchronous", "str", "NORMAL",
                  "PRAGMA synchronous: NORMAL loses no commit when the process is killed (WAL); "
                  "FULL also survives power loss",
                  choices=tuple(_SYNCHRONOUS)),
        ConfigKey("sqlite.driver", "str", "sqlite3",
                  "DB-API module of a file database: the standard library's sqlite3, or sqlean (the sqlean.py "
                  "package: the same module over its own SQLite, which can load extensions such as sqlite-vec "
                  "where this Python's sqlite3 cannot)",
                  choices=("sqlite3", "sqlean")),
        *bus.CONFIG_KEYS,
    ]


@hookimpl
def workeros_register_db_dialects() -> list[Dialect]:
    return [Dialect(name="sqlite", schemes=("sqlite", "sqlite+aiosqlite"), factory=create,
                    description="Embedded SQLite through aiosqlite")]


@hookimpl
def workeros_register_event_buses() -> list[BusBackend]:
    return [bus.BUS]
