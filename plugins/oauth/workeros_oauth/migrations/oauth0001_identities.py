"""oauth: wos_oauth_identities (which outside account signs in as which user)

Revision ID: oauth0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from workeros.api import UTCDateTime

revision = "oauth0001"
down_revision = None
branch_labels = ("oauth",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "wos_oauth_identities",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("user", sa.String(36), nullable=False, index=True),
        sa.Column("email", sa.String(255)),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_login_at", UTCDateTime()),
        sa.UniqueConstraint("provider", "subject", name="uq_wos_oauth_identities_provider_subject"),
    )


def downgrade() -> None:
    op.drop_table("wos_oauth_identities")
