"""The read side of the items service: turning a :class:`~workeros.items.query.Query`
into SQL under the caller's read rules, loading relations in batches, and
shaping rows as JSON-ready dicts.

Every field a query touches (selected, filtered, sorted, searched, aggregated,
grouped) is checked against the caller's read rule for its collection: outside
an allowlist is 403 (whether or not it exists, so existence never leaks), unknown
to a caller who may read every field is 400. Relations are loaded with one query
per relational field per level (``IN`` over the keys of the level above, chunked),
never one per row; each carries the related collection's read row filter.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from workeros.accountability import Accountability
from workeros.db.column_types import iso_utc
from workeros.errors import Forbidden, InvalidQuery, NotFound
from workeros.items.query import Query
from workeros.permissions.compile import icontains
from workeros.schema.field_types import TYPES
from workeros.schema.model import Collection, Field, Relation, Schema

PARENT = "__wos_parent"
ROW_NUMBER = "__wos_rn"
#: Keys per ``IN (...)`` list when loading relations.
CHUNK = 2000
#: Offsets (``page`` times ``limit``) are capped so ``offset + limit`` fits a signed 64-bit integer.
MAX_OFFSET = 2**62
MAX_DEPTH = 8


# -- rules -----------------------------------------------------------------------------

@dataclass(frozen=True)
class AllRule:
    """Everything allowed (admin); the shape of ``workeros.permissions.Rule``."""

    filter: Any = None
    fields: frozenset[str] | None = None
    validation: Any = None
    presets: Mapping[str, Any] = field(default_factory=dict)


_ALL = AllRule()
_permissions_module: list[Any] = []


def permissions_module() -> Any:
    """``workeros.permissions``, or ``None`` where it is not installed (admin
    calls still work then; filters do not). Looked up once."""
    if not _permissions_module:
        try:
            import workeros.permissions as module
        except ImportError:
            module = None  # type: ignore[assignment]
        _permissions_module.append(module)
    return _permissions_module[0]


def rule_all() -> Any:
    module = permissions_module()
    return _ALL if module is None else module.Rule.ALL


# -- JSON-ready values -----------------------------------------------------------------

_datetime = iso_utc


def _iso(value: Any) -> str:
    return value.isoformat()


def _decimal(value: Any) -> str:
    return str(value)


def _float(value: Any) -> float:
    return float(value)


def _identity(value: Any) -> Any:
    return value


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "datetime": _datetime, "date": _iso, "time": _iso, "decimal": _decimal, "float": _float,
}


def converter(f: Field) -> Callable[[Any], Any]:
    """How a column value of ``f`` becomes JSON-ready."""
    return _CONVERTERS.get(f.type, _identity)


def jsonable_value(value: Any) -> Any:
    """Any database value as JSON-ready (used where the field is unknown)."""
    if isinstance(value, dt.datetime):
        return _datetime(value)
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    return value


_row_converters: dict[tuple[int, str], list[tuple[str, Callable[[Any], Any]]]] = {}


def row_converters(schema: Schema, collection: Collection) -> list[tuple[str, Callable[[Any], Any]]]:
    key = (id(schema), collection.name)
    found = _row_converters.get(key)
    if found is None:
        if len(_row_converters) > 4096:
            _row_converters.clear()
        found = [(f.name, converter(f)) for f in collection.scalar_fields()]
        _row_converters[key] = found
    return found


def full_row(schema: Schema, collection: Collection, row: Mapping[str, Any]) -> dict[str, Any]:
    """Every column of ``row``, JSON-ready (revisions, events)."""
    out = {}
    for name, conv in row_converters(schema, collection):
        value = row.get(name)
        out[name] = None if value is None else conv(value)
    return out


# -- the selection tree ------------------------------------------------------------------

@dataclass
class Node:
    """What to read from one collection: ``out`` names the output fields in
    order; ``columns`` the columns to select (output columns plus the primary
    key and foreign keys needed to attach children); ``children`` the relational
    fields read further, each with its own node."""

    collection: Collection
    rule: Any
    query: Query
    out: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    children: dict[str, Node] = field(default_factory=dict)
    relations: dict[str, Relation] = field(default_factory=dict)
    keys_only: bool = False

    def add_column(self, name: str) -> None:
        if name not in self.columns:
            self.columns.append(name)


class Reader:
    """One read under one caller's rules. ``access(collection)`` returns the
    caller's read rule there, or ``None`` (no access)."""

    def __init__(self, schema: Schema, acc: Accountability, access: Callable[[str], Any], variables: Any,
                 *, max_limit: int, default_limit: int) -> None:
        self.schema = schema
        self.acc = acc
        self.admin = acc.admin
        self.access = access
        self.variables = variables
        self.max_limit = max_limit
        self.default_limit = default_limit

    # -- collections and fields ---------------------------------------------------------
    def collection(self, name: str) -> tuple[Collection, Any]:
        """The collection and the caller's read rule: 403 when the caller may
        not read it, whether or not it exists; 404 only for admins."""
        rule = self.access(name) if not self.admin else rule_all()
        collection = self.schema.get(name)
        if rule is None or (collection is None and not self.admin):
            raise Forbidden()
        if collection is None:
            raise NotFound(f"Collection {name[:80]!r} does not exist")
        return collection, rule

    def related_rule(self, name: str) -> Any:
        rule = self.access(name) if not self.admin else rule_all()
        if rule is None:
            raise Forbidden(f"You don't have permission to read the related collection {name!r}")
        return rule

    def field(self, collection: Collection, name: str, rule: Any, what: str = "field") -> Field:
        if rule.fields is not None and name not in rule.fields and name != "*":
            raise Forbidden(f"You don't have permission to access {what} {name[:80]!r} of {collection.name!r}")
        f = collection.fields.get(name)
        if f is None:
            raise InvalidQuery(f"Field {name[:80]!r} does not exist in collection {collection.name!r}", field=name[:80])
        return f

    def readable(self, collection: Collection, rule: Any, name: str) -> bool:
        return rule.fields is None or name in rule.fields

    # -- filters --------------------------------------------------------------------------
    def parse(self, collection: Collection, raw: Any) -> Any:
        if not raw:
            return None
        module = permissions_module()
        if module is None:
            raise InvalidQuery("Filtering is not available: the permissions package is not installed")
        return module.parse_filter(raw, schema=self.schema, collection=collection.name,
                            access=None if self.admin else self.access)

    def compile(self, collection: Collection, filters: Iterable[Any], table: Any = None) -> sa.ColumnElement[bool]:
        """The filters on ``collection``'s table, or on ``table`` (an alias of it)."""
        parts = [f for f in filters if f is not None]
        if not parts:
            return sa.true()
        combined = parts[0]
        for more in parts[1:]:
            combined = combined.and_(more)
        return permissions_module().compile_filter(combined, schema=self.schema, collection=collection.name,
                                                   variables=self.variables, table=table)

    def where(self, collection: Collection, rule: Any, query: Query | None) -> sa.ColumnElement[bool]:
        """The row filter of ``rule`` and the query's filter and search."""
        clause = self.compile(collection, [rule.filter, self.parse(collection, query.filter if query else None)])
        if query is not None and query.search:
            clause = sa.and_(clause, self.search(collection, rule, query.search))
        return clause

    def search(self, collection: Collection, rule: Any, term: str) -> sa.ColumnElement[bool]:
        columns = [collection.table.c[f.name] for f in collection.scalar_fields()
                   if f.type in TYPES and TYPES[f.type].text and self.readable(collection, rule, f.name)]
        if not columns:
            return sa.false()
        return sa.or_(*(icontains(c, term) for c in columns))

    # -- sort and paging ---------------------------------------------------------------
    def order(self, collection: Collection, rule: Any, sort: Iterable[str]) -> list[Any]:
        clauses: list[Any] = []
        plain: set[str] = set()
        for item in sort:
            descending = item.startswith("-")
            name = item[1:] if descending else item
            if not name:
                raise InvalidQuery("sort names an empty field")
            path = name.split(".")
            expr = self._sort_expr(collection, rule, path, 0, collection.table)
            if len(path) == 1:
                plain.add(name)
            clauses.append(expr.desc().nulls_first() if descending else expr.asc().nulls_last())
        if collection.primary_key not in plain:
            clauses.append(collection.pk_column.asc())
        return clauses

    def _sort_expr(self, collection: Collection, rule: Any, path: list[str], depth: int, table: Any) -> Any:
        """The expression to sort by for ``path`` on ``table`` (``collection``'s
        table or an alias of it). Each m2o hop is a scalar subquery on its own alias
        of the related table, with the related read rule compiled on that alias (so
        a self-referencing relation joins a row to its parent, not to itself)."""
        if depth > MAX_DEPTH:
            raise InvalidQuery("sort path is nested too deeply")
        f = self.field(collection, path[0], rule, "sort field")
        if len(path) == 1:
            if f.alias or f.type == "json":
                raise InvalidQuery(f"Cannot sort by {f.name!r} ({'relational alias' if f.alias else 'json'})")
            return table.c[f.name]
        relation = collection.relations.get(f.name)
        if relation is None or relation.kind != "m2o":
            raise InvalidQuery(f"Cannot sort through {f.name!r}: only many-to-one paths can be sorted on")
        related = self.schema.collections[relation.related]
        related_rule = self.related_rule(related.name)
        alias = related.table.alias()
        inner = self._sort_expr(related, related_rule, path[1:], depth + 1, alias)
        condition = sa.and_(alias.c[related.primary_key] == table.c[f.name],
                            self.compile(related, [related_rule.filter], table=alias))
        return sa.select(inner).where(condition).correlate_except(alias).scalar_subquery()

    def paging(self, query: Query) -> tuple[int, int]:
        limit = query.limit
        if limit is None:
            limit = self.default_limit
        elif limit == -1 or limit > self.max_limit:
            limit = self.max_limit
        offset = query.offset or 0
        if query.page is not None:
            offset = (query.page - 1) * limit
        return limit, min(offset, MAX_OFFSET)

    # -- the selection tree --------------------------------------------------------------
    def node(self, collection: Collection, rule: Any, query: Query, depth: int = 0) -> Node:
        if depth > MAX_DEPTH:
            raise InvalidQuery("fields are nested too deeply")
        node = Node(collection=collection, rule=rule, query=query)
        paths = [p.split(".") for p in (query.fields or ("*",))]
        nested: dict[str, list[list[str]]] = {}
        for path in paths:
            head, rest = path[0], path[1:]
            if head == "*":
                for f in collection.fields.values():
                    if not self.readable(collection, rule, f.name):
                        continue
                    if f.type in TYPES and not TYPES[f.type].in_star:
                        continue  # e.g. vectors: returned only when named
                    relation = collection.relations.get(f.name)
                    if rest:
                        if relation is not None and self._may_follow(relation):
                            nested.setdefault(f.name, []).append(rest)
                        elif f.name not in node.out:
                            node.out.append(f.name)
                    elif f.alias:
                        if relation is not None and self._may_follow(relation):
                            nested.setdefault(f.name, [])
                    elif f.name not in node.out:
                        node.out.append(f.name)
                continue
            f = self.field(collection, head, rule)
            relation = collection.relations.get(head)
            if rest:
                if relation is None:
                    raise InvalidQuery(f"Field {head!r} of {collection.name!r} is not relational")
                nested.setdefault(head, []).append(rest)
            elif f.alias:
                if relation is None:
                    raise InvalidQuery(f"Field {head!r} of {collection.name!r} has no relation")
                nested.setdefault(head, [])
            elif head not in node.out:
                node.out.append(head)
        node.add_column(collection.primary_key)
        for name in node.out:
            if not collection.fields[name].alias:
                node.add_column(name)
        for name, subpaths in nested.items():
            relation = collection.relations[name]
            related = self.schema.collections.get(relation.related)
            if related is None:
                raise InvalidQuery(f"Field {name!r} points at a missing collection")
            related_rule = self.related_rule(related.name)
            if relation.junction is not None:
                self.related_rule(relation.junction)
            sub = query.deep.get(name) or Query()
            if subpaths:
                child_query = Query(**{**sub.__dict__, "fields": tuple(".".join(p) for p in subpaths)})
                child = self.node(related, related_rule, child_query, depth + 1)
            else:
                child = self.node(related, related_rule, Query(**{**sub.__dict__, "fields": (related.primary_key,)}),
                                  depth + 1)
                child.keys_only = True
            if name not in node.out:
                node.out.append(name)
            node.children[name] = child
            node.relations[name] = relation
            if relation.kind == "m2o":
                node.add_column(name)
        return node

    def _may_follow(self, relation: Relation) -> bool:
        """A wildcard expands a relation only when the caller may read the far side."""
        if self.admin:
            return relation.related in self.schema.collections
        return (relation.related in self.schema.collections and self.access(relation.related) is not None
                and (relation.junction is None or self.access(relation.junction) is not None))

    def select(self, node: Node) -> sa.Select:
        table = node.collection.table
        return sa.select(*(table.c[name] for name in node.columns))

    # -- loading relations ---------------------------------------------------------------
    async def load(self, conn: AsyncConnection, node: Node, rows: list[dict[str, Any]]) -> None:
        """Attach every child of ``node`` to ``rows`` (raw rows, in place)."""
        for name, child in node.children.items():
            relation = node.relations[name]
            if relation.kind == "m2o":
                await self._load_m2o(conn, name, child, rows)
            else:
                await self._load_many(conn, node, name, relation, child, rows)

    async def _fetch(self, conn: AsyncConnection, statements: Iterable[sa.Select]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for stmt in statements:
            out += [dict(r) for r in (await conn.execute(stmt)).mappings()]
        return out

    async def _load_m2o(self, conn: AsyncConnection, name: str, child: Node, rows: list[dict[str, Any]]) -> None:
        keys = list({row[name] for row in rows if row.get(name) is not None})
        related = child.collection
        by_key: dict[Any, dict[str, Any]] = {}
        if keys:
            where = self.where(related, child.rule, child.query)
            fetched = await self._fetch(conn, (
                self.select(child).where(related.pk_column.in_(chunk), where) for chunk in _chunks(keys)))
            await self.load(conn, child, fetched)
            by_key = {r[related.primary_key]: r for r in fetched}
        for row in rows:
            key = row.get(name)
            row[name] = by_key.get(key) if key is not None else None

    async def _load_many(self, conn: AsyncConnection, node: Node, name: str, relation: Relation, child: Node,
                         rows: list[dict[str, Any]]) -> None:
        pk = node.collection.primary_key
        keys = list({row[pk] for row in rows if row.get(pk) is not None})
        grouped: dict[Any, list[dict[str, Any]]] = {}
        if keys:
            related = child.collection
            table = related.table
            columns = [table.c[c] for c in child.columns]
            where = self.where(related, child.rule, child.query)
            if relation.kind == "o2m":
                assert relation.related_field is not None
                parent = table.c[relation.related_field]
                source: Any = table
            else:
                junction = self.schema.collections[relation.junction]  # type: ignore[index]
                jrule = self.related_rule(junction.name)
                jt = junction.table
                parent = jt.c[relation.junction_field]
                source = jt.join(table, related.pk_column == jt.c[relation.junction_related_field])
                where = sa.and_(where, self.compile(junction, [jrule.filter]))
            order = self.order(related, child.rule, child.query.sort)
            limit, offset = child.query.limit, child.query.offset or 0
            if child.query.page is not None and limit is not None and limit > 0:
                offset = (child.query.page - 1) * limit
            offset = min(offset, MAX_OFFSET)
            statements = []
            for chunk in _chunks(keys):
                condition = sa.and_(parent.in_(chunk), where)
                if limit is None or limit == -1:
                    stmt = sa.select(*columns, parent.label(PARENT)).select_from(source).where(condition).order_by(*order)
                else:
                    rn = sa.func.row_number().over(partition_by=parent, order_by=order).label(ROW_NUMBER)
                    inner = sa.select(*columns, parent.label(PARENT), rn).select_from(source).where(condition).subquery()
                    stmt = (sa.select(*(inner.c[c] for c in child.columns), inner.c[PARENT])
                            .where(inner.c[ROW_NUMBER] > offset, inner.c[ROW_NUMBER] <= offset + min(limit, self.max_limit))
                            .order_by(inner.c[PARENT], inner.c[ROW_NUMBER]))
                statements.append(stmt)
            fetched = await self._fetch(conn, statements)
            await self.load(conn, child, fetched)
            for r in fetched:
                grouped.setdefault(r.pop(PARENT), []).append(r)
        for row in rows:
            row[name] = grouped.get(row.get(pk), [])

    # -- output -----------------------------------------------------------------------
    def flat_plan(self, node: Node, json_datetimes: bool = False) -> list[tuple[int, str, Callable[[Any], Any] | None]]:
        """For a node without children: (column index, output name, converter or
        None when the value is already JSON-ready) per output field. With
        ``json_datetimes`` the rows come from ``Database.fetch(...,
        json_datetimes=True)``: their datetimes are already text."""
        plan = []
        for name in node.out:
            conv = converter(node.collection.fields[name])
            if json_datetimes and conv is _datetime:
                conv = _identity
            plan.append((node.columns.index(name), name, None if conv is _identity else conv))
        return plan

    def project_flat(self, plan: list[tuple[int, str, Callable[[Any], Any] | None]], rows: Iterable[Any]) -> list[dict]:
        """Rows (tuples in ``node.columns`` order) of a node without children,
        straight to output dicts."""
        out = []
        for row in rows:
            item = {}
            for index, name, conv in plan:
                value = row[index]
                item[name] = value if conv is None or value is None else conv(value)
            out.append(item)
        return out

    def project(self, node: Node, row: Mapping[str, Any]) -> Any:
        """A raw row as the JSON-ready output of ``node``."""
        collection = node.collection
        if node.keys_only:
            value = row[collection.primary_key]
            return None if value is None else converter(collection.pk_field)(value)
        out: dict[str, Any] = {}
        for name in node.out:
            value = row.get(name)
            child = node.children.get(name)
            if child is not None:
                if isinstance(value, list):
                    out[name] = [self.project(child, r) for r in value]
                elif isinstance(value, dict):
                    out[name] = self.project(child, value)
                else:
                    out[name] = None
            elif value is None:
                out[name] = None
            else:
                out[name] = converter(collection.fields[name])(value)
        return out


def _chunks(keys: list[Any]) -> Iterable[list[Any]]:
    for i in range(0, len(keys), CHUNK):
        yield keys[i:i + CHUNK]
