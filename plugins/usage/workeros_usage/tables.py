"""The plugin's tables (created by its own migrations, ``migrations/``)."""

from __future__ import annotations

import sqlalchemy as sa

from workeros.api import UTCDateTime

metadata = sa.MetaData()

#: One counter per day, metric and subject (a collection's name for ``rows``;
#: empty for instance-wide metrics). ``requests`` is added to by every
#: instance; ``rows`` and ``storage_bytes`` are the latest reading of the day.
usage = sa.Table(
    "wos_usage", metadata,
    sa.Column("day", sa.String(10), primary_key=True),
    sa.Column("metric", sa.String(64), primary_key=True),
    sa.Column("subject", sa.String(128), primary_key=True),
    sa.Column("value", sa.BigInteger(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

#: Alerts already sent: one row per day, metric and level, so each fires once
#: whichever instance notices first.
alerts = sa.Table(
    "wos_usage_alerts", metadata,
    sa.Column("day", sa.String(10), primary_key=True),
    sa.Column("metric", sa.String(64), primary_key=True),
    sa.Column("level", sa.Integer(), primary_key=True),
    sa.Column("value", sa.BigInteger(), nullable=False),
    sa.Column("limit", sa.BigInteger(), nullable=False),
    sa.Column("fired_at", UTCDateTime(), nullable=False),
)
