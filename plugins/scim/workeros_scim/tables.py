"""The plugin's tables (created by its migration, ``migrations/``)."""

from __future__ import annotations

import sqlalchemy as sa

from workeros.api import UTCDateTime

metadata = sa.MetaData()

scim_users = sa.Table(
    "wos_scim_users", metadata,
    sa.Column("user", sa.String(36), primary_key=True),
    sa.Column("external_id", sa.String(255)),
)

groups = sa.Table(
    "wos_scim_groups", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("display_name", sa.String(255), nullable=False),
    sa.Column("external_id", sa.String(255)),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

members = sa.Table(
    "wos_scim_members", metadata,
    sa.Column("group", sa.String(36), primary_key=True),
    sa.Column("user", sa.String(36), primary_key=True),
)
