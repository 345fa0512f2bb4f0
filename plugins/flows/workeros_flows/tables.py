"""The plugin's tables (created by its own migrations, ``migrations/``)."""

from __future__ import annotations

import sqlalchemy as sa

from workeros.api import UTCDateTime, UUIDString

metadata = sa.MetaData()

flows = sa.Table(
    "wos_flows", metadata,
    sa.Column("id", UUIDString(), primary_key=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("description", sa.Text()),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("trigger", sa.String(16), nullable=False),
    sa.Column("options", sa.JSON(), nullable=False),
    sa.Column("operations", sa.JSON(), nullable=False),
    sa.Column("start", sa.String(64)),
    #: The last schedule tick an instance claimed (schedule flows).
    sa.Column("last_tick", UTCDateTime()),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

runs = sa.Table(
    "wos_flow_runs", metadata,
    sa.Column("id", UUIDString(), primary_key=True),
    sa.Column("flow", UUIDString(), nullable=False),
    sa.Column("trigger", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("error", sa.String(1024)),
    sa.Column("steps", sa.JSON(), nullable=False),
    sa.Column("depth", sa.Integer(), nullable=False),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("duration_ms", sa.Float(), nullable=False),
)
