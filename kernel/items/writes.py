"""The one write path for user data: create, update and delete under the
caller's rules, with the lifecycle hooks, audit rows and events of every write.

REST, GraphQL, restore, flows, functions and MCP all write through
:class:`Writes`, on a transaction :meth:`workeros.items.items_service.ItemsService.writing`
opens (one call, or several writes that commit together, as a restore does).
For each write, in order:

1. the rows to change are read (and locked on PostgreSQL) — update, delete;
2. the ``workeros_items_before_<action>`` filter hooks may change the payloads
   or refuse;
3. payloads are checked against the caller's rule (writable fields, coercion,
   presets, validation);
4. the rows change; an activity row and a revision row per item are written on
   the same connection, in one batch for all the items of the write
   (:func:`workeros.db.activity.record_changes`);
5. ``workeros_items_committing`` hooks run on the same transaction;
6. after the commit, the :class:`~workeros.bus.events.ItemEvent` is published
   and the ``workeros_items_after_<action>`` action hooks run in the background.

Database constraint violations become 400/409 errors that name the field,
never SQL.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import uuid
import weakref
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection

from workeros.accountability import Accountability
from workeros.bus.events import ITEMS, ItemEvent
from workeros.clock import now
from workeros.db import activity
from workeros.errors import READ_ONLY, Conflict, Forbidden, InvalidPayload, NotFound, ServiceUnavailable
from workeros.hookspecs.items import ItemMutation
from workeros.items.reads import converter, full_row, permissions_module
from workeros.schema.field_types import CoercionError, coerce
from workeros.schema.model import Collection, Schema

if TYPE_CHECKING:
    from workeros.items.items_service import ItemsService

log = logging.getLogger("workeros.items")

#: Items per write call (one transaction): larger batches are refused.
MAX_BATCH = 10_000
CHUNK = 2000

BEFORE = {"create": "workeros_items_before_create", "update": "workeros_items_before_update",
          "delete": "workeros_items_before_delete"}
AFTER = {"create": "workeros_items_after_create", "update": "workeros_items_after_update",
         "delete": "workeros_items_after_delete"}
COMMITTING = "workeros_items_committing"


class Lifecycle:
    """Which item lifecycle hooks any plugin implements (looked up once), and
    calling them."""

    def __init__(self, service: ItemsService) -> None:
        self.services = service.services
        plugins = self.services.plugins
        self.present = {name: plugins.implemented(name)
                        for name in (*BEFORE.values(), *AFTER.values(), COMMITTING)}

    def before(self, action: str) -> bool:
        return self.present[BEFORE[action]]

    async def call_before(self, mutation: ItemMutation) -> None:
        await self.services.plugins.call_filters(BEFORE[mutation.action], mutation=mutation)

    async def committing(self, mutation: ItemMutation) -> None:
        if self.present[COMMITTING]:
            await self.services.plugins.call_filters(COMMITTING, mutation=mutation)

    def after_commit(self, conn: AsyncConnection, mutation: ItemMutation) -> None:
        """Once the transaction commits: publish the item event, then start the
        action hooks in the background."""
        services = self.services
        event = ItemEvent(mutation.collection, mutation.action, mutation.keys, mutation.before, mutation.after,
                          mutation.accountability.user, mutation.accountability.origin)
        hook = AFTER[mutation.action]
        after = dataclasses.replace(mutation, connection=None) if self.present[hook] else None

        async def committed() -> None:
            try:
                await services.events.publish(ITEMS, event.to_message())
            except Exception:  # the write is committed; a bus failure must not turn it into an error
                log.exception("publishing %s on %s failed", event.action, event.collection)
            if after is not None:
                services.plugins.call_actions(hook, services.background.spawn, mutation=after)

        services.db.after_commit(conn, committed)


class Writes:
    """Writes on one open transaction. Each method checks the caller's rule for
    its action (cached for the transaction), so a restore that creates, updates
    and deletes gets every rule of every action it performs."""

    def __init__(self, service: ItemsService, conn: AsyncConnection, schema: Schema) -> None:
        self.service = service
        self.services = service.services
        self.conn = conn
        self.schema = schema
        self.lifecycle = service.lifecycle
        self._rules: dict[tuple[Accountability, str, str], Any] = {}

    async def rule(self, acc: Accountability, c: Collection, action: str) -> Any:
        if acc.mcp_read_only:
            raise Forbidden(READ_ONLY)
        key = (acc, c.name, action)
        if key not in self._rules:
            self._rules[key] = await self.service.rule(acc, c.name, action)
        return self._rules[key]

    def _mutation(self, acc: Accountability, c: Collection, action: str, meta: Mapping[str, Any] | None,
                  **values: Any) -> ItemMutation:
        return ItemMutation(collection=c.name, action=action, accountability=acc, services=self.services,
                            connection=self.conn, meta=dict(meta or {}), **values)

    # -- create ---------------------------------------------------------------------------
    async def create(self, acc: Accountability, c: Collection, items: Sequence[Any], *, many: bool = True,
                     label: str = "item", meta: Mapping[str, Any] | None = None,
                     payloads: list[dict] | None = None, keep_keys: bool = False) -> tuple[list[Any], list[dict]]:
        """Insert ``items``; returns their keys and full rows (JSON-ready).
        ``payloads``: items already checked by :func:`payload` (no filter hooks
        then run, as the caller checked before the transaction). ``keep_keys``:
        the items' primary keys are written even where the caller's field
        allowlist leaves the key out (a restore re-creates an item under its
        own key)."""
        rule = await self.rule(acc, c, "create")
        mutation = self._mutation(acc, c, "create", meta)
        if payloads is None:
            if self.lifecycle.before("create"):
                mutation.payloads = [dict(i) if isinstance(i, Mapping) else i for i in items]
                await self.lifecycle.call_before(mutation)
                items = mutation.payloads
            payloads = [payload(acc, self.schema, c, rule, item, "create", i if many else None, label,
                                keep_keys=keep_keys) for i, item in enumerate(items)]
        conn, schema = self.conn, self.schema
        await self._references(acc, c, payloads)
        after: list[dict] = []
        ts = now()
        insert = _insert_returning(c.table)
        for i, values in enumerate(payloads):
            try:
                row = (await conn.execute(insert, values)).mappings().one()
            except sa_exc.DBAPIError as exc:
                raise constraint_error(exc, c, i if many else None, label, values) from None
            after.append(full_row(schema, c, row))
        await self._audit(acc, c, "create", [(full[c.primary_key], full, delta(c, values))
                                             for full, values in zip(after, payloads, strict=True)], ts, meta)
        await self._advance_sequence(c, payloads)
        keys = [r[c.primary_key] for r in after]
        mutation.keys, mutation.after = keys, after
        await self._finish(mutation)
        return keys, after

    # -- update ---------------------------------------------------------------------------
    async def update(self, acc: Accountability, c: Collection, data: Any, *, keys: Sequence[Any] | None = None,
                     condition: sa.ColumnElement[bool] | None = None, meta: Mapping[str, Any] | None = None,
                     values: dict | None = None) -> tuple[list[Any], list[dict], list[dict]]:
        """Set the fields of ``data`` on the rows of ``keys`` (404 if any is
        missing or not updatable) or on every updatable row matching
        ``condition``. Returns the keys, and the full rows before and after.
        ``values``: ``data`` already checked by :func:`payload`."""
        rule = await self.rule(acc, c, "update")
        conn, schema = self.conn, self.schema
        reader = await self.service.reader(acc, schema)
        where = reader.compile(c, [rule.filter])
        pks = None if keys is None else [key_of(c, k) for k in keys]
        if pks is not None:
            where = sa.and_(where, c.pk_column.in_(pks))
        if condition is not None:
            where = sa.and_(where, condition)
        stmt = self.services.db.for_update(sa.select(c.table).where(where).order_by(c.pk_column))
        before_rows = [full_row(schema, c, r) for r in (await conn.execute(stmt)).mappings()]
        if pks is not None:
            found = {r[c.primary_key] for r in before_rows}
            missing = [k for k in pks if json_key(c, k) not in found]
            if missing:
                raise NotFound(f"Item {str(missing[0])[:80]!r} of {c.name!r} not found")
        if not before_rows:
            return [], [], []
        out_keys = [r[c.primary_key] for r in before_rows]
        mutation = self._mutation(acc, c, "update", meta, keys=out_keys, before=before_rows)
        if values is None:
            if self.lifecycle.before("update"):
                mutation.payloads = [dict(data) if isinstance(data, Mapping) else data]
                await self.lifecycle.call_before(mutation)
                data = mutation.payloads[0]
            values = payload(acc, schema, c, rule, data, "update", None)
        db_keys = [key_of(c, k) for k in out_keys]
        await self._references(acc, c, [values])
        changes = delta(c, values)
        if rule.validation is not None:
            for before in before_rows:
                validate(acc, schema, c, rule, {**before, **changes})
        after_rows = before_rows
        if values:
            # The rows after the change come back from UPDATE ... RETURNING: the
            # rows are read once (the locking SELECT above), not again.
            returned: dict[Any, dict] = {}
            try:
                for chunk in chunks(db_keys):
                    result = await conn.execute(c.table.update().where(c.pk_column.in_(chunk)).values(values)
                                                .returning(*c.table.c))
                    for r in result.mappings():
                        row = full_row(schema, c, r)
                        returned[row[c.primary_key]] = row
            except sa_exc.DBAPIError as exc:
                raise constraint_error(exc, c, None, "item", values) from None
            after_rows = [returned[k] for k in out_keys]
        await self._audit(acc, c, "update", [(row[c.primary_key], row, changes) for row in after_rows], now(), meta)
        mutation.after = after_rows
        await self._finish(mutation)
        return out_keys, before_rows, after_rows

    # -- delete ---------------------------------------------------------------------------
    async def delete(self, acc: Accountability, c: Collection, keys: Sequence[Any], *,
                     meta: Mapping[str, Any] | None = None) -> list[dict]:
        """Delete the rows of ``keys`` (404 if any is missing or not deletable
        by the caller); returns the full rows as they were."""
        rule = await self.rule(acc, c, "delete")
        pks = [key_of(c, k) for k in keys]
        if not pks:
            return []
        conn, schema = self.conn, self.schema
        reader = await self.service.reader(acc, schema)
        stmt = sa.select(c.table).where(reader.compile(c, [rule.filter]), c.pk_column.in_(pks)).order_by(c.pk_column)
        stmt = self.services.db.for_update(stmt)
        before_rows = [full_row(schema, c, r) for r in (await conn.execute(stmt)).mappings()]
        found = {r[c.primary_key] for r in before_rows}
        missing = [k for k in pks if json_key(c, k) not in found]
        if missing:
            raise NotFound(f"Item {str(missing[0])[:80]!r} of {c.name!r} not found")
        out_keys = [r[c.primary_key] for r in before_rows]
        mutation = self._mutation(acc, c, "delete", meta, keys=out_keys, before=before_rows)
        if self.lifecycle.before("delete"):
            await self.lifecycle.call_before(mutation)
        effects = await self.on_delete_effects(c, pks)
        try:
            for chunk in chunks(pks):
                await conn.execute(c.table.delete().where(c.pk_column.in_(chunk)))
        except sa_exc.DBAPIError as exc:
            raise constraint_error(exc, c, None, action="delete") from None
        ts = now()
        await self._audit(acc, c, "delete", [(row[c.primary_key], None, None) for row in before_rows], ts, meta)
        await self._finish(mutation)
        await self.record_effects(acc, effects, ts, meta)
        return before_rows

    async def on_delete_effects(self, c: Collection, pks: list[Any]) -> list[tuple[str, Collection, Any, list]]:
        """What the database's ``on_delete`` rules will do when the rows ``pks`` of
        ``c`` go: the rows each ``set null`` relation will change and each
        ``cascade`` relation will delete (following cascades), read (and locked on
        PostgreSQL) before the delete, so their revisions can be written. A
        ``restrict`` relation still holding rows is a 409 naming it."""
        effects: list[tuple[str, Collection, Any, list]] = []
        gone: dict[str, set[Any]] = {c.name: {json_key(c, k) for k in pks}}
        queue: list[tuple[Collection, list[Any]]] = [(c, pks)]
        while queue:
            target, keys = queue.pop(0)
            for other in self.schema.collections.values():
                if other.system:
                    continue
                for relation in other.relations.values():
                    if relation.kind != "m2o" or relation.related != target.name:
                        continue
                    column = other.table.c[relation.field]
                    rows: list[dict] = []
                    for chunk in chunks(keys):
                        stmt = self.services.db.for_update(
                            sa.select(other.table).where(column.in_(chunk)).order_by(other.pk_column))
                        rows += [full_row(self.schema, other, r) for r in (await self.conn.execute(stmt)).mappings()]
                    seen = gone.setdefault(other.name, set())
                    rows = [r for r in rows if r[other.primary_key] not in seen]
                    if not rows:
                        continue
                    if relation.on_delete == "restrict":
                        raise Conflict(f"Items of {other.name!r} still reference this item of {target.name!r} "
                                       f"through {relation.field!r} (on_delete restrict)", field=relation.field)
                    if relation.on_delete == "cascade":
                        seen.update(r[other.primary_key] for r in rows)
                        effects.append(("delete", other, relation, rows))
                        queue.append((other, [key_of(other, r[other.primary_key]) for r in rows]))
                    else:
                        effects.append(("update", other, relation, rows))
        # a row both nulled and deleted (through two relations) is recorded as deleted
        return [(action, other, relation,
                 rows if action == "delete" else [r for r in rows if r[other.primary_key] not in gone[other.name]])
                for action, other, relation, rows in effects]

    async def record_effects(self, acc: Accountability, effects: list[tuple[str, Collection, Any, list]], ts: Any,
                              meta: Mapping[str, Any] | None) -> None:
        """Revisions, activity and item events for what ``on_delete`` did."""
        for action, other, relation, rows in effects:
            if not rows:
                continue
            keys = [r[other.primary_key] for r in rows]
            cause = {**(meta or {}), "on_delete": {"relation": f"{other.name}.{relation.field}",
                                                   "rule": relation.on_delete}}
            after: list[dict] | None = None
            if action == "update":
                db_keys = [key_of(other, k) for k in keys]
                after = []
                for chunk in chunks(db_keys):
                    after += [full_row(self.schema, other, r) for r in (await self.conn.execute(
                        sa.select(other.table).where(other.pk_column.in_(chunk)).order_by(other.pk_column))).mappings()]
                await self._audit(acc, other, "update", [(row[other.primary_key], row, {relation.field: None})
                                                         for row in after], ts, cause)
            else:
                await self._audit(acc, other, "delete", [(key, None, None) for key in keys], ts, cause)
            mutation = self._mutation(acc, other, action, cause, keys=keys, before=rows, after=after)
            self.lifecycle.after_commit(self.conn, mutation)

    async def _advance_sequence(self, c: Collection, payloads: Sequence[Mapping[str, Any]]) -> None:
        """Rows written with explicit integer keys (a batch carrying ids, an
        import, a restore re-creating a row) move the key generator past them, so
        the next create without a key does not collide (a capability of the
        database: a sequence on PostgreSQL, nothing to do for SQLite's rowid)."""
        if c.pk_field.type not in ("integer", "bigint"):
            return
        if any(isinstance(v.get(c.primary_key), int) for v in payloads):
            await self.services.db.advance_sequence(self.conn, c.table)

    # -- shared ---------------------------------------------------------------------------
    async def _references(self, acc: Accountability, c: Collection, payloads: Sequence[Mapping[str, Any]]) -> None:
        """Every many-to-one key written must name an item the caller may read.
        A key of an item that exists but is hidden from the caller gets the same
        409 as a key of no item, so a write cannot tell whether a hidden item
        exists (docs/permissions.md). Admins read everything: the database's
        foreign key answers for them."""
        if acc.admin:
            return
        wanted: dict[str, set[Any]] = {}
        for values in payloads:
            for name, value in values.items():
                relation = c.relations.get(name)
                if relation is not None and relation.kind == "m2o" and value is not None:
                    wanted.setdefault(name, set()).add(value)
        if not wanted:
            return
        reader = await self.service.reader(acc, self.schema)
        for name, keys in wanted.items():
            related_name = c.relations[name].related
            found: set[Any] = set()
            try:
                related, rule = reader.collection(related_name)
            except (Forbidden, NotFound):
                related = None
            if related is not None:
                for chunk in chunks(sorted(keys, key=str)):
                    found |= {r[0] for r in await self.conn.execute(
                        sa.select(related.pk_column).where(related.pk_column.in_(chunk),
                                                           reader.compile(related, [rule.filter])))}
            if keys - found:
                raise Conflict(f"The change conflicts with a relation on {name!r}: a referenced item does not "
                               "exist", field=name)

    async def _audit(self, acc: Accountability, c: Collection, action: str,
                     changes: Sequence[tuple[Any, dict | None, dict | None]], ts: Any,
                     meta: Mapping[str, Any] | None) -> None:
        """An activity and a revision row for each ``(key, row after, delta)``,
        written together in one batch."""
        await activity.record_changes(self.conn, action=f"item.{action}", accountability=acc, collection=c.name,
                                      changes=changes, timestamp=ts, meta=meta)

    async def _finish(self, mutation: ItemMutation) -> None:
        await self.lifecycle.committing(mutation)
        self.lifecycle.after_commit(self.conn, mutation)


class WriteTransaction:
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
            raise constraint_error(error, self.c, None) from None
        if isinstance(exc, sa_exc.DBAPIError):  # in the body, after the rollback
            raise constraint_error(exc, self.c, None) from None
        return suppressed



# -- payloads ---------------------------------------------------------------------------

def check_batch(items: Sequence[Any], limit: int = MAX_BATCH) -> None:
    """Refuse a write carrying more than ``limit`` items (``items.max_batch``)."""
    if len(items) > limit:
        raise InvalidPayload(f"At most {limit} items per request (items.max_batch)")


def payload(acc: Accountability, schema: Schema, c: Collection, rule: Any, item: Any, action: str,
            index: int | None, label: str = "item", *, keep_keys: bool = False) -> dict:
    """Check and coerce one payload under ``rule``; presets fill what it leaves
    out; on create, defaults and required fields, then the rule's validation."""
    where = "" if index is None else f" ({label} {index + 1})"
    if not isinstance(item, Mapping):
        raise InvalidPayload(f"Expected an object{where}")
    values: dict[str, Any] = {}
    for name, raw in item.items():
        if not isinstance(name, str):
            raise InvalidPayload(f"Field names must be strings{where}")
        if rule.fields is not None and name not in rule.fields and not (keep_keys and name == c.primary_key):
            raise Forbidden(f"You don't have permission to write field {name[:80]!r}{where}")
        f = c.fields.get(name)
        if f is None:
            raise InvalidPayload(f"Field {name[:80]!r} does not exist in {c.name!r}{where}", field=name[:80])
        if f.alias:
            raise InvalidPayload(f"Field {name!r} is a relational alias and cannot be written{where}", field=name)
        if f.primary_key and action == "update":
            raise InvalidPayload(f"The primary key {name!r} cannot be changed{where}", field=name)
        values[name] = coerce_value(f, raw, where)
    for name, raw in (rule.presets or {}).items():
        f = c.fields.get(name)
        if name in values or f is None or f.alias:
            continue
        values[name] = coerce_value(f, preset(acc, raw), where)
    special(acc, c, values, action, where, keep=keep_keys)
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
            validate(acc, schema, c, rule, delta(c, values), where)
    return values


#: ``options.special`` of a field -> (the action that fills it, what it holds).
SPECIAL = {"user_created": ("create", "user"), "date_created": ("create", "date"),
           "user_updated": ("update", "user"), "date_updated": ("update", "date")}


def special(acc: Accountability, c: Collection, values: dict, action: str, where: str, *, keep: bool) -> None:
    """Fill the special fields of ``c`` the service owns: ``user_created`` and
    ``date_created`` on create, ``user_updated`` and ``date_updated`` on update —
    the caller (``null`` when anonymous) and the time, whatever the payload said.
    ``keep`` (a restore re-creating a row): the row's own recorded values stay."""
    for f in c.scalar_fields():
        kind = f.options.get("special")
        if kind not in SPECIAL or SPECIAL[kind][0] != action or (keep and f.name in values):
            continue
        value = acc.user if SPECIAL[kind][1] == "user" else now()
        values[f.name] = None if value is None else coerce_value(f, value, where)


def validate(acc: Accountability, schema: Schema, c: Collection, rule: Any, row: dict, where: str = "") -> None:
    module = permissions_module()
    if not module.match_filter(rule.validation, row, schema=schema, collection=c.name,
                               variables=module.Variables.for_accountability(acc)):
        raise InvalidPayload(f"The item does not satisfy the validation rule of {c.name!r}{where}")


def coerce_value(f: Any, raw: Any, where: str) -> Any:
    try:
        value = coerce(f.type, raw, f.options)
    except CoercionError as exc:
        raise InvalidPayload(f"Invalid value for field {f.name!r}{where}: {exc}", field=f.name) from None
    except (TypeError, ValueError, ArithmeticError):  # e.g. a decimal too large to quantize
        raise InvalidPayload(f"Invalid value for field {f.name!r}{where}", field=f.name) from None
    if value is None and not f.nullable:
        raise InvalidPayload(f"Field {f.name!r} cannot be null{where}", field=f.name)
    return value


def preset(acc: Accountability, raw: Any) -> Any:
    """Presets may name the caller: ``$CURRENT_USER``, ``$CURRENT_ROLE``, ``$NOW``."""
    if raw in ("$CURRENT_USER", "$user.id"):
        return acc.user
    if raw in ("$CURRENT_ROLE", "$user.role"):
        return acc.role
    if raw == "$NOW":
        return now()
    if isinstance(raw, str) and raw.startswith("$user."):
        return acc.user_fields.get(raw[len("$user."):])
    return raw


def delta(c: Collection, values: Mapping[str, Any]) -> dict:
    """Coerced values as JSON-ready (what a revision's ``delta`` holds)."""
    return {k: (None if v is None else converter(c.fields[k])(v)) for k, v in values.items()}


def key_of(c: Collection, key: Any) -> Any:
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


def json_key(c: Collection, key: Any) -> Any:
    return converter(c.pk_field)(key)


_INSERTS: weakref.WeakKeyDictionary[sa.Table, sa.Insert] = weakref.WeakKeyDictionary()


def _insert_returning(table: sa.Table) -> sa.Insert:
    """``INSERT ... RETURNING`` every column of ``table``, built once per table
    (values are bound per row), so SQLAlchemy's compiled cache is hit without
    building and hashing a new statement on every create."""
    stmt = _INSERTS.get(table)
    if stmt is None:
        stmt = _INSERTS[table] = table.insert().returning(*table.c)
    return stmt


def chunks(keys: list) -> list[list]:
    return [keys[i:i + CHUNK] for i in range(0, len(keys), CHUNK)]


# -- driver errors ----------------------------------------------------------------------

def is_data_error(exc: sa_exc.DBAPIError) -> bool:
    """A data exception (SQLSTATE class 22): a value the column cannot hold."""
    if isinstance(exc, sa_exc.DataError):
        return True
    orig = getattr(exc, "orig", None)
    for source in (orig, getattr(orig, "__cause__", None)):
        state = getattr(source, "sqlstate", None)
        if isinstance(state, str) and state.startswith("22"):
            return True
    return False


_UNIQUE = re.compile(r"unique|duplicate key", re.I)
_NOT_NULL = re.compile(r"not[ -]null|null value", re.I)
_FOREIGN = re.compile(r"foreign key", re.I)


def constraint_error(exc: sa_exc.DBAPIError, c: Collection, index: int | None, label: str = "item",
                     values: Mapping[str, Any] | None = None, *, action: str | None = None) -> Exception:
    """A driver error as a contract error naming the field when it can be told,
    never the SQL or the driver's message. A foreign key error says which way it
    points: a written relational field whose item does not exist, or (deleting)
    items elsewhere that still reference this one."""
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
            if action == "delete":
                return Conflict(f"Other items still reference this item of {c.name!r}{where}")
            if column and column in c.relations:
                related = c.relations[column].related
                return Conflict(f"Field {column!r} references an item of {related!r} that does not exist{where}",
                                field=column)
            return Conflict(f"The change conflicts with a relation{(' on' + named) if named else ''}: a referenced "
                            f"item does not exist, or other items still reference this one{where}", field=column)
        return Conflict(f"The change violates a constraint of {c.name!r}{where}")
    if is_data_error(exc):
        return InvalidPayload(f"A value does not fit its field{(' ' + named) if named else ''}{where}", field=column)
    if isinstance(exc, sa_exc.OperationalError) and "locked" in message.lower():
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
