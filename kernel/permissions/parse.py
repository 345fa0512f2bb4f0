"""Parsing a filter: JSON → a checked tree shared by the SQL compiler and the
in-process matcher.

Everything a filter may get wrong is found here, before any SQL is built: an
unknown operator, field or variable (400 ``INVALID_QUERY`` naming it), a value
that does not fit its field, a field or collection the caller may not read
(403 ``FORBIDDEN``), a filter too deep or too large (400).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from workeros.errors import Forbidden, InvalidQuery
from workeros.schema.field_types import TYPES, CoercionError, coerce
from workeros.schema.model import Collection, Field, Relation, Schema
from workeros.serialize import loads

from .variables import Var, is_variable_syntax, parse_variable

COMPARE = frozenset({"_eq", "_neq", "_lt", "_lte", "_gt", "_gte"})
ORDERING = frozenset({"_lt", "_lte", "_gt", "_gte", "_between", "_nbetween"})
LISTS = frozenset({"_in", "_nin"})
FLAGS = frozenset({"_null", "_nnull", "_empty", "_nempty"})
TEXT = frozenset({"_contains", "_ncontains", "_icontains", "_starts_with", "_istarts_with", "_ends_with",
                  "_iends_with"})
RANGES = frozenset({"_between", "_nbetween"})
OPERATORS = COMPARE | LISTS | FLAGS | TEXT | RANGES
QUANTIFIERS = frozenset({"_some", "_none"})
LOGIC = frozenset({"_and", "_or"})


@dataclass(frozen=True)
class FilterLimits:
    depth: int = 10
    nodes: int = 500
    list_length: int = 1000
    string_length: int = 10_000


# -- the tree ----------------------------------------------------------------------------

class Node:
    __slots__ = ()

    def walk(self) -> Iterator[Node]:
        yield self


@dataclass(frozen=True, eq=False)
class Logic(Node):
    op: str  # "and" | "or"
    children: tuple[Node, ...]

    def walk(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            yield from child.walk()


@dataclass(frozen=True, eq=False)
class Cond(Node):
    """``field`` ``op`` ``value`` on the current collection. ``value`` is coerced
    to the field's type, or a :class:`Var` (or a list of them)."""

    field: Field
    op: str
    value: Any


@dataclass(frozen=True, eq=False)
class Rel(Node):
    """A predicate on related rows: ``m2o`` (the related row), ``some`` /
    ``none`` (of an o2m or m2m relation). ``guard`` is the caller's read filter
    on the related collection, so a relation never reveals rows it could not read."""

    kind: str  # "m2o" | "some" | "none"
    relation: Relation
    child: Node | None
    guard: Node | None = None
    #: The caller's read filter on an m2m relation's junction: only links it may
    #: read count. (The matcher gets related rows already loaded through those
    #: links, so it has nothing more to check.)
    junction_guard: Node | None = None

    def walk(self) -> Iterator[Node]:
        yield self
        for node in (self.child, self.guard, self.junction_guard):
            if node is not None:
                yield from node.walk()


@dataclass(frozen=True, eq=False)
class Filter:
    """A parsed filter on ``collection``. ``raw`` is the JSON it came from (for
    caching and display)."""

    collection: str
    root: Node
    raw: Any = field(default=None, compare=False)

    def paths(self) -> frozenset[tuple[str, ...]]:
        out: set[tuple[str, ...]] = set()

        def visit(node: Node | None, prefix: tuple[str, ...]) -> None:
            if isinstance(node, Logic):
                for child in node.children:
                    visit(child, prefix)
            elif isinstance(node, Cond):
                out.add((*prefix, node.field.name))
            elif isinstance(node, Rel):
                out.add((*prefix, node.relation.field))
                visit(node.child, (*prefix, node.relation.field))

        visit(self.root, ())
        return frozenset(out)

    @property
    def relational(self) -> bool:
        return any(isinstance(n, Rel) for n in self.root.walk())

    def and_(self, other: Filter | None) -> Filter:
        if other is None:
            return self
        if other.collection != self.collection:
            raise ValueError("filters on different collections cannot be combined")
        raw = {"_and": [self.raw, other.raw]} if self.raw is not None and other.raw is not None else None
        return Filter(self.collection, Logic("and", (self.root, other.root)), raw)


Access = Callable[[str], Any]


# -- parsing ------------------------------------------------------------------------------

