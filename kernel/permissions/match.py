"""Evaluating a parsed filter against a row in this process, with the same
answers as the SQL the compiler builds (a property test checks this on both
dialects).

Row values may be Python-typed or JSON-ready (ISO strings for datetimes,
strings for decimals): they are coerced by field type before comparing.
Relational predicates read nested data from the row: an m2o field holds the
related row as a dict (or ``None``); an o2m or m2m field holds a list of
dicts. A bare key where a related row is needed cannot be judged and does not
match.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workeros.schema.model import Collection, Field, Schema

from .compile import JSON_EMPTY
from .parse import Cond, Filter, Logic, Node, Rel, typed_value
from .variables import Var, Variables


def match_filter(f: Filter | None, row: Mapping[str, Any], *, schema: Schema, collection: str,
                 variables: Variables | None) -> bool:
    if f is None:
        return True
    return _Matcher(schema, variables or Variables()).node(f.root, schema.collections[collection], row)


def _json_text(value: Any) -> str:
    from workeros.serialize import dumps_str

    return dumps_str(value)


class _Matcher:
    def __init__(self, schema: Schema, variables: Variables) -> None:
        self.schema = schema
        self.variables = variables

    def node(self, node: Node | None, c: Collection, row: Mapping[str, Any]) -> bool:
        if node is None:
            return True
        if isinstance(node, Logic):
            if node.op == "and":
                return all(self.node(child, c, row) for child in node.children)
            return any(self.node(child, c, row) for child in node.children)
        if isinstance(node, Cond):
            return self.cond(node, row.get(node.field.name) if isinstance(row, Mapping) else None)
        if isinstance(node, Rel):
            return self.rel(node, row)
        raise TypeError(f"unknown filter node {node!r}")

    def rel(self, node: Rel, row: Mapping[str, Any]) -> bool:
        related = self.schema.collections[node.relation.related]
        value = row.get(node.relation.field)

        def visible(item: Any) -> bool:
            return (isinstance(item, Mapping) and self.node(node.guard, related, item)
                    and self.node(node.child, related, item))

        if node.kind == "m2o":
            return visible(value)
        items = value if isinstance(value, list) else []
        found = any(visible(item) for item in items)
        return found if node.kind == "some" else not found

    def resolve(self, node: Cond, value: Any) -> Any:
        if isinstance(value, Var):
            return typed_value(node.field, self.variables.value(value))
        return value

    def cond(self, node: Cond, raw: Any) -> bool:
        op, f = node.op, node.field
        if op in ("_null", "_nnull", "_empty", "_nempty"):
            empty = self.empty(f, raw, op in ("_empty", "_nempty"))
            want_null = node.value if op in ("_null", "_empty") else not node.value
            return empty if want_null else not empty
        value = _typed(f, raw)
        if value is None:
            return False  # NULL matches no comparison
        if op in ("_in", "_nin"):
            values = [v for v in (self.resolve(node, v) for v in node.value) if v is not None]
            return (value in values) if op == "_in" else (value not in values)
        if op in ("_between", "_nbetween"):
            low, high = (self.resolve(node, v) for v in node.value)
            if low is None or high is None:
                return False
            inside = low <= value <= high
            return inside if op == "_between" else not inside
        target = self.resolve(node, node.value)
        if target is None:
            return False
        if op == "_eq":
            return value == target
        if op == "_neq":
            return value != target
        if op == "_lt":
            return value < target
        if op == "_lte":
            return value <= target
        if op == "_gt":
            return value > target
        if op == "_gte":
            return value >= target
        found = match_text(op, str(value), str(target))
        if found is None:
            raise TypeError(f"unknown operator {op}")
        return found

    def empty(self, f: Field, raw: Any, with_blank: bool) -> bool:
        if raw is None:
            return True
        if f.type == "json":
            return with_blank and _json_text(raw) in JSON_EMPTY
        return with_blank and f.type in ("string", "text") and raw == ""


def _typed(f: Field, raw: Any) -> Any:
    """A row value as the type the database compares: JSON-ready values are
    parsed back (datetimes, dates, decimals...)."""
    if raw is None:
        return None
    if f.type in ("string", "text", "uuid") and isinstance(raw, str):
        return raw
    return typed_value(f, raw)


def match_text(op: str, text: str, needle: str) -> bool | None:
    """A text operator (``_contains``, ``_ncontains``, ``_starts_with``,
    ``_ends_with`` and their ``_i…`` case-insensitive forms) on two strings;
    ``None`` for an operator that is not one of them."""
    if op.startswith("_i"):
        text, needle = text.lower(), needle.lower()
    if op in ("_contains", "_icontains"):
        return needle in text
    if op == "_ncontains":
        return needle not in text
    if op in ("_starts_with", "_istarts_with"):
        return text.startswith(needle)
    if op in ("_ends_with", "_iends_with"):
        return text.endswith(needle)
    return None
