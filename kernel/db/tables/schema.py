"""Schema metadata: collections, fields, relations, and instance-wide settings."""

from __future__ import annotations

import sqlalchemy as sa

from workeros.db.tables import metadata, utc_datetime

collections = sa.Table(
    "wos_collections",
    metadata,
    sa.Column("collection", sa.String(64), primary_key=True),
    sa.Column("table_name", sa.String(128), nullable=False, unique=True),
    sa.Column("primary_key", sa.String(64), nullable=False, server_default="id"),
    sa.Column("pk_type", sa.String(16), nullable=False, server_default="integer"),
    sa.Column("adopted", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("note", sa.Text),
    sa.Column("meta", sa.JSON),
    sa.Column("created_at", utc_datetime(), nullable=False),
    sa.Column("updated_at", utc_datetime(), nullable=False),
)

fields = sa.Table(
    "wos_fields",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("collection", sa.String(64), nullable=False),
    sa.Column("field", sa.String(64), nullable=False),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("options", sa.JSON),
    sa.Column("nullable", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("default", sa.JSON),
    sa.Column("unique", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("indexed", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("alias", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("sort", sa.Integer),
    sa.Column("note", sa.Text),
    sa.Column("meta", sa.JSON),
    sa.UniqueConstraint("collection", "field"),
)

relations = sa.Table(
    "wos_relations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("many_collection", sa.String(64), nullable=False),
    sa.Column("many_field", sa.String(64), nullable=False),
    sa.Column("one_collection", sa.String(64), nullable=False),
    sa.Column("one_field", sa.String(64)),
    sa.Column("junction_field", sa.String(64)),
    sa.Column("on_delete", sa.String(16), nullable=False, server_default="set null"),
    sa.Column("meta", sa.JSON),
    sa.UniqueConstraint("many_collection", "many_field"),
)

settings = sa.Table(
    "wos_settings",
    metadata,
    sa.Column("key", sa.String(128), primary_key=True),
    sa.Column("value", sa.JSON),
    sa.Column("updated_at", utc_datetime(), nullable=False),
)
