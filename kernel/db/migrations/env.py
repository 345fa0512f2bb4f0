"""Alembic environment for the system tables, the kernel's and plugins'. Run
through workeros.db.migrate, which passes an open connection and, for a plugin's
chain, its own version table; both dialects share one chain (batch mode lets the
same operations alter tables on SQLite)."""

from __future__ import annotations

from alembic import context

from workeros.db.tables import metadata

config = context.config
connection = config.attributes["connection"]

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    version_table=config.attributes.get("version_table", "wos_migrations"),
    include_object=config.attributes.get("include_object"),
    compare_type=True,
)

with context.begin_transaction():
    context.run_migrations()
