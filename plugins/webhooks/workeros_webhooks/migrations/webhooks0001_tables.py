"""webhooks: wos_webhooks, the delivery outbox and the attempt log

Revision ID: webhooks0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from workeros.api import UTCDateTime, UUIDString

revision = "webhooks0001"
down_revision = None
branch_labels = ("webhooks",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "wos_webhooks",
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
    op.create_table(
        "wos_webhook_deliveries",
        sa.Column("id", UUIDString(), primary_key=True),
        sa.Column("webhook", UUIDString(), sa.ForeignKey("wos_webhooks.id", ondelete="CASCADE"), nullable=False),
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
    op.create_index("ix_wos_webhook_deliveries_due", "wos_webhook_deliveries", ["status", "next_attempt_at"])
    op.create_index("ix_wos_webhook_deliveries_webhook", "wos_webhook_deliveries", ["webhook", "created_at"])
    op.create_table(
        "wos_webhook_attempts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("delivery", UUIDString(),
                  sa.ForeignKey("wos_webhook_deliveries.id", ondelete="CASCADE"), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.Integer()),
        sa.Column("error", sa.String(1024)),
        sa.Column("latency_ms", sa.Float()),
        sa.Column("instance", sa.String(64)),
        sa.Column("at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_wos_webhook_attempts_delivery", "wos_webhook_attempts", ["delivery", "attempt"])


def downgrade() -> None:
    op.drop_table("wos_webhook_attempts")
    op.drop_table("wos_webhook_deliveries")
    op.drop_table("wos_webhooks")
