"""Field types: the SQL type each maps to on every dialect, and how a JSON value
(from a payload or a filter) is coerced to it.

Values are coerced once, at the edge, with errors that name the problem; after
that SQL and in-process matching see the same Python values: ``datetime`` (aware,
UTC), ``date``, ``time``, ``Decimal``, ``str`` (uuid: lowercase with dashes),
``int``, ``float``, ``bool``, and any JSON value for ``json``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from workeros.db.column_types import CoercionError, UTCDateTime, UUIDString, json_type, parse_datetime

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ISO_TIME = re.compile(r"^\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?$")


def _string(value: Any, options: Mapping[str, Any]) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float, decimal.Decimal)):
        raise CoercionError("expected a string")
    text = value if isinstance(value, str) else str(value)
    length = options.get("length")
    if length and len(text) > length:
        raise CoercionError(f"longer than {length} characters")
    return text


def _text(value: Any, options: Mapping[str, Any]) -> str:
    if not isinstance(value, str):
        raise CoercionError("expected a string")
    return value


def _integer(bounds: tuple[int, int]) -> Callable[[Any, Mapping[str, Any]], int]:
    def coerce(value: Any, options: Mapping[str, Any]) -> int:
        if isinstance(value, bool):
            raise CoercionError("expected an integer")
        if isinstance(value, int):
            out = value
        elif isinstance(value, float) and value.is_integer():
            out = int(value)
        elif isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d+\s*", value):
            out = int(value)
        else:
            raise CoercionError("expected an integer")
        if not bounds[0] <= out <= bounds[1]:
            raise CoercionError("integer out of range")
        return out

    return coerce


def _float(value: Any, options: Mapping[str, Any]) -> float:
    if isinstance(value, bool):
        raise CoercionError("expected a number")
    try:
        out = float(value) if isinstance(value, (int, float, str, decimal.Decimal)) else None
    except ValueError:
        out = None
    if out is None or not math.isfinite(out):
        raise CoercionError("expected a finite number")
    return out


def _decimal(value: Any, options: Mapping[str, Any]) -> decimal.Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str, decimal.Decimal)):
        raise CoercionError("expected a decimal number")
    try:
        out = decimal.Decimal(str(value).strip())
    except decimal.InvalidOperation:
        raise CoercionError("expected a decimal number") from None
    if not out.is_finite():
        raise CoercionError("expected a finite decimal number")
    precision, scale = options.get("precision", 10), options.get("scale", 5)
    quantized = out.quantize(decimal.Decimal(1).scaleb(-scale), rounding=decimal.ROUND_HALF_EVEN)
    if len(quantized.as_tuple().digits) > precision and quantized != 0:
        raise CoercionError(f"more than {precision} digits")
    return quantized


def _boolean(value: Any, options: Mapping[str, Any]) -> bool:
    if isinstance(value, bool):
        return value
    if value in (0, 1) and not isinstance(value, float):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    raise CoercionError("expected a boolean")


def _json(value: Any, options: Mapping[str, Any]) -> Any:
    return value


def _uuid(value: Any, options: Mapping[str, Any]) -> str:
    if not isinstance(value, str):
        raise CoercionError("expected a UUID string")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise CoercionError(f"{value!r} is not a UUID") from None


def _datetime(value: Any, options: Mapping[str, Any]) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if not isinstance(value, str):
        raise CoercionError("expected an ISO 8601 datetime string")
    return parse_datetime(value)


def _date(value: Any, options: Mapping[str, Any]) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value.strip()):
        raise CoercionError("expected a date as YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise CoercionError(f"{value!r} is not a valid date") from None


def _time(value: Any, options: Mapping[str, Any]) -> dt.time:
    if isinstance(value, dt.time):
        return value
    if not isinstance(value, str) or not _ISO_TIME.fullmatch(value.strip()):
        raise CoercionError("expected a time as HH:MM[:SS]")
    try:
        return dt.time.fromisoformat(value.strip())
    except ValueError:
        raise CoercionError(f"{value!r} is not a valid time") from None


@dataclass(frozen=True)
class FieldType:
    """One field type. ``sql(options)`` is the SQLAlchemy type of its column;
    ``coerce(value, options)`` turns a JSON value into the Python value, raising
    :class:`CoercionError`. ``text`` types take part in ``search``; ``ordered``
    types may be compared with ``_lt``/``_gt``/``_between`` and summed if
    ``numeric``. ``in_star``: whether ``fields=*`` (and the default selection)
    includes fields of the type (``vector`` fields are returned only when
    named). ``options(opts)`` checks and normalises a field's options, raising
    :class:`CoercionError` with the reason; without it options pass as sent."""

    name: str
    sql: Callable[[Mapping[str, Any]], sa.types.TypeEngine]
    coerce: Callable[[Any, Mapping[str, Any]], Any]
    text: bool = False
    ordered: bool = True
    numeric: bool = False
    #: A collection every field of this type points at (many-to-one): the
    #: ``file`` type references ``wos_files``.
    references: str | None = None
    in_star: bool = True
    options: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None
    #: Option names a field payload may also give beside ``type``.
    option_keys: tuple[str, ...] = ()


TYPES: dict[str, FieldType] = {
    t.name: t
    for t in (
        FieldType("string", lambda o: sa.String(o.get("length") or 255), _string, text=True),
        FieldType("text", lambda o: sa.Text(), _text, text=True),
        FieldType("integer", lambda o: sa.Integer(), _integer(INT32), numeric=True),
        FieldType("bigint", lambda o: sa.BigInteger(), _integer(INT64), numeric=True),
        FieldType("float", lambda o: sa.Float(precision=53), _float, numeric=True),
        FieldType("decimal", lambda o: sa.Numeric(o.get("precision", 10), o.get("scale", 5), asdecimal=True),
                  _decimal, numeric=True),
        FieldType("boolean", lambda o: sa.Boolean(), _boolean, ordered=False),
        FieldType("json", lambda o: json_type(), _json, ordered=False),
        FieldType("uuid", lambda o: UUIDString(), _uuid),
        FieldType("datetime", lambda o: UTCDateTime(), _datetime),
        FieldType("date", lambda o: sa.Date(), _date),
        FieldType("time", lambda o: sa.Time(), _time),
    )
}


#: The kernel's own types, which no plugin may replace.
CORE_TYPES = frozenset(TYPES)


def register_type(field_type: FieldType) -> None:
    """Add a field type (``file``, ``vector``) from a plugin. The kernel's own
    types cannot be replaced; a plugin type of the same name replaces the one
    an earlier app in this process registered (two plugins of one app claiming
    one name are refused where the app collects them)."""
    if field_type.name in CORE_TYPES:
        raise ValueError(f"field type {field_type.name!r} is a kernel type")
    TYPES[field_type.name] = field_type


def coerce(type_name: str, value: Any, options: Mapping[str, Any] | None = None) -> Any:
    """Coerce ``value`` to ``type_name``; ``None`` passes through (nullability is
    checked by the caller)."""
    if value is None:
        return None
    return TYPES[type_name].coerce(value, options or {})
