"""Compiling a parsed filter to a SQLAlchemy boolean expression.

The semantics are DESIGN §4's and the same on SQLite and PostgreSQL:

- NULL matches no comparison except ``_null``/``_empty``: the negative
  operators (``_neq``, ``_nin``, ``_ncontains``, ``_nbetween``) say
  ``IS NOT NULL`` explicitly;
- ``_contains``/``_starts_with``/``_ends_with`` are case-sensitive and take
  ``%`` and ``_`` literally (position and substring functions, never LIKE);
  the ``_i…`` forms lower-case both sides (``wos_lower`` on SQLite folds like
  Python and PostgreSQL do, not just ASCII);
- strings compare by code point (``COLLATE "C"`` on PostgreSQL, SQLite's
  binary collation);
- relations compile to correlated ``EXISTS`` subqueries on aliased tables.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from workeros.schema.model import Collection, Schema

from .parse import FLAGS, Cond, Filter, Logic, Node, Rel, typed_value
from .variables import Var, Variables

JSON_NULLS = ("null",)
JSON_EMPTY = ("null", "[]", '""')


class _position(FunctionElement):  # noqa: N801 - a SQL function
    """1-based position of the second argument in the first (0: absent)."""

    type = sa.Integer()
    inherit_cache = True
    name = "wos_position"


@compiles(_position)
def _position_default(element: Any, compiler: Any, **kw: Any) -> str:
    return f"instr({compiler.process(element.clauses, **kw)})"


@compiles(_position, "postgresql")
def _position_pg(element: Any, compiler: Any, **kw: Any) -> str:
    return f"strpos({compiler.process(element.clauses, **kw)})"


class _lower(FunctionElement):  # noqa: N801
    type = sa.Text()
    inherit_cache = True
    name = "wos_lower"


@compiles(_lower)
def _lower_default(element: Any, compiler: Any, **kw: Any) -> str:
    return f"wos_lower({compiler.process(element.clauses, **kw)})"


@compiles(_lower, "postgresql")
def _lower_pg(element: Any, compiler: Any, **kw: Any) -> str:
    return f"lower({compiler.process(element.clauses, **kw)})"


def icontains(col: Any, term: str) -> sa.ColumnElement[bool]:
    """Case-insensitive "contains", folded as ``_icontains`` folds (Unicode on both
    dialects) and with ``%``/``_`` literal: what ``search`` uses."""
    return _position(_lower(col), term.lower()) > 0


class _bytewise(sa.sql.expression.ColumnElement):  # type: ignore[type-arg]
    """A string expression compared by code point on every dialect."""

    inherit_cache = True

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.type = inner.type


@compiles(_bytewise)
def _bytewise_default(element: Any, compiler: Any, **kw: Any) -> str:
    return compiler.process(element.inner, **kw)


@compiles(_bytewise, "postgresql")
def _bytewise_pg(element: Any, compiler: Any, **kw: Any) -> str:
    return f'({compiler.process(element.inner, **kw)} COLLATE "C")'


def compile_filter(f: Filter | None, *, schema: Schema, collection: str,
                   variables: Variables | None, table: Any = None) -> sa.ColumnElement[bool]:
    """``f`` as a SQL condition on ``collection``'s table, or on ``table`` (an
    alias of it, as a subquery uses)."""
    if f is None:
        return sa.true()
    c = schema.collections[collection]
    return _Compiler(schema, variables or Variables()).node(f.root, c, c.table if table is None else table)


# -- statements cached per filter shape ---------------------------------------------------
#
# A filter's *shape* is its structure without its values: the fields, the
# operators and what decides the SQL's form (a NULL value, the number of values
# of ``_in``, an empty ``_ends_with``), after variables are resolved. Two
# filters of one shape compile to the same SQL with different bound values, so
# a caller may build (and SQLAlchemy compile) the statement once per shape:
# :func:`filter_shape` gives a filter's shape and values without building
# anything, :func:`compile_filter_params` builds the condition with every value
# a bound parameter under the same names.

def filter_shape(f: Filter | None, *, variables: Variables | None) -> tuple[tuple, dict[str, Any]] | None:
    """The shape of ``f`` (hashable) under ``variables`` and its bound values,
    or ``None`` when it cannot be cached by shape (a relational filter: its
    subqueries are built per call)."""
    params: dict[str, Any] = {}
    if f is None:
        return (), params
    shape = _Compiler(None, variables or Variables(), params).shape(f.root)  # type: ignore[arg-type]
    return None if shape is None else (shape, params)


def compile_filter_params(f: Filter | None, *, schema: Schema, collection: str,
                          variables: Variables | None) -> sa.ColumnElement[bool]:
    """:func:`compile_filter` with every value a named bound parameter, named
    as :func:`filter_shape` names the values. Only for a filter it accepts."""
    if f is None:
        return sa.true()
    c = schema.collections[collection]
    return _Compiler(schema, variables or Variables(), {}).node(f.root, c, c.table)


class _Compiler:
    def __init__(self, schema: Schema, variables: Variables, params: dict[str, Any] | None = None) -> None:
        self.schema = schema
        self.variables = variables
        #: When a dict, values become named bound parameters collected here.
        self.params = params

    def node(self, node: Node | None, c: Collection, table: Any) -> sa.ColumnElement[bool]:
        if node is None:
            return sa.true()
        if isinstance(node, Logic):
            parts = [self.node(child, c, table) for child in node.children]
            if node.op == "and":
                return sa.and_(sa.true(), *parts)
            return sa.or_(sa.false(), *parts)
        if isinstance(node, Cond):
            return self.cond(node, table.c[node.field.name])
        if isinstance(node, Rel):
            return self.rel(node, c, table)
        raise TypeError(f"unknown filter node {node!r}")

    def shape(self, node: Node | None) -> tuple | None:
        """The shape of ``node``, collecting its bound values in the order
        :meth:`node` binds them; ``None`` for a relational node."""
        if node is None:
            return ("-",)
        if isinstance(node, Logic):
            children = []
            for child in node.children:
                shape = self.shape(child)
                if shape is None:
                    return None
                children.append(shape)
            return (node.op, tuple(children))
        if isinstance(node, Cond):
            if node.op in FLAGS:
                return (node.field.name, node.op, bool(node.value))
            form, values = self.cond_values(node)
            for value, _ in values:
                self.bind(value, None)
            return (node.field.name, node.op, form)
        return None

    def bind(self, value: Any, type_: Any) -> Any:
        if self.params is None:
            return value
        name = f"wos_f{len(self.params)}"
        self.params[name] = value
        return sa.bindparam(name, value, type_=type_)

    def rel(self, node: Rel, c: Collection, table: Any) -> sa.ColumnElement[bool]:
        relation = node.relation
        related = self.schema.collections[relation.related]
        target = related.table.alias()
        inner = sa.and_(self.node(node.child, related, target), self.node(node.guard, related, target))
        if node.kind == "m2o":
            link = target.c[related.primary_key] == table.c[relation.field]
            return sa.exists(sa.select(sa.literal(1)).select_from(target).where(link, inner))
        if relation.kind == "o2m":
            link = target.c[relation.related_field] == table.c[c.primary_key]
            query = sa.select(sa.literal(1)).select_from(target).where(link, inner)
        else:  # m2m through the junction
            junction_collection = self.schema.collections[relation.junction]  # type: ignore[index]
            junction = junction_collection.table.alias()
            query = (sa.select(sa.literal(1))
                     .select_from(junction.join(target, target.c[related.primary_key]
                                                == junction.c[relation.junction_related_field]))
                     .where(junction.c[relation.junction_field] == table.c[c.primary_key], inner,
                            self.node(node.junction_guard, junction_collection, junction)))
        exists = sa.exists(query)
        return exists if node.kind == "some" else ~exists

    def resolve(self, node: Cond, value: Any) -> Any:
        if isinstance(value, Var):
            return typed_value(node.field, self.variables.value(value))
        return value

    def cond_values(self, node: Cond) -> tuple[str, list[tuple[Any, Any]]]:
        """The form of ``node``'s SQL and its values, each with the SQL type to
        bind it as (``None``: the column's). Pure Python: what :meth:`cond`
        builds from, and all :func:`filter_params` needs."""
        op = node.op
        if op in FLAGS:
            return "flag", []
        if op in ("_in", "_nin"):
            values = [v for v in (self.resolve(node, v) for v in node.value) if v is not None]
            return (f"{op}:{len(values)}", [(v, None) for v in values])
        if op in ("_between", "_nbetween"):
            low, high = (self.resolve(node, v) for v in node.value)
            if low is None or high is None:
                return "false", []
            return op, [(low, None), (high, None)]
        value = self.resolve(node, node.value)
        if value is None:
            return "false", []  # NULL compares with nothing
        if op in ("_eq", "_neq", "_lt", "_lte", "_gt", "_gte"):
            return op, [(value, None)]
        # text operators: value is a string; never LIKE
        value = str(value)
        needle = value.lower() if op.startswith("_i") else value
        length = len(needle)
        if op in ("_contains", "_icontains", "_ncontains"):
            return op, [(needle, sa.String())]
        if op in ("_starts_with", "_istarts_with"):
            return op, [(length, sa.Integer()), (needle, sa.String())]
        if op in ("_ends_with", "_iends_with"):
            if length == 0:
                return "notnull", []
            return op, [(length, sa.Integer()), (length, sa.Integer()), (length, sa.Integer()),
                        (needle, sa.String())]
        raise TypeError(f"unknown operator {op}")

    def cond(self, node: Cond, col: Any) -> sa.ColumnElement[bool]:
        op, f = node.op, node.field
        if op in FLAGS:
            want_null = node.value if op in ("_null", "_empty") else not node.value
            empty = self.empty(col, f.type, op in ("_empty", "_nempty"))
            return empty if want_null else ~empty
        form, raw = self.cond_values(node)
        if form == "false":
            return sa.false()
        if form == "notnull":
            return col.is_not(None)
        v = [self.bind(value, col.type if type_ is None else type_) for value, type_ in raw]
        text = f.type in ("string", "text")
        target = _bytewise(col) if text else col
        if op in ("_in", "_nin"):
            if op == "_in":
                return target.in_(v) if v else sa.false()
            return sa.and_(col.is_not(None), target.not_in(v)) if v else col.is_not(None)
        if op == "_between":
            return sa.and_(target >= v[0], target <= v[1])
        if op == "_nbetween":
            return sa.and_(col.is_not(None), sa.or_(target < v[0], target > v[1]))
        if op == "_eq":
            return target == v[0]
        if op == "_neq":
            return sa.and_(col.is_not(None), target != v[0])
        if op in ("_lt", "_lte", "_gt", "_gte"):
            return {"_lt": target.__lt__, "_lte": target.__le__, "_gt": target.__gt__,
                    "_gte": target.__ge__}[op](v[0])
        subject = _lower(col) if op.startswith("_i") else col
        if op in ("_contains", "_icontains"):
            return _position(subject, v[0]) > 0
        if op == "_ncontains":
            return sa.and_(col.is_not(None), _position(subject, v[0]) == 0)
        if op in ("_starts_with", "_istarts_with"):
            return sa.func.substr(subject, 1, v[0]) == v[1]
        if op in ("_ends_with", "_iends_with"):
            return sa.and_(sa.func.length(subject) >= v[0],
                           sa.func.substr(subject, sa.func.length(subject) - v[1] + 1, v[2]) == v[3])
        raise TypeError(f"unknown operator {op}")

    def empty(self, col: Any, type_name: str, with_blank: bool) -> sa.ColumnElement[bool]:
        if type_name == "json":
            text = sa.cast(col, sa.Text)
            return sa.or_(col.is_(None), text.in_(JSON_EMPTY if with_blank else JSON_NULLS))
        if with_blank and type_name in ("string", "text"):
            return sa.or_(col.is_(None), col == "")
        return col.is_(None)
