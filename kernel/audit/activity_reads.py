"""Reading the activity log: ``GET /api/activity``.

Admins see every row; anyone else only the rows of their own actions (the row's
``user`` is them), whatever filter they send. The filter is a small subset of the
permissions DSL over the activity columns: ``_eq _neq _in _nin _lt _lte _gt _gte
_null _nnull _starts_with _contains`` and ``_and``/``_or``. Unknown columns or
operators are 400 ``INVALID_QUERY`` naming them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import orjson
import sqlalchemy as sa

from workeros.accountability import Accountability
from workeros.db.tables.audit import activity
from workeros.errors import Forbidden, InvalidQuery

COLUMNS = ("id", "action", "collection", "item", "user", "ip", "user_agent", "origin", "timestamp", "meta")
FILTERABLE = frozenset(COLUMNS) - {"meta"}
MAX_LIMIT = 1000


def _value(column: str, value: Any) -> Any:
    if column == "timestamp":
        if not isinstance(value, str):
            raise InvalidQuery("timestamp filters take ISO 8601 date-times")
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidQuery(f"Invalid date-time {value!r}") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    if column == "id":
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise InvalidQuery("id filters take integers")
        try:
            number = int(value)
        except ValueError:
            raise InvalidQuery(f"Invalid id {str(value)[:40]!r}") from None
        if not -(2**63) <= number < 2**63:
            raise InvalidQuery("id is out of range")
        return number
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise InvalidQuery(f"Invalid value for {column}")
    return str(value)


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _field(column: str, ops: Any) -> sa.ColumnElement[bool]:
    if not isinstance(ops, Mapping) or not ops:
        raise InvalidQuery(f"Filter on {column} must be an object of operators")
    col = activity.c[column]
    parts = []
    for op, raw in ops.items():
        if op in ("_null", "_nnull"):
            want_null = (op == "_null") == (raw in (True, "true", 1))
            parts.append(col.is_(None) if want_null else col.is_not(None))
        elif op in ("_in", "_nin"):
            if not isinstance(raw, list):
                raise InvalidQuery(f"{op} takes a list")
            values = [_value(column, v) for v in raw]
            parts.append(col.in_(values) if op == "_in" else sa.and_(col.is_not(None), col.not_in(values)))
        elif op in ("_starts_with", "_contains"):
            if column in ("id", "timestamp"):
                raise InvalidQuery(f"{op} does not apply to {column}")
            value = _like_escape(str(_value(column, raw)))
            pattern = value + "%" if op == "_starts_with" else "%" + value + "%"
            parts.append(col.like(pattern, escape="\\"))
        elif op in ("_eq", "_neq", "_lt", "_lte", "_gt", "_gte"):
            value = _value(column, raw)
            parts.append({"_eq": col == value, "_neq": sa.and_(col.is_not(None), col != value),
                          "_lt": col < value, "_lte": col <= value, "_gt": col > value,
                          "_gte": col >= value}[op])
        else:
            raise InvalidQuery(f"Unknown filter operator {op!r}")
    return sa.and_(*parts)


def compile_filter(node: Any, depth: int = 0) -> sa.ColumnElement[bool]:
    if depth > 16:
        raise InvalidQuery("Filter is nested too deeply")
    if not isinstance(node, Mapping):
        raise InvalidQuery("Filter must be a JSON object")
    parts = []
    for key, value in node.items():
        if key in ("_and", "_or"):
            if not isinstance(value, list):
                raise InvalidQuery(f"{key} takes a list")
            inner = [compile_filter(v, depth + 1) for v in value]
            parts.append(sa.and_(sa.true(), *inner) if key == "_and" else sa.or_(sa.false(), *inner))
        elif key in FILTERABLE:
            parts.append(_field(key, value))
        else:
            raise InvalidQuery(f"Unknown field {key!r} in filter")
    return sa.and_(sa.true(), *parts)


def int_param(params: Mapping[str, str], name: str, default: int) -> int:
    """An integer query parameter (400 ``INVALID_QUERY`` when it is not one)."""
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidQuery(f"{name} must be an integer") from None
    if not -(2**63) <= value < 2**63:
        raise InvalidQuery(f"{name} is out of range")
    return value


def paging(params: Mapping[str, str], max_limit: int) -> tuple[int, int]:
    """``limit`` (default 100, ``-1`` = ``max_limit``), ``offset`` and 1-based
    ``page`` of a list request, as (limit, offset); 400 ``INVALID_QUERY`` when off."""
    limit = int_param(params, "limit", 100)
    if limit == -1:
        limit = max_limit
    if not 0 <= limit <= max_limit:
        raise InvalidQuery(f"limit must be between 0 and {max_limit} (or -1)")
    offset = int_param(params, "offset", 0)
    if params.get("page") is not None:
        page = int_param(params, "page", 1)
        if page < 1:
            raise InvalidQuery("page is 1-based")
        offset = (page - 1) * limit
    if offset < 0:
        raise InvalidQuery("offset must not be negative")
    if offset >= 2**63:
        raise InvalidQuery("offset is out of range")
    return limit, offset


def build_query(acc: Accountability, params: Mapping[str, str]) -> sa.Select:
    """The SELECT for one ``GET /api/activity`` (``filter``, ``sort``, ``limit``,
    ``offset``, ``page``)."""
    if acc.user is None and not acc.admin:
        raise Forbidden()
    query = sa.select(*[activity.c[c] for c in COLUMNS])
    if not acc.admin:
        query = query.where(activity.c.user == acc.user)
    raw = params.get("filter")
    if raw:
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise InvalidQuery("filter is not valid JSON") from None
        query = query.where(compile_filter(parsed))
    order = []
    for part in (params.get("sort") or "-timestamp").split(","):
        name = part.strip().lstrip("-")
        if not name:
            continue
        if name not in FILTERABLE:
            raise InvalidQuery(f"Cannot sort by {name!r}")
        col = activity.c[name]
        order.append(col.desc() if part.strip().startswith("-") else col.asc())
    order.append(activity.c.id.desc())
    limit, offset = paging(params, MAX_LIMIT)
    return query.order_by(*order).limit(limit).offset(offset)


async def list_activity(db: Any, acc: Accountability, params: Mapping[str, str]) -> list[dict[str, Any]]:
    query = build_query(acc, params)
    async with db.read() as conn:
        return [dict(r) for r in (await conn.execute(query)).mappings()]
