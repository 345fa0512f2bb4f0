"""The items service: every read and write of user data, from every way in,
under the caller's permissions (DESIGN §3).

Reads (:meth:`ItemsService.query`, :meth:`ItemsService.get`) go through
:class:`workeros.items.reads.Reader`. Writes run in one transaction per call:
payloads are checked (known, writable fields; values coerced per field type;
the rule's presets merged under the payload; its validation checked), the rows
changed, and for every item an activity row and a revision row written on the
same connection. After the commit one :class:`~workeros.bus.events.ItemEvent` per
call is published on the ``items`` channel with the full rows before and after.
Database constraint violations become 400/409 errors that name the field,
never SQL.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection

from workeros.accountability import Accountability
from workeros.audit import activity, revisions
from workeros.bus.events import ITEMS, ItemEvent
from workeros.config import setting_or
from workeros.errors import Conflict, Forbidden, InvalidPayload, InvalidQuery, NotFound
from workeros.hookspecs.lifecycle import ConfigKey
from workeros.items.query import Query
from workeros.items.reads import Reader, converter, full_row, jsonable_value, permissions_module, rule_all
from workeros.schema.field_types import TYPES, CoercionError, coerce
from workeros.schema.model import Collection, Schema

if TYPE_CHECKING:
    from workeros.services import Services

log = logging.getLogger("workeros.items")

ACTIONS = ("create", "read", "update", "delete")
_KEY_PARAM = "wos_key"
#: Items per write call (one transaction): larger batches are refused.
MAX_BATCH = 10_000


class ItemsService:
    config_keys = (
        ConfigKey("items.max_limit", "int", 1000, "Largest page a query may ask for (limit=-1 means this)"),
        ConfigKey("items.default_limit", "int", 100, "Page size when a query gives no limit"),
        ConfigKey("items.export_batch", "int", 1000, "Rows read per batch when exporting a collection"),
    )

    def __init__(self, services: Services) -> None:
        self.services = services
        settings = services.settings
        self.max_limit = int(setting_or(settings, "items.max_limit", 1000))
        self.default_limit = min(int(setting_or(settings, "items.default_limit", 100)), self.max_limit)
        self.export_batch = int(setting_or(settings, "items.export_batch", 1000))
        self._get_statements: dict[tuple, tuple[Any, sa.Select, Any]] = {}

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
            permissions = self.services.permissions
            if permissions is None:
                raise Forbidden()
            access = await permissions.access(acc, "read")
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
        async with self.services.db.read() as conn, _read_errors():
            if query.aggregate or query.group_by:
                rows = await self._aggregate(conn, reader, c, rule, query)
            else:
                rows = await self._rows(conn, reader, c, rule, query)
            meta = await self._meta(conn, reader, c, rule, query)
        return rows, meta

    async def get(self, acc: Accountability, collection: str, key: Any, query: Query | None = None) -> dict:
        """One item by primary key; 404 when it does not exist or the caller may
        not read it."""
        query = query or Query()
        reader = await self.reader(acc)
        c, rule = reader.collection(collection)
        pk = _key(c, key)
        async with self.services.db.read() as conn, _read_errors():
            if rule.filter is None and not query.deep:
                rows = await self._get_cached(conn, reader, c, rule, query.fields, pk)
            else:
                rows = await self._rows(conn, reader, c, rule, Query(fields=query.fields, deep=query.deep, limit=1),
                                        extra=c.pk_column == pk)
        if not rows:
            raise NotFound(f"Item {str(key)[:80]!r} of {collection!r} not found")
        return rows[0]

    async def _get_cached(self, conn: AsyncConnection, reader: Reader, c: Collection, rule: Any,
                          fields: tuple[str, ...] | None, pk: Any) -> list[dict]:
        """A get under a rule without a row filter: the selection and the
        statement depend only on the schema, the rule and ``fields``, so they are
        built once (the key is a bound parameter)."""
        cache_key = (reader.schema.version, id(reader.schema), c.name, id(rule), rule.fields, fields)
        entry = self._get_statements.get(cache_key)
        if entry is None:
            node = reader.node(c, rule, Query(fields=fields))
            stmt = reader.select(node).where(c.pk_column == sa.bindparam(_KEY_PARAM)).limit(1)
            if len(self._get_statements) >= 512:
                self._get_statements.clear()
            entry = self._get_statements[cache_key] = (node, stmt, rule)  # the rule is held so its id stays unique
        node, stmt, _ = entry
        result = await conn.execute(stmt, {_KEY_PARAM: pk})
        if not node.children:
            return reader.project_flat(reader.flat_plan(node), result)
        rows = [dict(r) for r in result.mappings()]
        if rows:
            await reader.load(conn, node, rows)
        return [reader.project(node, r) for r in rows]

    async def _rows(self, conn: AsyncConnection, reader: Reader, c: Collection, rule: Any, query: Query,
                    extra: sa.ColumnElement[bool] | None = None) -> list[dict]:
        node = reader.node(c, rule, query)
        where = reader.where(c, rule, query)
        if extra is not None:
            where = sa.and_(where, extra)
        limit, offset = reader.paging(query)
        stmt = reader.select(node).where(where).order_by(*reader.order(c, rule, query.sort)).limit(limit)
        if offset:
            stmt = stmt.offset(offset)
        result = await conn.execute(stmt)
        if not node.children:
            return reader.project_flat(reader.flat_plan(node), result)
        rows = [dict(r) for r in result.mappings()]
        if rows:
            await reader.load(conn, node, rows)
        return [reader.project(node, r) for r in rows]

    async def _meta(self, conn: AsyncConnection, reader: Reader, c: Collection, rule: Any, query: Query) -> dict:
        meta: dict[str, Any] = {}
        if "total_count" in query.meta:
            stmt = sa.select(sa.func.count()).select_from(c.table).where(reader.where(c, rule, None))
            meta["total_count"] = int((await conn.execute(stmt)).scalar_one())
        if "filter_count" in query.meta:
            stmt = sa.select(sa.func.count()).select_from(c.table).where(reader.where(c, rule, query))
            meta["filter_count"] = int((await conn.execute(stmt)).scalar_one())
        return meta

    async def aggregate(self, acc: Accountability, collection: str, query: Query) -> list[dict]:
        """``query.aggregate`` grouped by ``query.group_by`` (same as :meth:`query`)."""
        rows, _ = await self.query(acc, collection, query)
        return rows

    async def _aggregate(self, conn: AsyncConnection, reader: Reader, c: Collection, rule: Any,
                         query: Query) -> list[dict]:
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
                .where(reader.where(c, rule, query)))
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
    async def create(self, acc: Accountability, collection: str, data: dict | list[dict],
                     query: Query | None = None, *, label: str = "item") -> dict | list[dict]:
        """One item (``data`` an object) or many (a list), in one transaction.
        Returns the created item(s) as the caller may read them."""
        many = isinstance(data, list)
        items = data if isinstance(data, list) else [data]
        if not items and many:
            return []
        self._check_batch(items)
        rule = await self.rule(acc, collection, "create")
        schema = self.schema()
        c = schema.collections[collection]
        payloads = [self._payload(acc, schema, c, rule, item, "create", i if many else None, label)
                    for i, item in enumerate(items)]
        after: list[dict] = []
        async with self._write(c) as conn:
            ts = activity.now()
            for i, values in enumerate(payloads):
                try:
                    row = (await conn.execute(c.table.insert().returning(*c.table.c), values)).mappings().one()
                except sa_exc.DBAPIError as exc:
                    raise _constraint_error(exc, c, i if many else None, label, values) from None
                full = full_row(schema, c, row)
                after.append(full)
                await self._audit(conn, acc, c, "create", full[c.primary_key], full, _delta(schema, c, values), ts)
            keys = [r[c.primary_key] for r in after]
            self._publish(conn, acc, ItemEvent(collection, "create", keys, None, after, acc.user, acc.origin))
            result = await self._result(conn, acc, schema, c, keys, after, query)
        return result if many else result[0]

    async def update(self, acc: Accountability, collection: str, key: Any, data: dict,
                     query: Query | None = None) -> dict:
        """Update one item; 404 when it does not exist or the caller may not
        update it."""
        rows = await self.update_many(acc, collection, [key], data, query)
        return rows[0]

    async def update_many(self, acc: Accountability, collection: str, keys: list, data: dict,
                          query: Query | None = None) -> list[dict]:
        """Set the same fields on every item of ``keys`` (one transaction; 404 if
        any is missing or not updatable by the caller)."""
        if not isinstance(keys, list):
            raise InvalidPayload("keys must be a list")
        self._check_batch(keys)
        rule = await self.rule(acc, collection, "update")
        schema = self.schema()
        c = schema.collections[collection]
        pks = [_key(c, k) for k in keys]
        values = self._payload(acc, schema, c, rule, data, "update", None)
        async with self._write(c) as conn:
            return await self._update(conn, acc, schema, c, rule, values, query, pks=pks)

    async def update_by_filter(self, acc: Accountability, collection: str, filter: Any, data: dict,
                               query: Query | None = None) -> list[dict]:
        """Set the same fields on every item matching ``filter`` that the caller
        may update (one transaction)."""
        rule = await self.rule(acc, collection, "update")
        schema = self.schema()
        c = schema.collections[collection]
        reader = await self.reader(acc, schema)
        user_filter = reader.parse(c, filter) if filter else None
        values = self._payload(acc, schema, c, rule, data, "update", None)
        async with self._write(c) as conn:
            return await self._update(conn, acc, schema, c, rule, values, query,
                                      condition=reader.compile(c, [user_filter]))

    async def _update(self, conn: AsyncConnection, acc: Accountability, schema: Schema, c: Collection, rule: Any,
                      values: dict, query: Query | None, *, pks: list | None = None,
                      condition: Any = None) -> list[dict]:
        reader = await self.reader(acc, schema)
        where = reader.compile(c, [rule.filter])
        if pks is not None:
            where = sa.and_(where, c.pk_column.in_(pks))
        if condition is not None:
            where = sa.and_(where, condition)
        stmt = sa.select(c.table).where(where).order_by(c.pk_column)
        if self.services.db.dialect == "postgresql":
            stmt = stmt.with_for_update()
        before_rows = [full_row(schema, c, r) for r in (await conn.execute(stmt)).mappings()]
        if pks is not None:
            found = {r[c.primary_key] for r in before_rows}
            missing = [k for k in pks if _json_key(c, k) not in found]
            if missing:
                raise NotFound(f"Item {str(missing[0])[:80]!r} of {c.name!r} not found")
        if not before_rows:
            return []
        keys = [r[c.primary_key] for r in before_rows]
        db_keys = [_key(c, k) for k in keys]
        if rule.validation is not None:
            for before in before_rows:
                self._validate(acc, schema, c, rule, {**before, **_delta(schema, c, values)})
        if values:
            try:
                for chunk in _chunks(db_keys):
                    await conn.execute(c.table.update().where(c.pk_column.in_(chunk)).values(values))
            except sa_exc.DBAPIError as exc:
                raise _constraint_error(exc, c, None, "item", values) from None
        after_rows = [full_row(schema, c, r) for r in (await conn.execute(
            sa.select(c.table).where(c.pk_column.in_(db_keys)).order_by(c.pk_column))).mappings()]
        ts = activity.now()
        delta = _delta(schema, c, values)
        for row in after_rows:
            await self._audit(conn, acc, c, "update", row[c.primary_key], row, delta, ts)
        self._publish(conn, acc, ItemEvent(c.name, "update", keys, before_rows, after_rows, acc.user, acc.origin))
        return await self._result(conn, acc, schema, c, keys, after_rows, query)

    async def delete(self, acc: Accountability, collection: str, key: Any) -> None:
        """Delete one item; 404 when it does not exist or the caller may not delete it."""
        await self.delete_many(acc, collection, [key])

    async def delete_many(self, acc: Accountability, collection: str, keys: list) -> None:
        """Delete every item of ``keys`` (one transaction; 404 if any is missing
        or not deletable by the caller)."""
        if not isinstance(keys, list):
            raise InvalidPayload("Expected a list of keys")
        self._check_batch(keys)
        rule = await self.rule(acc, collection, "delete")
        schema = self.schema()
        c = schema.collections[collection]
        pks = [_key(c, k) for k in keys]
        if not pks:
            return
        reader = await self.reader(acc, schema)
        async with self._write(c) as conn:
            stmt = sa.select(c.table).where(reader.compile(c, [rule.filter]), c.pk_column.in_(pks)).order_by(c.pk_column)
            if self.services.db.dialect == "postgresql":
                stmt = stmt.with_for_update()
            before_rows = [full_row(schema, c, r) for r in (await conn.execute(stmt)).mappings()]
            found = {r[c.primary_key] for r in before_rows}
            missing = [k for k in pks if _json_key(c, k) not in found]
            if missing:
                raise NotFound(f"Item {str(missing[0])[:80]!r} of {c.name!r} not found")
            try:
                for chunk in _chunks(pks):
                    await conn.execute(c.table.delete().where(c.pk_column.in_(chunk)))
            except sa_exc.DBAPIError as exc:
                raise _constraint_error(exc, c, None) from None
            ts = activity.now()
            for row in before_rows:
                await self._audit(conn, acc, c, "delete", row[c.primary_key], None, None, ts)
            keys_out = [r[c.primary_key] for r in before_rows]
            self._publish(conn, acc, ItemEvent(c.name, "delete", keys_out, before_rows, None, acc.user, acc.origin))

    async def import_items(self, acc: Accountability, collection: str, items: list[dict]) -> int:
        """Create every item of ``items`` in one transaction (all or nothing);
        errors name the row (1-based). Returns how many were created."""
        if not items:
            return 0
        await self.create(acc, collection, items, Query(fields=()), label="row")
        return len(items)

    # -- write helpers ----------------------------------------------------------------
    def _write(self, c: Collection) -> Any:
        return _WriteTransaction(self, c)

    def _check_batch(self, items: list) -> None:
        if len(items) > MAX_BATCH:
            raise InvalidPayload(f"At most {MAX_BATCH} items per request")

    def _payload(self, acc: Accountability, schema: Schema, c: Collection, rule: Any, item: Any, action: str,
                 index: int | None, label: str = "item") -> dict:
        """Check and coerce one payload; presets fill what it leaves out."""
        where = "" if index is None else f" ({label} {index + 1})"
        if not isinstance(item, Mapping):
            raise InvalidPayload(f"Expected an object{where}")
        values: dict[str, Any] = {}
        for name, raw in item.items():
            if not isinstance(name, str):
                raise InvalidPayload(f"Field names must be strings{where}")
            if rule.fields is not None and name not in rule.fields:
                raise Forbidden(f"You don't have permission to write field {name[:80]!r}{where}")
            f = c.fields.get(name)
            if f is None:
                raise InvalidPayload(f"Field {name[:80]!r} does not exist in {c.name!r}{where}", field=name[:80])
            if f.alias:
                raise InvalidPayload(f"Field {name!r} is a relational alias and cannot be written{where}", field=name)
            if f.primary_key and action == "update":
                raise InvalidPayload(f"The primary key {name!r} cannot be changed{where}", field=name)
            values[name] = _coerce(f, raw, where)
        for name, raw in (rule.presets or {}).items():
            f = c.fields.get(name)
            if name in values or f is None or f.alias:
                continue
            values[name] = _coerce(f, _preset(acc, raw), where)
        if action == "create":
            for f in c.scalar_fields():
                if f.name in values:
                    continue
                if f.primary_key:
                    if f.type == "uuid":
                        values[f.name] = str(uuid.uuid4())
                    continue
                if f.default is not None:
                    values[f.name] = coerce(f.type, f.default, f.options)
                elif not f.nullable:
                    raise InvalidPayload(f"Field {f.name!r} is required{where}", field=f.name)
            if rule.validation is not None:
                self._validate(acc, schema, c, rule, _delta(schema, c, values), where)
        return values

    def _validate(self, acc: Accountability, schema: Schema, c: Collection, rule: Any, row: dict,
                  where: str = "") -> None:
        module = permissions_module()
        if not module.match_filter(rule.validation, row, schema=schema, collection=c.name,
                                   variables=module.Variables.for_accountability(acc)):
            raise InvalidPayload(f"The item does not satisfy the validation rule of {c.name!r}{where}")

    async def _audit(self, conn: AsyncConnection, acc: Accountability, c: Collection, action: str, key: Any,
                     data: dict | None, delta: dict | None, ts: Any) -> None:
        activity_id = await activity.record(conn, action=f"item.{action}", accountability=acc, collection=c.name,
                                            item=key, timestamp=ts)
        await revisions.record(conn, activity_id=activity_id, collection=c.name, item=key, data=data, delta=delta,
                               timestamp=ts)

    def _publish(self, conn: AsyncConnection, acc: Accountability, event: ItemEvent) -> None:
        events = self.services.events

        async def publish() -> None:
            try:
                await events.publish(ITEMS, event.to_message())
            except Exception:  # the write is committed; a bus failure must not turn it into an error
                log.exception("publishing %s on %s failed", event.action, event.collection)

        self.services.db.after_commit(conn, publish)

    async def _result(self, conn: AsyncConnection, acc: Accountability, schema: Schema, c: Collection,
                      keys: list, rows: list[dict], query: Query | None) -> list[dict]:
        """The written items as the caller may read them (their keys only when
        the caller may not read them). The fast path: an admin asking for
        nothing particular gets the written rows as they are."""
        if query is not None and query.fields == ():
            return [{c.primary_key: k} for k in keys]
        if acc.admin and (query is None or query.fields is None) and not any(f.alias for f in c.fields.values()):
            return rows
        try:
            reader = await self.reader(acc, schema)
            _, rule = reader.collection(c.name)
        except Forbidden:
            return [{c.primary_key: k} for k in keys]
        q = query or Query()
        out: dict[Any, dict] = {}
        for chunk in _chunks([_key(c, k) for k in keys]):
            found = await self._rows(conn, reader, c, rule,
                                     Query(fields=_with_pk(q.fields, c), deep=q.deep, limit=len(chunk)),
                                     extra=c.pk_column.in_(chunk))
            for row in found:
                out[row.get(c.primary_key)] = row
        return [_strip_pk(out[k], q.fields, c) if k in out else {c.primary_key: k} for k in keys]


class _WriteTransaction:
    """``Database.transaction()`` with driver errors that escape the service's
    own checks turned into contract errors."""

    def __init__(self, service: ItemsService, c: Collection) -> None:
        self.cm = service.services.db.transaction()
        self.c = c

    async def __aenter__(self) -> AsyncConnection:
        return await self.cm.__aenter__()

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> bool | None:
        try:
            suppressed = await self.cm.__aexit__(exc_type, exc, tb)
        except sa_exc.DBAPIError as error:  # at commit
            raise _constraint_error(error, self.c, None) from None
        if isinstance(exc, sa_exc.DBAPIError):  # in the body, after the rollback
            raise _constraint_error(exc, self.c, None) from None
        return suppressed


# -- helpers -------------------------------------------------------------------------

@asynccontextmanager
async def _read_errors() -> AsyncIterator[None]:
    """A value the database cannot compare (a NUL byte in a PostgreSQL string,
    a number out of its range) is the caller's error, not the server's."""
    try:
        yield
    except sa_exc.DBAPIError as exc:
        if _is_data_error(exc):
            raise InvalidQuery("A value in the query does not fit the field it is compared with") from None
        raise


def _is_data_error(exc: sa_exc.DBAPIError) -> bool:
    """A data exception (SQLSTATE class 22): a value the column cannot hold."""
    if isinstance(exc, sa_exc.DataError):
        return True
    orig = getattr(exc, "orig", None)
    for source in (orig, getattr(orig, "__cause__", None)):
        state = getattr(source, "sqlstate", None)
        if isinstance(state, str) and state.startswith("22"):
            return True
    return False



def _variables(acc: Accountability) -> Any:
    module = permissions_module()
    return None if module is None else module.Variables.for_accountability(acc)


def _coerce(f: Any, raw: Any, where: str) -> Any:
    try:
        value = coerce(f.type, raw, f.options)
    except CoercionError as exc:
        raise InvalidPayload(f"Invalid value for field {f.name!r}{where}: {exc}", field=f.name) from None
    except (TypeError, ValueError, ArithmeticError):  # e.g. a decimal too large to quantize
        raise InvalidPayload(f"Invalid value for field {f.name!r}{where}", field=f.name) from None
    if value is None and not f.nullable:
        raise InvalidPayload(f"Field {f.name!r} cannot be null{where}", field=f.name)
    return value


def _preset(acc: Accountability, raw: Any) -> Any:
    """Presets may name the caller: ``$CURRENT_USER``, ``$CURRENT_ROLE``, ``$NOW``."""
    if raw in ("$CURRENT_USER", "$user.id"):
        return acc.user
    if raw in ("$CURRENT_ROLE", "$user.role"):
        return acc.role
    if raw == "$NOW":
        return activity.now()
    if isinstance(raw, str) and raw.startswith("$user."):
        return acc.user_fields.get(raw[len("$user."):])
    return raw


def _delta(schema: Schema, c: Collection, values: Mapping[str, Any]) -> dict:
    return {k: (None if v is None else converter(c.fields[k])(v)) for k, v in values.items()}


def _key(c: Collection, key: Any) -> Any:
    """A primary key from a URL or payload, coerced to the key's type; a key
    that cannot exist is 404."""
    f = c.pk_field
    try:
        value = coerce(f.type, key, f.options)
    except (CoercionError, TypeError, ValueError, ArithmeticError):
        raise NotFound(f"Item {str(key)[:80]!r} of {c.name!r} not found") from None
    if value is None:
        raise NotFound(f"Item of {c.name!r} not found")
    return value


def _json_key(c: Collection, key: Any) -> Any:
    return converter(c.pk_field)(key)


def _with_pk(fields: tuple[str, ...] | None, c: Collection) -> tuple[str, ...] | None:
    if fields is None or c.primary_key in fields or "*" in fields:
        return fields
    return (*fields, c.primary_key)


def _strip_pk(row: dict, fields: tuple[str, ...] | None, c: Collection) -> dict:
    if fields is None or c.primary_key in fields or "*" in fields:
        return row
    return {k: v for k, v in row.items() if k != c.primary_key}


def _chunks(keys: list) -> list[list]:
    return [keys[i:i + 2000] for i in range(0, len(keys), 2000)]


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


_UNIQUE = re.compile(r"unique|duplicate key", re.I)
_NOT_NULL = re.compile(r"not[ -]null|null value", re.I)
_FOREIGN = re.compile(r"foreign key", re.I)


def _constraint_error(exc: sa_exc.DBAPIError, c: Collection, index: int | None, label: str = "item",
                      values: Mapping[str, Any] | None = None) -> Exception:
    """A driver error as a contract error naming the field when it can be told,
    never the SQL or the driver's message."""
    where = "" if index is None else f" ({label} {index + 1})"
    message = str(getattr(exc, "orig", exc))
    column = _column_of(exc, c, message)
    if column is None and values and _FOREIGN.search(message):
        # SQLite does not say which key failed: name the relational fields written.
        written = [k for k in values if k in c.relations and values[k] is not None]
        column = ", ".join(written) or None
    named = f" {column!r}" if column else ""
    if isinstance(exc, sa_exc.IntegrityError):
        if _UNIQUE.search(message):
            return Conflict(f"Field{named} must be unique: the value is already used{where}", field=column)
        if _NOT_NULL.search(message):
            return InvalidPayload(f"Field{named} cannot be null{where}", field=column)
        if _FOREIGN.search(message):
            return Conflict(f"The change conflicts with a relation{(' on' + named) if named else ''}: a referenced "
                            f"item does not exist, or other items still reference this one{where}", field=column)
        return Conflict(f"The change violates a constraint of {c.name!r}{where}")
    if _is_data_error(exc):
        return InvalidPayload(f"A value does not fit its field{(' ' + named) if named else ''}{where}", field=column)
    if isinstance(exc, sa_exc.OperationalError) and "locked" in message.lower():
        from workeros.errors import ServiceUnavailable

        return ServiceUnavailable("The database is busy; try again")
    return exc


def _column_of(exc: sa_exc.DBAPIError, c: Collection, message: str) -> str | None:
    orig = getattr(exc, "orig", None)
    for source in (orig, getattr(orig, "__cause__", None)):
        name = getattr(source, "column_name", None)
        if isinstance(name, str) and name in c.fields:
            return name
        constraint = getattr(source, "constraint_name", None)
        if isinstance(constraint, str):
            for f in c.fields:
                if constraint.endswith(f"_{f}_key") or constraint.endswith(f"_{f}") or f"_{f}_" in constraint:
                    return f
        detail = getattr(source, "detail", None)
        if isinstance(detail, str):
            m = re.search(r"Key \(([a-z0-9_]+)\)", detail)
            if m and m.group(1) in c.fields:
                return m.group(1)
    m = re.search(r"(?:constraint failed|failed):\s*[A-Za-z0-9_]+\.([A-Za-z0-9_]+)", message)
    if m and m.group(1) in c.fields:
        return m.group(1)
    return None
