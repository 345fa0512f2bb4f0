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


def test_heads_read_from_files_match_alembic(wos_settings) -> None:
    """The start-up check reads each chain's heads from its files without
    Alembic; they must be the heads Alembic finds."""
    from alembic.script import ScriptDirectory

    plugins, _ = prepare(wos_settings)
    chains = [None, *migrate.plugin_migrations(plugins)]
    assert len(chains) > 1  # the default plugins bring chains of their own
    for chain in chains:
        alembic_heads = ScriptDirectory.from_config(migrate.alembic_config(None, chain)).get_heads()
        assert migrate._heads_from_files(migrate._versions_folder(chain)) == frozenset(alembic_heads)


async def test_at_heads_only_when_the_version_table_holds_the_heads(wos_settings) -> None:
    import sqlalchemy as sa

    db = await open_db(wos_settings)
    try:
        async with db.read() as conn:
            assert await conn.run_sync(lambda sync: migrate._at_heads(sync, None)) is False  # no table yet
        await migrate.upgrade(db)
        async with db.read() as conn:
            assert await conn.run_sync(lambda sync: migrate._at_heads(sync, None)) is True
        table = sa.table(migrate.VERSION_TABLE, sa.column("version_num"))
        async with db.transaction() as conn:
            await conn.execute(sa.update(table).values(version_num="0004"))
        async with db.read() as conn:
            assert await conn.run_sync(lambda sync: migrate._at_heads(sync, None)) is False
        async with db.transaction() as conn:
            await conn.execute(sa.insert(table).values(version_num=migrate.head()))
        async with db.read() as conn:  # an extra row beside the head: not at head either
            assert await conn.run_sync(lambda sync: migrate._at_heads(sync, None)) is False
        async with db.transaction() as conn:
            await conn.execute(sa.delete(table))
            await conn.execute(sa.insert(table).values(version_num=migrate.head()))
        async with db.read() as conn:
            assert await conn.run_sync(lambda sync: migrate._at_heads(sync, None)) is True
    finally:
        await db.close()
