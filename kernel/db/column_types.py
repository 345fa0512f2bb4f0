"""Column types shared by system tables and collections: timezone-aware UTC
datetimes and canonical UUID strings that behave the same on SQLite and
PostgreSQL, and JSON (``JSONB`` on PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import re
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

    def json_processor(self, dialect: sa.Dialect) -> Any:
        """A function from the driver's value of this column straight to its
        JSON text (:func:`iso_utc` of what the result processor returns). On
        SQLite the stored text in SQLAlchemy's own layouts is rewritten without
        building a ``datetime``; any other text goes the long way."""
        process = self._cached_result_processor(dialect, None)

        def slow(value: Any) -> Any:
            value = process(value) if process is not None else value
            return None if value is None else iso_utc(value)

        if dialect.name != "sqlite":
            if dialect.type_descriptor(self.impl_instance).result_processor(dialect, None) is None:
                return iso_utc  # the driver's datetime as it is (iso_utc makes it UTC)
            return slow

        match = _SQLITE_DATETIME.fullmatch

        def text(value: Any) -> Any:
            if value.__class__ is str and match(value) is not None:
                if len(value) == 19 or value.endswith(".000000"):
                    return f"{value[:10]}T{value[11:19]}Z"
                return f"{value[:10]}T{value[11:]}Z"
            return slow(value)

        return text


def iso_utc(value: dt.datetime) -> str:
    """A datetime as JSON text: ISO 8601 in UTC with ``Z`` (naive means UTC),
    microseconds only when there are any."""
    if value.tzinfo is None:
        return value.isoformat() + "Z"
    if value.utcoffset():
        value = value.astimezone(dt.UTC)
    return value.isoformat()[:-6] + "Z"  # drop "+00:00"


#: SQLAlchemy's SQLite datetime text (with or without microseconds) that is a
#: valid date whatever the month (days past the 28th take the long way).
_SQLITE_DATETIME = re.compile(r"(?!0000)[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8]) "
                              r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{6})?")


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
