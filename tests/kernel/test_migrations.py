"""System migrations: one Alembic chain for both dialects, idempotent, and the
migrated database matches the table model exactly."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from workeros.db import migrate
from workeros.db.tables import metadata
from workeros.http.app import prepare
from workeros.plugins import await_me_maybe


async def open_db(settings):
    _, registry = prepare(settings)
    return await await_me_maybe(registry.get("db").factory(settings["database.url"], settings))


async def test_upgrade_empty_database_matches_model(wos_settings) -> None:
    db = await open_db(wos_settings)
    try:
        assert await migrate.current(db) is None
        await migrate.upgrade(db)
        assert await migrate.current(db) == migrate.head()
        await migrate.upgrade(db)  # idempotent
        assert await migrate.current(db) == migrate.head()

        def diff(sync_conn):
            context = MigrationContext.configure(sync_conn, opts={"compare_type": True,
                                                                  "version_table": migrate.VERSION_TABLE})
            return compare_metadata(context, metadata)

        async with db.read() as conn:
            differences = await conn.run_sync(diff)
        assert differences == []
    finally:
        await db.close()


async def test_every_system_table_is_prefixed() -> None:
    assert all(name.startswith("wos_") for name in metadata.tables)
