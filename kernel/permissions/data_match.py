"""The filter language over plain JSON data instead of a collection's rows.

Flow conditions (``{"$trigger": {"payload": {"total": {"_gt": 100}}}}``) test
the data chain, which has no schema. The operators and their semantics are the
ones of :mod:`workeros.permissions.match` (DESIGN §4): NULL matches no
comparison except ``_null``/``_empty``; ``_eq`` and the text operators are
case-sensitive, the ``_i…`` forms are not; ``_between`` includes both ends;
``_empty`` is null, ``""``, ``[]`` or ``{}``; ``_in: []`` matches nothing.
Keys that are not operators are path steps into objects; ``_some``/``_none``
test the objects of a list. Values of different kinds never compare (a number
and a numeric string compare as numbers).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from workeros.errors import InvalidQuery
from workeros.permissions.match import match_text
from workeros.permissions.parse import FLAGS, LISTS, LOGIC, OPERATORS, QUANTIFIERS, RANGES

MAX_DEPTH = 32


def check_data_filter(f: Any, _depth: int = 0) -> None:
    """Refuse a malformed filter (400 ``INVALID_QUERY`` naming the problem)."""
    if _depth > MAX_DEPTH:
        raise InvalidQuery("The filter is nested too deeply")
    if not isinstance(f, Mapping):
        raise InvalidQuery("A filter must be a JSON object")
    for key, value in f.items():
        if key in LOGIC:
            if not isinstance(value, list):
                raise InvalidQuery(f"{key} takes a list of filters")
            for child in value:
                check_data_filter(child, _depth + 1)
        elif key in QUANTIFIERS:
            check_data_filter(value, _depth + 1)
        elif key in OPERATORS:
            if key in LISTS and not isinstance(value, list):
                raise InvalidQuery(f"{key} takes a list")
            if key in RANGES and (not isinstance(value, list) or len(value) != 2):
                raise InvalidQuery(f"{key} takes a list of two values")
        elif key.startswith("_") and not key.startswith("__"):
            raise InvalidQuery(f"Unknown filter operator {key[:64]!r}")
        else:
            check_data_filter(value, _depth + 1)


def match_data(f: Mapping[str, Any] | None, data: Any) -> bool:
    """Whether ``data`` satisfies the filter ``f`` (checked with
    :func:`check_data_filter` first)."""
    if f is None:
        return True
    check_data_filter(f)
    return _node(f, data)


def _node(f: Mapping[str, Any], value: Any) -> bool:
    for key, arg in f.items():
        if key == "_and":
            ok = all(_node(child, value) for child in arg)
        elif key == "_or":
            ok = any(_node(child, value) for child in arg)
        elif key in QUANTIFIERS:
            items = value if isinstance(value, list) else []
            found = any(_node(arg, item) for item in items)
            ok = found if key == "_some" else not found
        elif key in OPERATORS:
            ok = _op(key, value, arg)
        else:
            ok = _node(arg, value.get(key) if isinstance(value, Mapping) else None)
        if not ok:
            return False
    return True


def _empty(value: Any, with_blank: bool) -> bool:
    if value is None:
        return True
    return with_blank and value in ("", [], {})


def _number(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float | Decimal):
        return value
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            return None
    return None


def _pair(value: Any, target: Any) -> tuple[Any, Any] | None:
    """The two sides made comparable, or ``None`` when they are not."""
    if isinstance(value, bool) or isinstance(target, bool):
        return (value, target) if isinstance(value, bool) and isinstance(target, bool) else None
    if isinstance(value, int | float | Decimal) or isinstance(target, int | float | Decimal):
        a, b = _number(value), _number(target)
        if a is None or b is None:
            return None
        return (Decimal(str(a)), Decimal(str(b)))
    if type(value) is type(target) or (isinstance(value, str) and isinstance(target, str)):
        return value, target
    return None


def _compare(op: str, value: Any, target: Any) -> bool:
    pair = _pair(value, target)
    if pair is None:
        return op == "_neq"
    a, b = pair
    try:
        if op == "_eq":
            return a == b
        if op == "_neq":
            return a != b
        if op == "_lt":
            return a < b
        if op == "_lte":
            return a <= b
        if op == "_gt":
            return a > b
        return a >= b
    except TypeError:
        return False


def _op(op: str, value: Any, arg: Any) -> bool:
    if op in FLAGS:
        empty = _empty(value, op in ("_empty", "_nempty"))
        want = bool(arg) if op in ("_null", "_empty") else not bool(arg)
        return empty if want else not empty
    if value is None:
        return False  # NULL matches no comparison
    if op in ("_in", "_nin"):
        found = any(_compare("_eq", value, v) for v in arg if v is not None)
        return found if op == "_in" else not found
    if op in ("_between", "_nbetween"):
        low, high = arg
        if low is None or high is None:
            return False
        inside = _compare("_gte", value, low) and _compare("_lte", value, high)
        return inside if op == "_between" else not inside
    if arg is None:
        return False
    if op in ("_eq", "_neq", "_lt", "_lte", "_gt", "_gte"):
        return _compare(op, value, arg)
    if isinstance(value, Mapping | list):
        return False
    found = match_text(op, str(value), str(arg))
    if found is None:
        raise InvalidQuery(f"Unknown filter operator {op!r}")
    return found
