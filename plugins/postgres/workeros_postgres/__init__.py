"""PostgreSQL dialect through asyncpg: pooled, prepared-statement cache, server-side
timeouts."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from workeros.db import Database
from workeros.hookspecs import hookimpl
from workeros.hookspecs.db import Dialect
from workeros.hookspecs.lifecycle import ConfigKey
from workeros.serialize import dumps_str, loads


def _asyncpg_missing() -> str | None:
    try:
        import asyncpg  # noqa: F401
    except ImportError:
        return "the asyncpg driver is not installed (pip install workeros[postgres])"
    return None


def create(url: str, settings: Any) -> Database:
    parsed = make_url(url).set(drivername="postgresql+asyncpg")
    engine = create_async_engine(
        parsed,
        pool_size=settings["database.pool_size"],
        max_overflow=settings["postgres.max_overflow"],
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
    return Database(engine, url=url)


@hookimpl
def workeros_register_config_keys() -> list[ConfigKey]:
    return [
        ConfigKey("postgres.max_overflow", "int", 10, "Connections beyond database.pool_size under load"),
        ConfigKey("postgres.pool_recycle_s", "int", 1800, "Recycle pooled connections after this many seconds"),
        ConfigKey("postgres.statement_cache_size", "int", 256, "asyncpg prepared statements cached per connection"),
        ConfigKey("postgres.idle_in_transaction_timeout_ms", "int", 60000,
                  "Server-side limit on a transaction left idle"),
    ]


@hookimpl
def workeros_register_db_dialects() -> list[Dialect]:
    return [Dialect(name="postgres", schemes=("postgresql", "postgres", "postgresql+asyncpg"), factory=create,
                    check=_asyncpg_missing, description="PostgreSQL through asyncpg")]
