"""flows: wos_flows (with their operations) and wos_flow_runs

Revision ID: flows0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from workeros.api import UTCDateTime, UUIDString

revision = "flows0001"
down_revision = None
branch_labels = ("flows",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "wos_flows",
        sa.Column("id", UUIDString(), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("operations", sa.JSON(), nullable=False),
        sa.Column("start", sa.String(64)),
        sa.Column("last_tick", UTCDateTime()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "wos_flow_runs",
        sa.Column("id", UUIDString(), primary_key=True),
        sa.Column("flow", UUIDString(), sa.ForeignKey("wos_flows.id", ondelete="CASCADE"), nullable=False),
        sa.Column("trigger", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.String(1024)),
        sa.Column("steps", sa.JSON(), nullable=False),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
    )
    op.create_index("ix_wos_flow_runs_flow", "wos_flow_runs", ["flow", "started_at"])
    op.create_index("ix_wos_flow_runs_started_at", "wos_flow_runs", ["started_at"])


def downgrade() -> None:
    op.drop_table("wos_flow_runs")
    op.drop_table("wos_flows")
