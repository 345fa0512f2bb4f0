"""The items service: every read and write of user data, from every way in,
under the caller's permissions (DESIGN §3).

Reads (:meth:`ItemsService.query`, :meth:`ItemsService.get`) go through
:class:`workeros.items.reads.Reader`. Writes go through the one write path,
:class:`workeros.items.writes.Writes`, on a transaction :meth:`ItemsService.writing`
opens: one per call here, or one shared by several writes (a restore).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection

from workeros.accountability import Accountability
from workeros.config import setting_or
from workeros.errors import Forbidden, InvalidPayload, InvalidQuery, NotFound
from workeros.hookspecs.lifecycle import ConfigKey
from workeros.items.query import Query
from workeros.items.reads import MAX_OFFSET, Reader, converter, jsonable_value, permissions_module, rule_all
from workeros.items.writes import (
    MAX_BATCH,
    Lifecycle,
    Writes,
    WriteTransaction,
    check_batch,
    chunks,
    is_data_error,
    key_of,
    payload,
)
from workeros.schema.field_types import TYPES
from workeros.schema.model import Collection, Schema

if TYPE_CHECKING:
    from workeros.services import Services

log = logging.getLogger("workeros.items")

ACTIONS = ("create", "read", "update", "delete")
_KEY_PARAM = "wos_key"
_LIMIT_PARAM = "wos_limit"
_OFFSET_PARAM = "wos_offset"


class ItemsService:
    config_keys = (
        ConfigKey("items.max_limit", "int", 1000, "Largest page a query may ask for (limit=-1 means this)"),
        ConfigKey("items.default_limit", "int", 100, "Page size when a query gives no limit"),
        ConfigKey("items.export_batch", "int", 1000, "Rows read per batch when exporting a collection"),
        ConfigKey("items.max_batch", "int", 10_000,
                  "Most items (or keys) one write request may carry, imports included (400 beyond)"),
    )

    def __init__(self, services: Services) -> None:
        self.services = services
        settings = services.settings
        self.max_limit = int(setting_or(settings, "items.max_limit", 1000))
        self.default_limit = min(int(setting_or(settings, "items.default_limit", 100)), self.max_limit)
        self.max_batch = int(setting_or(settings, "items.max_batch", MAX_BATCH))
        self.export_batch = int(setting_or(settings, "items.export_batch", 1000))
        #: Statements built once per query shape (gets and plain pages).
        self._statements: dict[tuple, tuple] = {}
        self.lifecycle = Lifecycle(self)

    @classmethod
    async def open(cls, services: Services) -> ItemsService:
        return cls(services)

    # -- permissions ----------------------------------------------------------------------
    def schema(self) -> Schema:
        return self.services.schema.current()

    async def rule(self, acc: Accountability, collection: str, action: str) -> Any:
        """The caller's rule for ``action`` on ``collection``: 403 if none (or the
        collection is unknown to a non-admin), 404 for an unknown collection
        asked by an admin."""
        schema = self.schema()
        if acc.admin:
            if collection not in schema.collections:
                raise NotFound(f"Collection {collection[:80]!r} does not exist")
            return rule_all()
        permissions = self.services.permissions
        if permissions is None:
            raise Forbidden()
        rule = await permissions.rule(acc, collection, action)
        if rule is None or collection not in schema.collections:
            raise Forbidden()
        return rule

    async def reader(self, acc: Accountability, schema: Schema | None = None) -> Reader:
        schema = schema or self.schema()
        if acc.admin:
            def access(name: str) -> Any:
                return rule_all()
        else:
            access = await self.services.permissions.access(acc, "read")
        return Reader(schema, acc, access, _variables(acc), max_limit=self.max_limit,
                      default_limit=self.default_limit)

    # -- reads ----------------------------------------------------------------------------
    async def query(self, acc: Accountability, collection: str, query: Query | None = None) -> tuple[list[dict], dict]:
        """Rows of ``collection`` the caller may read, and the meta asked for
        (``total_count``, ``filter_count``). With ``aggregate``/``group_by`` the
        rows are the groups."""
        query = query or Query()
        reader = await self.reader(acc)
        c, rule = reader.collection(collection)
        if not (query.aggregate or query.group_by or query.meta or query.search or query.deep):
            rows = await self._list_by_shape(reader, c, rule, query)
            if rows is not None:
                return rows, {}
        where = reader.where(c, rule, query)  # compiled once for the rows and the counts
        async with self.services.db.read() as conn, _read_errors():
            if query.aggregate or query.group_by:
                rows = await self._aggregate(conn, reader, c, rule, query, where)
            else:
                rows = await self._rows(conn, reader, c, rule, query, where=where)
            meta = await self._meta(conn, reader, c, rule, query, where)
        return rows, meta

    async def _list_by_shape(self, reader: Reader, c: Collection, rule: Any, query: Query) -> list[dict] | None:
        """A page of rows without relations, counts or search, by a statement
        built once per query shape: the rule, the fields, the sort, the paging's
        form and the filter's structure (not its values, which are bound). The
        filter is parsed (and checked against the caller's rules) every time.
        ``None`` when the query is not of that kind (relations, a relational
        filter): the caller builds its statement."""
        module = permissions_module()
        parsed = reader.parse(c, query.filter)
        combined = rule.filter.and_(parsed) if rule.filter is not None else parsed
        if module is None:
            if combined is not None:
                return None
            shaped: Any = ((), {})
        else:
            shaped = module.filter_shape(combined, variables=reader.variables)
            if shaped is None:
                return None
        shape, params = shaped
        limit, offset = reader.paging(query)
        cache_key = ("list", reader.schema.version, id(reader.schema), c.name, id(rule), rule.fields, query.fields,
                     query.sort, bool(offset), shape)
        entry = self._statements.get(cache_key)
        if entry is None:
            node = reader.node(c, rule, query)
            if node.children:
                entry = (None, None, rule)
            else:
                where = sa.true() if combined is None else module.compile_filter_params(
                    combined, schema=reader.schema, collection=c.name, variables=reader.variables)
                stmt = (reader.select(node).where(where).order_by(*reader.order(c, rule, query.sort))
                        .limit(sa.bindparam(_LIMIT_PARAM, type_=sa.Integer())))
                if offset:
                    stmt = stmt.offset(sa.bindparam(_OFFSET_PARAM, type_=sa.Integer()))
                entry = (stmt, reader.flat_plan(node, json_datetimes=True), rule)  # the rule is held so its id stays unique
            self._remember(cache_key, entry)
        stmt, plan, _ = entry
        if stmt is None:
            return None
        params[_LIMIT_PARAM] = limit
        if offset:
            params[_OFFSET_PARAM] = offset
        with _sync_read_errors():
            rows = await self.services.db.fetch(stmt, params, json_datetimes=True)
        return reader.project_flat(plan, rows)

    def _remember(self, key: tuple, entry: tuple) -> None:
        if len(self._statements) >= 512:
            self._statements.clear()
        self._statements[key] = entry

    async def get(self, acc: Accountability, collection: str, key: Any, query: Query | None = None) -> dict:
        """One item by primary key; 404 when it does not exist or the caller may
        not read it."""
        query = query or Query()
        reader = await self.reader(acc)
        c, rule = reader.collection(collection)
        pk = key_of(c, key)
        if rule.filter is None and not query.deep:
            rows = await self._get_cached(reader, c, rule, query.fields, pk)
        else:
            async with self.services.db.read() as conn, _read_errors():
                rows = await self._rows(conn, reader, c, rule, Query(fields=query.fields, deep=query.deep, limit=1),
                                        extra=c.pk_column == pk)
        if not rows:
            raise NotFound(f"Item {str(key)[:80]!r} of {collection!r} not found")
        return rows[0]

    async def _get_cached(self, reader: Reader, c: Collection, rule: Any, fields: tuple[str, ...] | None,
                          pk: Any) -> list[dict]:
        """A get under a rule without a row filter: the selection and the
        statement depend only on the schema, the rule and ``fields``, so they are
        built once (the key is a bound parameter). Without relations, its row
        comes from :meth:`Database.fetch`, shaped from the tuple."""
        cache_key = ("get", reader.schema.version, id(reader.schema), c.name, id(rule), rule.fields, fields)
        entry = self._statements.get(cache_key)
        if entry is None:
            node = reader.node(c, rule, Query(fields=fields))
            stmt = reader.select(node).where(c.pk_column == sa.bindparam(_KEY_PARAM)).limit(1)
            entry = (node, stmt, None if node.children else reader.flat_plan(node, json_datetimes=True), rule)
            self._remember(cache_key, entry)  # the rule is held so its id stays unique
        node, stmt, plan, _ = entry
        if plan is None:
            async with self.services.db.read() as conn, _read_errors():
                return await _project(conn, reader, node, await conn.execute(stmt, {_KEY_PARAM: pk}))
        with _sync_read_errors():
            rows = await self.services.db.fetch(stmt, {_KEY_PARAM: pk}, json_datetimes=True)
        return reader.project_flat(plan, rows)

    async def _rows(self, conn: AsyncConnection, reader: Reader, c: Collection, rule: Any, query: Query,
                    extra: sa.ColumnElement[bool] | None = None,
                    where: sa.ColumnElement[bool] | None = None) -> list[dict]:
        node = reader.node(c, rule, query)
        if where is None:
            where = reader.where(c, rule, query)
        if extra is not None:
            where = sa.and_(where, extra)
        limit, offset = reader.paging(query)
        stmt = reader.select(node).where(where).order_by(*reader.order(c, rule, query.sort)).limit(limit)
        if offset:
            stmt = stmt.offset(offset)
        return await _project(conn, reader, node, await conn.execute(stmt))

    async def _meta(self, conn: AsyncConnection, reader: Reader, c: Collection, rule: Any, query: Query,
                    where: sa.ColumnElement[bool]) -> dict:
        meta: dict[str, Any] = {}
        if "total_count" in query.meta:
            stmt = sa.select(sa.func.count()).select_from(c.table).where(reader.where(c, rule, None))
            meta["total_count"] = int((await conn.execute(stmt)).scalar_one())
        if "filter_count" in query.meta:
            stmt = sa.select(sa.func.count()).select_from(c.table).where(where)
            meta["filter_count"] = int((await conn.execute(stmt)).scalar_one())
        return meta

    async def _aggregate(self, conn: AsyncConnection, reader: Reader, c: Collection, rule: Any,
                         query: Query, where: sa.ColumnElement[bool]) -> list[dict]:
        table = c.table
        groups = []
        for name in query.group_by:
            f = reader.field(c, name, rule, "groupBy field")
            if f.alias or f.type == "json":
                raise InvalidQuery(f"Cannot group by {name!r}")
            groups.append(f)
        exprs: list[Any] = []
        shape: list[tuple[str, str, Any]] = []  # (function, field, field object)
        for fn, names in query.aggregate.items():
            for name in names:
                if name == "*":
                    if fn != "count":
                        raise InvalidQuery(f"aggregate[{fn}] needs a field, not *")
                    exprs.append(sa.func.count())
                    shape.append((fn, "*", None))
                    continue
                f = reader.field(c, name, rule, "aggregated field")
                if f.alias:
                    raise InvalidQuery(f"Cannot aggregate the relational alias {name!r}")
                kind = TYPES.get(f.type)
                if fn in ("sum", "avg") and (kind is None or not kind.numeric):
                    raise InvalidQuery(f"aggregate[{fn}] needs a numeric field; {name!r} is {f.type}")
                if fn in ("min", "max") and (kind is None or not kind.ordered):
                    raise InvalidQuery(f"aggregate[{fn}] needs an ordered field; {name!r} is {f.type}")
                col = table.c[name]
                exprs.append({
                    "count": lambda col=col: sa.func.count(col),
                    "countDistinct": lambda col=col: sa.func.count(sa.distinct(col)),
                    "sum": lambda col=col: sa.func.sum(col),
                    "avg": lambda col=col: sa.func.avg(col),
                    "min": lambda col=col: sa.func.min(col),
                    "max": lambda col=col: sa.func.max(col),
                }[fn]())
                shape.append((fn, name, f))
        group_cols = [table.c[f.name] for f in groups]
        labels = [e.label(f"a{i}") for i, e in enumerate(exprs)]
        stmt = (sa.select(*(g.label(f"g{i}") for i, g in enumerate(group_cols)), *labels).select_from(table)
                .where(where))
        if group_cols:
            limit, offset = reader.paging(query)
            stmt = stmt.group_by(*group_cols).order_by(*(g.asc().nulls_last() for g in group_cols)).limit(limit)
            if offset:
                stmt = stmt.offset(offset)
        out = []
        count_fields = [name for fn, name, _ in shape if fn == "count"]
        for row in (await conn.execute(stmt)).mappings():
            item: dict[str, Any] = {}
            for i, f in enumerate(groups):
                value = row[f"g{i}"]
                item[f.name] = None if value is None else converter(f)(value)
            for i, (fn, name, f) in enumerate(shape):
                value = _aggregate_value(fn, f, row[f"a{i}"])
                if fn == "count" and name == "*" and count_fields == ["*"]:
                    item["count"] = value
                else:
                    item.setdefault(fn, {})[name] = value
            out.append(item)
        return out

    async def export(self, acc: Accountability, collection: str, query: Query | None = None,
                     *, batch: int | None = None) -> tuple[list[str], AsyncIterator[list[dict]]]:
        """The output field names and every row the query selects (its limit, or
        all rows if none), in batches read by keyset pagination over the primary
        key (or by offset under the caller's own sort), so memory stays flat
        whatever the size. Permissions are checked here, before the first batch."""
        query = query or Query()
        reader = await self.reader(acc)
        c, rule = reader.collection(collection)
        size = batch or self.export_batch
        node = reader.node(c, rule, query)
        where = reader.where(c, rule, query)
        order = reader.order(c, rule, query.sort)
        remaining = None if query.limit in (None, -1) else query.limit
        offset = query.offset or 0
        if query.page is not None and query.limit not in (None, -1):
            offset = (query.page - 1) * query.limit  # type: ignore[operator]
        offset = min(offset, MAX_OFFSET)
        return list(node.out), self._export(reader, node, c, where, order, remaining, offset, size, bool(query.sort))

    async def _export(self, reader: Reader, node: Any, c: Collection, where: Any, order: list[Any],
                      remaining: int | None, offset: int, size: int, sorted_: bool) -> AsyncIterator[list[dict]]:
        last_key: Any = None
        while remaining is None or remaining > 0:
            take = size if remaining is None else min(size, remaining)
            stmt = reader.select(node).where(where)
            if sorted_:
                # A caller's own order: page by offset (stable thanks to the pk tie-break).
                stmt = stmt.order_by(*order).limit(take).offset(offset)
            else:
                if last_key is not None:
                    stmt = stmt.where(c.pk_column > last_key)
                stmt = stmt.order_by(c.pk_column.asc()).limit(take)
                if offset and last_key is None:
                    stmt = stmt.offset(offset)
            async with self.services.db.read() as conn, _read_errors():
                rows = [dict(r) for r in (await conn.execute(stmt)).mappings()]
                if node.children and rows:
                    await reader.load(conn, node, rows)
            if not rows:
                return
            if sorted_:
                offset += len(rows)
            else:
                last_key = rows[-1][c.primary_key]
            if remaining is not None:
                remaining -= len(rows)
            yield [reader.project(node, r) for r in rows]
            if len(rows) < take:
                return

    # -- writes -----------------------------------------------------------------------
    @asynccontextmanager
    async def writing(self, collection: Collection, schema: Schema | None = None) -> AsyncIterator[Writes]:
        """One write transaction on ``collection``: every write made through the
        :class:`~workeros.items.writes.Writes` it yields commits together (or
        not at all). Driver errors become contract errors."""
        async with WriteTransaction(self, collection) as conn:
            yield Writes(self, conn, schema or self.schema())

    def writes_on(self, conn: AsyncConnection, schema: Schema | None = None) -> Writes:
        """:class:`~workeros.items.writes.Writes` on a transaction another service
        opened (deleting a user records what ``on_delete`` did to items)."""
        return Writes(self, conn, schema or self.schema())

    def collection(self, name: str, schema: Schema | None = None) -> Collection:
        """A collection for a write the caller's rule was already checked for."""
        return (schema or self.schema()).collections[name]

    async def create(self, acc: Accountability, collection: str, data: dict | list[dict],
                     query: Query | None = None, *, label: str = "item",
                     meta: Mapping[str, Any] | None = None) -> dict | list[dict]:
        """One item (``data`` an object) or many (a list), in one transaction.
        Returns the created item(s) as the caller may read them."""
        many = isinstance(data, list)
        items = data if isinstance(data, list) else [data]
        if not items and many:
            return []
        check_batch(items, self.max_batch)
        rule = await self.rule(acc, collection, "create")
        schema = self.schema()
        c = schema.collections[collection]
        payloads = None
        if not self.lifecycle.before("create"):
            # Checked before the transaction: a bad payload never takes the write lock.
            payloads = [payload(acc, schema, c, rule, item, "create", i if many else None, label)
                        for i, item in enumerate(items)]
        async with self.writing(c, schema) as w:
            keys, after = await w.create(acc, c, items, many=many, label=label, meta=meta, payloads=payloads)
            result = await self._result(w.conn, acc, schema, c, keys, after, query)
        return result if many else result[0]

    async def update(self, acc: Accountability, collection: str, key: Any, data: dict,
                     query: Query | None = None) -> dict:
        """Update one item; 404 when it does not exist or the caller may not
        update it."""
        rows = await self.update_many(acc, collection, [key], data, query)
        return rows[0]

    async def update_many(self, acc: Accountability, collection: str, keys: list, data: dict,
                          query: Query | None = None, *, meta: Mapping[str, Any] | None = None) -> list[dict]:
        """Set the same fields on every item of ``keys`` (one transaction; 404 if
        any is missing or not updatable by the caller)."""
        if not isinstance(keys, list):
            raise InvalidPayload("keys must be a list")
        check_batch(keys, self.max_batch)
        rule = await self.rule(acc, collection, "update")
        schema = self.schema()
        c = schema.collections[collection]
        values = None if self.lifecycle.before("update") else payload(acc, schema, c, rule, data, "update", None)
        async with self.writing(c, schema) as w:
            out, _, after = await w.update(acc, c, data, keys=keys, meta=meta, values=values)
            return await self._result(w.conn, acc, schema, c, out, after, query) if out else []

    async def update_by_filter(self, acc: Accountability, collection: str, filter: Any, data: dict,
                               query: Query | None = None) -> list[dict]:
        """Set the same fields on every item matching ``filter`` that the caller
        may update (one transaction)."""
        rule = await self.rule(acc, collection, "update")
        schema = self.schema()
        c = schema.collections[collection]
        reader = await self.reader(acc, schema)
        user_filter = reader.parse(c, filter) if filter else None
        values = None if self.lifecycle.before("update") else payload(acc, schema, c, rule, data, "update", None)
        async with self.writing(c, schema) as w:
            out, _, after = await w.update(acc, c, data, condition=reader.compile(c, [user_filter]), values=values)
            return await self._result(w.conn, acc, schema, c, out, after, query) if out else []

    async def update_batch(self, acc: Accountability, collection: str, items: list,
                           query: Query | None = None) -> list[dict]:
        """Update several items, each with its own fields: ``items`` are objects
        carrying their primary key (one transaction; 404 if any is missing or
        not updatable by the caller)."""
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise InvalidPayload("Expected an array of items")
        check_batch(items, self.max_batch)
        await self.rule(acc, collection, "update")
        schema = self.schema()
        c = schema.collections[collection]
        pk = c.primary_key
        for i, item in enumerate(items):
            if item.get(pk) is None:
                raise InvalidPayload(f"Item {i} has no {pk!r}: each item of the array carries its key", field=pk)
        keys: list[Any] = []
        rows: list[dict] = []
        async with self.writing(c, schema) as w:
            for item in items:
                data = {k: v for k, v in item.items() if k != pk}
                out, _, after = await w.update(acc, c, data, keys=[item[pk]])
                keys += out
                rows += after
            return await self._result(w.conn, acc, schema, c, keys, rows, query) if keys else []

    async def delete(self, acc: Accountability, collection: str, key: Any) -> None:
        """Delete one item; 404 when it does not exist or the caller may not delete it."""
        await self.delete_many(acc, collection, [key])

    async def delete_many(self, acc: Accountability, collection: str, keys: list, *,
                          meta: Mapping[str, Any] | None = None) -> None:
        """Delete every item of ``keys`` (one transaction; 404 if any is missing
        or not deletable by the caller)."""
        if not isinstance(keys, list):
            raise InvalidPayload("Expected a list of keys")
        check_batch(keys, self.max_batch)
        await self.rule(acc, collection, "delete")
        schema = self.schema()
        c = schema.collections[collection]
        if not keys:
            return
        async with self.writing(c, schema) as w:
            await w.delete(acc, c, keys, meta=meta)

    async def delete_by_filter(self, acc: Accountability, collection: str, filter: Any, *,
                               meta: Mapping[str, Any] | None = None) -> list[Any]:
        """Delete every item matching ``filter`` that the caller may delete (one
        transaction); returns the deleted keys."""
        rule = await self.rule(acc, collection, "delete")
        schema = self.schema()
        c = schema.collections[collection]
        reader = await self.reader(acc, schema)
        user_filter = reader.parse(c, filter)
        async with self.writing(c, schema) as w:
            stmt = sa.select(c.pk_column).where(reader.compile(c, [rule.filter, user_filter]))
            keys = [r[0] for r in await w.conn.execute(stmt)]
            if keys:
                check_batch(keys, self.max_batch)
                await w.delete(acc, c, keys, meta=meta)
            return keys

    async def import_items(self, acc: Accountability, collection: str, items: list[dict]) -> int:
        """Create every item of ``items`` in one transaction (all or nothing);
        errors name the row (1-based). Returns how many were created."""
        if not items:
            return 0
        await self.create(acc, collection, items, Query(fields=()), label="row")
        return len(items)

    async def _result(self, conn: AsyncConnection, acc: Accountability, schema: Schema, c: Collection,
                      keys: list, rows: list[dict], query: Query | None) -> list[dict]:
        """The written items as the caller may read them (their keys only when
        the caller may not read them). The fast path: an admin asking for
        nothing particular gets the written rows as they are."""
        if query is not None and query.fields == ():
            return [{c.primary_key: k} for k in keys]
        if acc.admin and (query is None or query.fields is None) and not any(f.alias for f in c.fields.values()):
            # Fields of types left out of `*` (vectors) are not echoed either.
            hidden = {f.name for f in c.fields.values() if f.type in TYPES and not TYPES[f.type].in_star}
            return [{k: v for k, v in r.items() if k not in hidden} for r in rows] if hidden else rows
        try:
            reader = await self.reader(acc, schema)
            _, rule = reader.collection(c.name)
        except Forbidden:
            return [{c.primary_key: k} for k in keys]
        q = query or Query()
        node = reader.node(c, rule, Query(fields=q.fields, deep=q.deep))
        if rule.filter is None and not node.children and not node.keys_only:
            # Every written row is readable and nothing relational is asked for:
            # shape what INSERT/UPDATE ... RETURNING gave back, no re-select.
            return [{name: row[name] for name in node.out} for row in rows]
        out: dict[Any, dict] = {}
        for chunk in chunks([key_of(c, k) for k in keys]):
            found = await self._rows(conn, reader, c, rule,
                                     Query(fields=_with_pk(q.fields, c), deep=q.deep, limit=len(chunk)),
                                     extra=c.pk_column.in_(chunk))
            for row in found:
                out[row.get(c.primary_key)] = row
        return [_strip_pk(out[k], q.fields, c) if k in out else {c.primary_key: k} for k in keys]


# -- helpers -------------------------------------------------------------------------

async def _project(conn: AsyncConnection, reader: Reader, node: Any, result: Any) -> list[dict]:
    """The rows of ``result`` as ``node``'s output, relations loaded in batches."""
    if not node.children:
        return reader.project_flat(reader.flat_plan(node), result)
    rows = [dict(r) for r in result.mappings()]
    if rows:
        await reader.load(conn, node, rows)
    return [reader.project(node, r) for r in rows]


@asynccontextmanager
async def _read_errors() -> AsyncIterator[None]:
    """A value the database cannot compare (a NUL byte in a PostgreSQL string,
    a number out of its range) is the caller's error, not the server's."""
    with _sync_read_errors():
        yield


@contextmanager
def _sync_read_errors() -> Iterator[None]:
    try:
        yield
    except sa_exc.DBAPIError as exc:
        if is_data_error(exc):
            raise InvalidQuery("A value in the query does not fit the field it is compared with") from None
        raise
    except OverflowError:
        # sqlite3 refuses an integer beyond 64 bits before SQLite sees it.
        raise InvalidQuery("A value in the query does not fit the field it is compared with") from None


def _variables(acc: Accountability) -> Any:
    module = permissions_module()
    return None if module is None else module.Variables.for_accountability(acc)


def _with_pk(fields: tuple[str, ...] | None, c: Collection) -> tuple[str, ...] | None:
    if fields is None or c.primary_key in fields or "*" in fields:
        return fields
    return (*fields, c.primary_key)


def _strip_pk(row: dict, fields: tuple[str, ...] | None, c: Collection) -> dict:
    if fields is None or c.primary_key in fields or "*" in fields:
        return row
    return {k: v for k, v in row.items() if k != c.primary_key}


def _aggregate_value(fn: str, f: Any, value: Any) -> Any:
    if value is None:
        return None
    if fn in ("count", "countDistinct"):
        return int(value)
    if f is None:
        return jsonable_value(value)
    if fn == "avg":
        return str(value) if f.type == "decimal" else float(value)
    if fn == "sum":
        if f.type == "decimal":
            return str(value)
        return int(value) if f.type in ("integer", "bigint") else float(value)
    return converter(f)(value)
