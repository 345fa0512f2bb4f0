"""scim: wos_scim_users (externalId of provisioned users), wos_scim_groups and their members

Revision ID: scim0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from workeros.api import UTCDateTime

revision = "scim0001"
down_revision = None
branch_labels = ("scim",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "wos_scim_users",
        sa.Column("user", sa.String(36), primary_key=True),
        sa.Column("external_id", sa.String(255)),
    )
    op.create_table(
        "wos_scim_groups",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("display_name", sa.String(255), nullable=False, unique=True),
        sa.Column("external_id", sa.String(255)),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "wos_scim_members",
        sa.Column("group", sa.String(36), sa.ForeignKey("wos_scim_groups.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("user", sa.String(36), primary_key=True, index=True),
    )


def downgrade() -> None:
    op.drop_table("wos_scim_members")
    op.drop_table("wos_scim_groups")
    op.drop_table("wos_scim_users")
