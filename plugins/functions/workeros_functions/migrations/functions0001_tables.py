"""functions: wos_functions, their versions and invocation logs

Revision ID: functions0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from workeros.api import UTCDateTime, UUIDString

revision = "functions0001"
down_revision = None
branch_labels = ("functions",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "wos_functions",
        sa.Column("id", UUIDString(), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("description", sa.Text()),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("sandbox", sa.String(32)),
        sa.Column("timeout_ms", sa.Integer(), nullable=False),
        sa.Column("memory_mb", sa.Integer(), nullable=False),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("role", sa.String(64)),
        sa.Column("concurrency", sa.Integer()),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "wos_function_versions",
        sa.Column("id", UUIDString(), primary_key=True),
        sa.Column("function", UUIDString(), sa.ForeignKey("wos_functions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("user", sa.String(64)),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_wos_function_versions_function", "wos_function_versions", ["function", "version"])
    op.create_table(
        "wos_function_logs",
        sa.Column("id", UUIDString(), primary_key=True),
        sa.Column("function", UUIDString(), sa.ForeignKey("wos_functions.id", ondelete="CASCADE"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.String(2048)),
        sa.Column("lines", sa.JSON(), nullable=False),
        sa.Column("user", sa.String(64)),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=False),
    )
    op.create_index("ix_wos_function_logs_function", "wos_function_logs", ["function", "started_at"])


def downgrade() -> None:
    op.drop_table("wos_function_logs")
    op.drop_table("wos_function_versions")
    op.drop_table("wos_functions")
