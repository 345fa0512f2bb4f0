"""usage: wos_usage (daily counters) and wos_usage_alerts (alerts sent)

Revision ID: usage0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from workeros.api import UTCDateTime

revision = "usage0001"
down_revision = None
branch_labels = ("usage",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "wos_usage",
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("metric", sa.String(64), primary_key=True),
        sa.Column("subject", sa.String(128), primary_key=True),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "wos_usage_alerts",
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("metric", sa.String(64), primary_key=True),
        sa.Column("level", sa.Integer(), primary_key=True),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("limit", sa.BigInteger(), nullable=False),
        sa.Column("fired_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("wos_usage_alerts")
    op.drop_table("wos_usage")
