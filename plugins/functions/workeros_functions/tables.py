"""The plugin's tables (created by its own migrations, ``migrations/``)."""

from __future__ import annotations

import sqlalchemy as sa

from workeros.api import UTCDateTime, UUIDString

metadata = sa.MetaData()

functions = sa.Table(
    "wos_functions", metadata,
    sa.Column("id", UUIDString(), primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("description", sa.Text()),
    sa.Column("code", sa.Text(), nullable=False),
    sa.Column("sandbox", sa.String(32)),
    sa.Column("timeout_ms", sa.Integer(), nullable=False),
    sa.Column("memory_mb", sa.Integer(), nullable=False),
    sa.Column("public", sa.Boolean(), nullable=False),
    #: Run as this role instead of the caller's (a role id), or null.
    sa.Column("role", sa.String(64)),
    #: Most invocations of this function at once on one instance (null: no limit).
    sa.Column("concurrency", sa.Integer()),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

versions = sa.Table(
    "wos_function_versions", metadata,
    sa.Column("id", UUIDString(), primary_key=True),
    sa.Column("function", UUIDString(), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("code", sa.Text(), nullable=False),
    sa.Column("user", sa.String(64)),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

logs = sa.Table(
    "wos_function_logs", metadata,
    sa.Column("id", UUIDString(), primary_key=True),
    sa.Column("function", UUIDString(), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("error", sa.String(2048)),
    sa.Column("lines", sa.JSON(), nullable=False),
    sa.Column("user", sa.String(64)),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("duration_ms", sa.Float(), nullable=False),
)