def parse_filter(raw: Any, *, schema: Schema, collection: str, access: Access | None = None,
                 limits: FilterLimits = FilterLimits()) -> Filter | None:
    """A filter from its JSON (a dict, or a JSON string); ``None`` for no
    filter. ``access`` gives the caller's read rule per collection (``None``:
    an admin, no checks)."""
    if raw is None or raw == "" or raw == {}:
        return None
    if isinstance(raw, (str, bytes)):
        try:
            raw = loads(raw)
        except ValueError:
            raise InvalidQuery("filter is not valid JSON") from None
        if raw is None or raw == {}:
            return None
    c = schema.get(collection)
    if c is None:
        raise InvalidQuery(f"Unknown collection {collection[:80]!r}")
    parser = _Parser(schema, access, limits)
    rule = parser.rule(c.name)
    return Filter(c.name, parser.node(raw, c, rule, 1), raw)


class _Parser:
    def __init__(self, schema: Schema, access: Access | None, limits: FilterLimits) -> None:
        self.schema = schema
        self.access = access
        self.limits = limits
        self.count = 0

    def rule(self, collection: str) -> Any:
        if self.access is None:
            return None
        rule = self.access(collection)
        if rule is None:
            raise Forbidden(f"You don't have permission to read the collection {collection!r}")
        return rule

    def _tick(self, depth: int) -> None:
        self.count += 1
        if self.count > self.limits.nodes:
            raise InvalidQuery(f"Filter is too large (more than {self.limits.nodes} conditions)")
        if depth > self.limits.depth:
            raise InvalidQuery(f"Filter is nested too deeply (more than {self.limits.depth} levels)")

    def node(self, raw: Any, c: Collection, rule: Any, depth: int) -> Node:
        self._tick(depth)
        if not isinstance(raw, Mapping):
            raise InvalidQuery(f"A filter on {c.name!r} must be a JSON object")
        parts: list[Node] = []
        for key, value in raw.items():
            if not isinstance(key, str):
                raise InvalidQuery("Filter keys must be strings")
            if key in LOGIC:
                if not isinstance(value, list):
                    raise InvalidQuery(f"{key} takes a list of filters")
                children = tuple(self.node(v, c, rule, depth + 1) for v in value)
                parts.append(Logic(key[1:], children))
            elif key.startswith("_"):
                raise InvalidQuery(f"Unknown filter operator {key[:40]!r} at the top of a filter on {c.name!r}")
            else:
                parts.append(self.field(key, value, c, rule, depth))
        return parts[0] if len(parts) == 1 else Logic("and", tuple(parts))

    def field(self, name: str, value: Any, c: Collection, rule: Any, depth: int) -> Node:
        allowed = None if rule is None else rule.fields
        if allowed is not None and name not in allowed:
            raise Forbidden(f"You don't have permission to filter on field {name[:80]!r} of {c.name!r}")
        f = c.fields.get(name)
        if f is None:
            raise InvalidQuery(f"Unknown field {name[:80]!r} in collection {c.name!r}", field=name[:80])
        if not isinstance(value, Mapping) or not value:
            raise InvalidQuery(f"The filter on {name!r} must be an object of operators")
        relation = c.relations.get(name)
        if relation is not None and relation.kind in ("o2m", "m2m"):
            return self.many(relation, value, depth)
        if relation is not None and any(k in LOGIC or not str(k).startswith("_") for k in value):
            related = self.schema.collections[relation.related]
            related_rule = self.rule(related.name)
            child = self.node(value, related, related_rule, depth + 1)
            return Rel("m2o", relation, child, self._guard(related, related_rule))
        if f.alias:
            raise InvalidQuery(f"Field {name!r} holds no value to compare")
        conditions = [self.condition(f, op, v, depth) for op, v in value.items()]
        return conditions[0] if len(conditions) == 1 else Logic("and", tuple(conditions))

    def many(self, relation: Relation, value: Mapping[str, Any], depth: int) -> Node:
        junction_guard = None
        if relation.junction is not None:
            # The links themselves are rows of the junction: filtering through them
            # needs read access to it, as selecting ``tags.label`` does, and sees
            # only the links its read filter lets through.
            junction = self.schema.collections[relation.junction]
            junction_guard = self._guard(junction, self.rule(junction.name))
        related = self.schema.collections[relation.related]
        related_rule = self.rule(related.name)
        guard = self._guard(related, related_rule)
        keys = set(value)
        if keys & QUANTIFIERS:
            if keys - QUANTIFIERS:
                raise InvalidQuery(f"Use either _some/_none or a plain filter on {relation.field!r}, not both")
            parts = []
            for q in sorted(keys):
                self._tick(depth + 1)
                parts.append(Rel(q[1:], relation, self.node(value[q], related, related_rule, depth + 2), guard,
                                 junction_guard))
            return parts[0] if len(parts) == 1 else Logic("and", tuple(parts))
        bad = [k for k in keys if k.startswith("_") and k not in LOGIC]
        if bad:
            raise InvalidQuery(f"Operator {bad[0][:40]!r} does not apply to the relation {relation.field!r}; "
                               "use _some or _none")
        return Rel("some", relation, self.node(value, related, related_rule, depth + 1), guard, junction_guard)

    def _guard(self, related: Collection, related_rule: Any) -> Node | None:
        if related_rule is None or related_rule.filter is None:
            return None
        return related_rule.filter.root

    def condition(self, f: Field, op: str, value: Any, depth: int) -> Node:
        self._tick(depth + 1)
        if not isinstance(op, str) or op not in OPERATORS:
            if op in QUANTIFIERS:
                raise InvalidQuery(f"{op} applies to one-to-many and many-to-many relations, not {f.name!r}")
            raise InvalidQuery(f"Unknown filter operator {str(op)[:40]!r} on field {f.name!r}")
        kind = TYPES.get(f.type)
        if op in FLAGS:
            if isinstance(value, str) and value.lower() in ("true", "false"):
                value = value.lower() == "true"
            if not isinstance(value, bool):
                raise InvalidQuery(f"{op} takes true or false (field {f.name!r})")
            return Cond(f, op, value)
        if f.type == "json":
            raise InvalidQuery(f"Field {f.name!r} is JSON: only _null, _nnull, _empty and _nempty apply")
        if op in TEXT:
            if kind is None or not kind.text:
                raise InvalidQuery(f"{op} applies to string and text fields; {f.name!r} is {f.type}")
            if not isinstance(value, str):
                raise InvalidQuery(f"{op} takes a string (field {f.name!r})")
            return Cond(f, op, self.value(f, value, op))
        if op in ORDERING and (kind is None or not kind.ordered):
            raise InvalidQuery(f"{op} needs an ordered field; {f.name!r} is {f.type}")
        if op in LISTS or op in RANGES:
            if isinstance(value, str):
                value = [v for v in value.split(",")] if value else []
            if not isinstance(value, list):
                raise InvalidQuery(f"{op} takes a list (field {f.name!r})")
            if len(value) > self.limits.list_length:
                raise InvalidQuery(f"{op} takes at most {self.limits.list_length} values")
            if op in RANGES and len(value) != 2:
                raise InvalidQuery(f"{op} takes exactly two values (field {f.name!r})")
            return Cond(f, op, tuple(self.value(f, v, op) for v in value))
        return Cond(f, op, self.value(f, value, op))

    def value(self, f: Field, value: Any, op: str) -> Any:
        if isinstance(value, (dict, list)):
            raise InvalidQuery(f"{op} on {f.name!r} takes a single value")
        if is_variable_syntax(value):
            return parse_variable(value)
        if isinstance(value, str) and len(value) > self.limits.string_length:
            raise InvalidQuery(f"A value for {f.name!r} is too long")
        if value is None:
            return None
        if op in TEXT:
            return value
        try:
            return coerce(f.type, value, f.options)
        except CoercionError as exc:
            raise InvalidQuery(f"Invalid value for field {f.name!r} in filter: {exc}", field=f.name) from None
        except (TypeError, ValueError, ArithmeticError):
            raise InvalidQuery(f"Invalid value for field {f.name!r} in filter", field=f.name) from None


def typed_value(f: Field, value: Any) -> Any:
    """A variable's value coerced to the field's type; ``None`` when it does
    not fit (then it matches nothing, as a NULL would)."""
    if value is None:
        return None
    try:
        return coerce(f.type, value, f.options)
    except (CoercionError, TypeError, ValueError, ArithmeticError):
        return None


__all__ = ["Access", "Cond", "Filter", "FilterLimits", "Logic", "Node", "Rel", "Var", "parse_filter", "typed_value"]
