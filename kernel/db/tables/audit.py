"""Activity (who did what) and revisions (the state after each change)."""

from __future__ import annotations

import sqlalchemy as sa

from workeros.db.tables import BigId, metadata, utc_datetime

activity = sa.Table(
    "wos_activity",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("collection", sa.String(64)),
    sa.Column("item", sa.String(255)),
    sa.Column("user", sa.String(36)),
    sa.Column("ip", sa.String(64)),
    sa.Column("user_agent", sa.String(512)),
    sa.Column("origin", sa.String(32)),
    sa.Column("timestamp", utc_datetime(), nullable=False, index=True),
    sa.Column("meta", sa.JSON),
    sa.Index("ix_wos_activity_collection_item", "collection", "item"),
)

revisions = sa.Table(
    "wos_revisions",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("activity", BigId, sa.ForeignKey("wos_activity.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("collection", sa.String(64), nullable=False),
    sa.Column("item", sa.String(255), nullable=False),
    sa.Column("data", sa.JSON),
    sa.Column("delta", sa.JSON),
    sa.Column("timestamp", utc_datetime(), nullable=False),
    sa.Index("ix_wos_revisions_collection_item_id", "collection", "item", "id"),
    sa.Index("ix_wos_revisions_collection_timestamp", "collection", "timestamp"),
)
