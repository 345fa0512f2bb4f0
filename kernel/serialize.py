"""JSON out, one way everywhere: HTTP bodies, JSON columns, bus messages.

Datetimes as ISO 8601 with a ``Z`` offset (naive ones are UTC), ``Decimal`` as a
string (no precision lost), UUIDs as strings, dates and times as ISO text.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from typing import Any

import orjson

_OPTS = orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS


def _default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=_default, option=_OPTS)


def dumps_str(value: Any) -> str:
    """For SQLAlchemy's ``json_serializer``."""
    return orjson.dumps(value, default=_default, option=_OPTS).decode()


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)


def jsonable(value: Any) -> Any:
    """The value as plain JSON types (what a client would receive)."""
    return orjson.loads(dumps(value))
