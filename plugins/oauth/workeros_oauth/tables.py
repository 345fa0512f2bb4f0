"""The plugin's table (created by its migration, ``migrations/``)."""

from __future__ import annotations

import sqlalchemy as sa

from workeros.api import UTCDateTime

metadata = sa.MetaData()

identities = sa.Table(
    "wos_oauth_identities", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("provider", sa.String(64), nullable=False),
    sa.Column("subject", sa.String(255), nullable=False),
    sa.Column("user", sa.String(36), nullable=False),
    sa.Column("email", sa.String(255)),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("last_login_at", UTCDateTime()),
)
