"""System tables (``wos_*``), one module per area, all on one ``MetaData``.

The Alembic chain in ``workeros/migrations`` creates and upgrades them on both
dialects; a test checks the migrated database matches this model.
"""

from __future__ import annotations

import sqlalchemy as sa

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING)

#: Auto-incrementing 64-bit key; SQLite only aliases ROWID for INTEGER PRIMARY KEY.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def utc_datetime() -> sa.types.TypeEngine:
    """Aware UTC datetimes on both dialects (see workeros.db.column_types.UTCDateTime)."""
    from workeros.db.column_types import UTCDateTime

    return UTCDateTime()


from workeros.db.tables import access, accounts, audit, bus, schema  # noqa: E402,F401

__all__ = ["BigId", "metadata", "utc_datetime"]
