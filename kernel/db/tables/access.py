"""Roles and permissions."""

from __future__ import annotations

import sqlalchemy as sa

from workeros.db.tables import metadata, utc_datetime

roles = sa.Table(
    "wos_roles",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("description", sa.Text),
    sa.Column("admin_access", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", utc_datetime(), nullable=False),
)

permissions = sa.Table(
    "wos_permissions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("role", sa.String(36), sa.ForeignKey("wos_roles.id", ondelete="CASCADE"), nullable=False),
    sa.Column("collection", sa.String(64), nullable=False),
    sa.Column("action", sa.String(8), nullable=False),
    sa.Column("filter", sa.JSON),
    sa.Column("fields", sa.JSON),
    sa.Column("validation", sa.JSON),
    sa.Column("presets", sa.JSON),
    sa.UniqueConstraint("role", "collection", "action"),
)
