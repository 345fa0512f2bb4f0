"""Event-bus messages too large to travel inline (PostgreSQL NOTIFY carries at
most 8000 bytes): the notification names the row instead."""

from __future__ import annotations

import sqlalchemy as sa

from workeros.db.tables import BigId, metadata, utc_datetime

bus_messages = sa.Table(
    "wos_bus_messages",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("channel", sa.String(64), nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Column("created_at", utc_datetime(), nullable=False, index=True),
)
