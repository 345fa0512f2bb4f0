"""SQLite dialect: embedded, zero configuration, the default.

Discipline: WAL so readers never block the writer; foreign keys on; one writer at a
time per process (an asyncio lock) and ``BEGIN IMMEDIATE`` so a second process
waits on ``busy_timeout`` instead of failing mid-transaction with
``database is locked``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from workeros.db import Database
from workeros.hookspecs import hookimpl
from workeros.hookspecs.db import Dialect
from workeros.hookspecs.lifecycle import ConfigKey
from workeros.serialize import dumps_str, loads

_WRITE = "workeros.sqlite.write"
_SYNCHRONOUS = {
    "NORMAL": "PRAGMA synchronous=NORMAL",
    "FULL": "PRAGMA synchronous=FULL",
    "EXTRA": "PRAGMA synchronous=EXTRA",
}


class SqliteDatabase(Database):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._write_lock = asyncio.Lock()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        async with self._write_lock:
            async with super().transaction() as conn:
                yield conn

    def _begin(self, conn: AsyncConnection) -> Any:
        conn.sync_connection.info[_WRITE] = True  # type: ignore[union-attr]
        return conn.begin()


def create(url: str, settings: Any) -> SqliteDatabase:
    parsed = make_url(url).set(drivername="sqlite+aiosqlite")
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(
        parsed,
        pool_size=settings["database.pool_size"],
        max_overflow=10,
        json_serializer=dumps_str,
        json_deserializer=loads,
        # sqlite3's timeout is SQLite's busy timeout: how long a writer waits for
        # another process's lock before giving up.
        connect_args={"timeout": settings["sqlite.busy_timeout_ms"] / 1000},
    )
    synchronous_pragma = _SYNCHRONOUS[settings["sqlite.synchronous"]]

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide where transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(synchronous_pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        write = conn.info.pop(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return SqliteDatabase(engine, url=url)


@hookimpl
def workeros_register_config_keys() -> list[ConfigKey]:
    return [
        ConfigKey("sqlite.busy_timeout_ms", "int", 30000, "How long a writer waits for another process's lock"),
        ConfigKey("sqlite.synchronous", "str", "NORMAL", "PRAGMA synchronous (NORMAL is crash-safe in WAL mode)",
                  choices=tuple(_SYNCHRONOUS)),
    ]


@hookimpl
def workeros_register_db_dialects() -> list[Dialect]:
    return [Dialect(name="sqlite", schemes=("sqlite", "sqlite+aiosqlite"), factory=create,
                    description="Embedded SQLite through aiosqlite")]
