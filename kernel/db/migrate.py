"""System migrations (Alembic), run on an open async connection.

Idempotent: upgrading an up-to-date database does nothing. On PostgreSQL the whole
upgrade is one transaction (DDL is transactional there); on SQLite each migration
uses batch mode, which rebuilds tables where ALTER cannot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from workeros.db.database import Database

SCRIPT_LOCATION = str(Path(__file__).parent / "migrations")
VERSION_TABLE = "wos_migrations"


def alembic_config(connection: Any = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    cfg.attributes["connection"] = connection
    return cfg


async def upgrade(db: Database, revision: str = "head") -> None:
    async with db.transaction() as conn:
        await conn.run_sync(lambda sync: command.upgrade(alembic_config(sync), revision))


async def current(db: Database) -> str | None:
    async with db.read() as conn:
        return await conn.run_sync(
            lambda sync: MigrationContext.configure(sync, opts={"version_table": VERSION_TABLE}).get_current_revision()
        )


def head() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
