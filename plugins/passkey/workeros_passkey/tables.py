"""The plugin's table (created by its migration, ``migrations/``)."""

from __future__ import annotations

import sqlalchemy as sa

from workeros.api import UTCDateTime

metadata = sa.MetaData()

passkeys = sa.Table(
    "wos_passkeys", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("user", sa.String(36), nullable=False),
    sa.Column("credential_id", sa.String(1400), nullable=False),
    sa.Column("public_key", sa.Text(), nullable=False),
    sa.Column("sign_count", sa.BigInteger(), nullable=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("transports", sa.JSON()),
    sa.Column("aaguid", sa.String(64)),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("last_used_at", UTCDateTime()),
)
