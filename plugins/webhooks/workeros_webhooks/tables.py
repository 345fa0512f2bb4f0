"""The plugin's tables (created by its own migrations, ``migrations/``)."""

from __future__ import annotations

import sqlalchemy as sa

from workeros.api import UTCDateTime, UUIDString

metadata = sa.MetaData()

webhooks = sa.Table(
    "wos_webhooks", metadata,
    sa.Column("id", UUIDString(), primary_key=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("url", sa.String(2048), nullable=False),
    sa.Column("events", sa.JSON(), nullable=False),
    sa.Column("collections", sa.JSON()),
    sa.Column("headers", sa.JSON()),
    sa.Column("active", sa.Boolean(), nullable=False),
    sa.Column("secret", sa.String(128), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

deliveries = sa.Table(
    "wos_webhook_deliveries", metadata,
    sa.Column("id", UUIDString(), primary_key=True),
    sa.Column("webhook", UUIDString(), nullable=False),
    sa.Column("event", sa.String(64), nullable=False),
    sa.Column("collection", sa.String(128)),
    sa.Column("body", sa.Text(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
    sa.Column("claimed_until", UTCDateTime()),
    sa.Column("claimed_by", sa.String(64)),
    sa.Column("response_status", sa.Integer()),
    sa.Column("error", sa.String(1024)),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("finished_at", UTCDateTime()),
)

attempts = sa.Table(
    "wos_webhook_attempts", metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("delivery", UUIDString(), nullable=False),
    sa.Column("attempt", sa.Integer(), nullable=False),
    sa.Column("status_code", sa.Integer()),
    sa.Column("error", sa.String(1024)),
    sa.Column("latency_ms", sa.Float()),
    sa.Column("instance", sa.String(64)),
    sa.Column("at", UTCDateTime(), nullable=False),
)
