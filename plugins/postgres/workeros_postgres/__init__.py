"""PostgreSQL dialect through asyncpg: pooled, prepared-statement cache, server-side
timeouts.

Schema changes take a transaction-level advisory lock, so two instances changing
the schema at once run one after the other (DDL is transactional here: a failure
rolls back the tables and the catalog together). After a change, asyncpg's
prepared statements that were planned against the old tables are dropped.
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from workeros.api import Database, PreparedCache, dumps_str, loads
from workeros.hookspecs import hookimpl
from workeros.hookspecs.db import Dialect
from workeros.hookspecs.lifecycle import ConfigKey
from workeros.hookspecs.realtime import BusBackend

from . import bus


def _asyncpg_missing() -> str | None:
    # Looked up, not imported: asyncpg loads when a PostgreSQL database opens.
    if importlib.util.find_spec("asyncpg") is None:
        return "the asyncpg driver is not installed (pip install workeros[postgres])"
    return None


#: Advisory lock key serialising schema changes across every instance
#: (the bytes of "wos-ddl").
SCHEMA_LOCK_KEY = int.from_bytes(b"wos-ddl", "big")


class PostgresDatabase(Database):
    def __init__(self, engine: Any, *, url: str) -> None:
        super().__init__(engine, url=url)
        self._prepared = PreparedCache()

    async def fetch(self, stmt: sa.Executable, params: Mapping[str, Any], *,
                    json_datetimes: bool = False) -> Sequence[Sequence[Any]]:
        """A statement seen before runs as SQL compiled once, straight on a
        pooled asyncpg connection (whose own cache keeps it prepared), outside
        any transaction: one statement reads one snapshot by itself, so the
        ``BEGIN`` and ``ROLLBACK`` round trips of a read are not needed."""
        prepared = self._prepared.get(stmt, self.engine.dialect)
        if prepared is None:
            return await super().fetch(stmt, params, json_datetimes=json_datetimes)
        args = prepared.args(params)
        # Closed directly: the asyncio engine's ``async with`` closes in a
        # shielded task, which yields with the connection still checked out (a
        # fresh connection per request under load). Closing one that never
        # began a transaction makes no round trip.
        conn = await self.engine.connect()
        try:
            raw = (await conn.get_raw_connection()).driver_connection
            try:
                rows = await raw.fetch(prepared.sql, *args)
            except Exception as exc:
                if type(exc).__module__.startswith("asyncpg"):
                    raise sa_exc.DBAPIError(prepared.sql, args, exc) from exc
                raise
        finally:
            await conn.close()
        return prepared.process(rows, json_datetimes)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """Statements outside an explicit transaction (no ``BEGIN`` and
        ``ROLLBACK`` round trips). The same as before: at PostgreSQL's default
        READ COMMITTED every statement sees its own snapshot, inside a
        transaction or not. A read that needs one snapshot for all its
        statements calls :meth:`read_snapshot` first, which opens a
        ``REPEATABLE READ`` transaction."""
        async with self.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            yield conn

    @asynccontextmanager
    async def schema_transaction(self) -> AsyncIterator[AsyncConnection]:
        async with self.transaction() as conn:
            await self.lock(conn, SCHEMA_LOCK_KEY)
            yield conn

    def for_update(self, stmt: sa.Select, *, skip_locked: bool = False) -> sa.Select:
        return stmt.with_for_update(skip_locked=skip_locked)

    async def lock(self, conn: AsyncConnection, key: int) -> None:
        await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))

    def insert(self, table: sa.Table) -> Any:
        return postgresql.insert(table)

    async def read_snapshot(self, conn: AsyncConnection) -> None:
        await conn.execution_options(isolation_level="REPEATABLE READ")

    async def advance_sequence(self, conn: AsyncConnection, table: sa.Table) -> None:
        """``setval`` the serial key's sequence to the larger of the next free key
        and its own next value (it never goes back; nothing for other keys)."""
        pk = list(table.primary_key.columns)
        if len(pk) != 1 or not isinstance(pk[0].type, sa.Integer):
            return
        sequence = (await conn.execute(sa.select(sa.func.pg_get_serial_sequence(table.name, pk[0].name)))).scalar()
        if not sequence:
            return
        top = sa.select(sa.func.coalesce(sa.func.max(pk[0]), 0) + 1).scalar_subquery()
        await conn.execute(sa.select(sa.func.setval(sequence, sa.func.greatest(top, sa.func.nextval(sequence)),
                                                    False)))

    def schema_changed(self) -> None:
        # SQLAlchemy drops its prepared statements when DDL runs on this engine;
        # a change made by another instance needs the same, or the next
        # statement on a pooled connection fails once with a stale plan.
        invalidate = getattr(self.engine.sync_engine.dialect, "_invalidate_schema_cache", None)
        if invalidate is not None:
            invalidate()
        self._prepared.clear()


def create(url: str, settings: Any) -> PostgresDatabase:
    parsed = make_url(url).set(drivername="postgresql+asyncpg")
    engine = create_async_engine(
        parsed,
        pool_size=settings["database.pool_size"],
        max_overflow=settings["postgres.max_overflow"],
        pool_timeout=settings["database.pool_timeout"],
        pool_pre_ping=False,
        json_serializer=dumps_str,
        json_deserializer=loads,
        pool_recycle=settings["postgres.pool_recycle_s"],
        connect_args={
            "statement_cache_size": settings["postgres.statement_cache_size"],
            "server_settings": {
                "statement_timeout": str(settings["database.statement_timeout_ms"]),
                "idle_in_transaction_session_timeout": str(settings["postgres.idle_in_transaction_timeout_ms"]),
                "application_name": "workeros",
            },
        },
    )
    return PostgresDatabase(engine, url=url)


@hookimpl
def workeros_register_config_keys() -> list[ConfigKey]:
    return [
        ConfigKey("postgres.max_overflow", "int", 10, "Connections beyond database.pool_size under load"),
        ConfigKey("postgres.pool_recycle_s", "int", 1800, "Recycle pooled connections after this many seconds"),
        ConfigKey("postgres.statement_cache_size", "int", 256, "asyncpg prepared statements cached per connection"),
        ConfigKey("postgres.idle_in_transaction_timeout_ms", "int", 60000,
                  "Server-side limit on a transaction left idle"),
        *bus.CONFIG_KEYS,
    ]


@hookimpl
def workeros_register_db_dialects() -> list[Dialect]:
    return [Dialect(name="postgres", schemes=("postgresql", "postgres", "postgresql+asyncpg"), factory=create,
                    check=_asyncpg_missing, description="PostgreSQL through asyncpg")]


@hookimpl
def workeros_register_event_buses() -> list[BusBackend]:
    return [bus.BUS]
