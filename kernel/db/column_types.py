"""Column types shared by system tables and collections: timezone-aware UTC
datetimes and canonical UUID strings that behave the same on SQLite and
PostgreSQL, and JSON (``JSONB`` on PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator):
    """Timezone-aware datetimes, stored as UTC on every dialect (``timestamptz``
    on PostgreSQL, ISO text on SQLite) and always returned aware in UTC."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, str):
            value = parse_datetime(value)
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class UUIDString(TypeDecorator):
    """UUIDs as canonical lowercase strings: native ``uuid`` on PostgreSQL,
    ``CHAR(36)`` on SQLite, so equality and sorting agree on both."""

    impl = sa.String(36)
    cache_ok = True

    def load_dialect_impl(self, dialect: sa.Dialect) -> sa.types.TypeEngine:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.UUID(as_uuid=False))
        return dialect.type_descriptor(sa.String(36))

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        return None if value is None else str(uuid.UUID(str(value)))

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> Any:
        return None if value is None else str(uuid.UUID(str(value)))


def json_type() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


# -- coercion -------------------------------------------------------------------------

class CoercionError(ValueError):
    """A value does not fit a field's type; the message is safe to show."""


def parse_datetime(value: str) -> dt.datetime:
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise CoercionError(f"{value!r} is not an ISO 8601 datetime") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)
