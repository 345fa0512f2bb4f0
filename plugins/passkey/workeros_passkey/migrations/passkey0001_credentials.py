"""passkey: wos_passkeys (WebAuthn credentials, several per user)

Revision ID: passkey0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from workeros.api import UTCDateTime

revision = "passkey0001"
down_revision = None
branch_labels = ("passkey",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "wos_passkeys",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("user", sa.String(36), nullable=False, index=True),
        sa.Column("credential_id", sa.String(1400), nullable=False, unique=True),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("sign_count", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("transports", sa.JSON()),
        sa.Column("aaguid", sa.String(64)),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_used_at", UTCDateTime()),
    )


def downgrade() -> None:
    op.drop_table("wos_passkeys")
