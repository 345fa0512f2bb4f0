"""Revisions: the state of an item after each change and what changed, written in
the same transaction as the change — and, read back, point-in-time restore.

The items service's write path records one revision per changed item
(:func:`workeros.db.activity.record_revision`); the :class:`RevisionsService`
reads them (``GET /api/revisions``) and restores from them, through the same
write path and under the caller's rules for each create, update and delete:

- one revision: the item goes back to that revision's state;
- one item at a time ``at``: to the state of its last revision at or before ``at``;
- a whole collection at a time ``at``: every item changed after ``at`` goes back
  to its state then — updated, re-created if it was deleted since, deleted if it
  was created since — in one transaction.

A restore is itself a change: it writes activity and revision rows (with
``meta.restore`` saying where from) and emits item events, so it can be undone
the same way. Retention (``revisions.retention_days``) bounds how far back a
restore can go.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from workeros.accountability import Accountability
from workeros.audit.activity_reads import int_param, paging
from workeros.clock import now
from workeros.clock import now as clock_now
from workeros.config import setting_or
from workeros.db import activity as activity_log
from workeros.db.tables.audit import activity, revisions
from workeros.errors import Conflict, Forbidden, InvalidQuery, NotFound
from workeros.hookspecs.lifecycle import ConfigKey
from workeros.items.reads import full_row, permissions_module
from workeros.items.writes import Writes, coerce_value, delta, key_of

if TYPE_CHECKING:
    from workeros.schema.model import Collection
    from workeros.services import Services

log = logging.getLogger("workeros.revisions")

MAX_LIMIT = 1000
#: Items restored per collection restore (one transaction).
MAX_RESTORE = 100_000


def parse_time(raw: Any, name: str = "at") -> dt.datetime:
    """An ISO 8601 date-time from a query string (UTC when no offset is given).
    A ``+hh:mm`` offset sent unencoded arrives as a space and is read as ``+``."""
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidQuery(f"{name} must be an ISO 8601 date-time")
    text = re.sub(r"(T[\d:.]+) (\d\d:?\d\d)$", r"\1+\2", raw.strip()).replace("Z", "+00:00")
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidQuery(f"{name} is not a valid ISO 8601 date-time: {raw[:64]!r}") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


_ABSENT = object()  # the item did not exist
_UNKNOWN = object()  # no recorded state (history began after it existed)


@dataclass
class RestoreResult:
    created: list[Any]
    updated: list[Any]
    deleted: list[Any]

    def to_json(self) -> dict[str, Any]:
        return {"created": self.created, "updated": self.updated, "deleted": self.deleted}


class RevisionsService:
    config_keys = (
        ConfigKey("revisions.retention_days", "int", 0,
                  "Delete revisions older than this many days (0 keeps them forever); restores "
                  "cannot go back further"),
        ConfigKey("activity.retention_days", "int", 0,
                  "Delete activity rows (and their revisions) older than this many days (0 keeps them)"),
        ConfigKey("revisions.purge_interval", "int", 3600, "Seconds between retention purges"),
    )

    def __init__(self, services: Services) -> None:
        self.services = services
        settings = services.settings
        self.retention_days = int(setting_or(settings, "revisions.retention_days", 0))
        self.activity_retention_days = int(setting_or(settings, "activity.retention_days", 0))
        self.purge_interval = max(1, int(setting_or(settings, "revisions.purge_interval", 3600)))
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, services: Services) -> RevisionsService:
        service = cls(services)
        if service.retention_days or service.activity_retention_days:
            service._task = asyncio.create_task(service._purge_loop())
        return service

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    # -- retention ---------------------------------------------------------------------
    async def _purge_loop(self) -> None:
        while True:
            try:
                await self.purge()
            except Exception:  # a failed purge is retried at the next interval
                log.exception("retention purge failed")
            await asyncio.sleep(self.purge_interval)

    async def purge(self, now: dt.datetime | None = None) -> dict[str, int]:
        """Delete revisions and activity rows older than their retention."""
        now = now or clock_now()
        out = {"revisions": 0, "activity": 0}
        async with self.services.db.transaction() as conn:
            if self.retention_days:
                cutoff = now - dt.timedelta(days=self.retention_days)
                out["revisions"] = (await conn.execute(
                    revisions.delete().where(revisions.c.timestamp < cutoff))).rowcount or 0
            if self.activity_retention_days:
                cutoff = now - dt.timedelta(days=self.activity_retention_days)
                old = sa.select(activity.c.id).where(activity.c.timestamp < cutoff).scalar_subquery()
                await conn.execute(revisions.delete().where(revisions.c.activity.in_(old)))
                out["activity"] = (await conn.execute(
                    activity.delete().where(activity.c.timestamp < cutoff))).rowcount or 0
        return out

    def _check_retention(self, at: dt.datetime) -> None:
        if self.retention_days and at < now() - dt.timedelta(days=self.retention_days):
            raise InvalidQuery(f"at is older than the revision retention ({self.retention_days} days)")

    # -- reads -------------------------------------------------------------------------
    async def list(self, acc: Accountability, params: Mapping[str, str]) -> list[dict[str, Any]]:
        """Revisions the caller may see, newest first: admins all; anyone else
        only revisions of items they may read now, cut to the fields they may
        read. ``collection``, ``item``, ``activity``, ``before``/``after`` (ISO
        times) narrow the list; ``limit``/``offset``/``page`` page it. Anonymous
        callers see none (403), as with the activity log."""
        if acc.user is None and not acc.admin:
            raise Forbidden()
        query = sa.select(revisions.c.id, revisions.c.activity, revisions.c.collection, revisions.c.item,
                          revisions.c.data, revisions.c.delta, revisions.c.timestamp, activity.c.action,
                          activity.c.user).join(activity, activity.c.id == revisions.c.activity)
        collection = params.get("collection")
        if collection:
            query = query.where(revisions.c.collection == collection)
        if params.get("item"):
            if not collection:
                raise InvalidQuery("item needs collection")
            query = query.where(revisions.c.item == params["item"])
        if params.get("activity"):
            query = query.where(revisions.c.activity == int_param(params, "activity", 0))
        if params.get("before"):
            query = query.where(revisions.c.timestamp <= parse_time(params["before"], "before"))
        if params.get("after"):
            query = query.where(revisions.c.timestamp > parse_time(params["after"], "after"))
        limit, offset = paging(params, MAX_LIMIT)

        fields_of: dict[str, frozenset[str] | None] = {}
        if not acc.admin:
            visible, fields_of = await self._visibility(acc, collection)
            query = query.where(visible)
        query = query.order_by(revisions.c.id.desc()).limit(limit).offset(offset)
        async with self.services.db.read() as conn:
            rows = [dict(r) for r in (await conn.execute(query)).mappings()]
        for row in rows:
            row["timestamp"] = _iso(row["timestamp"])
            allowed = fields_of.get(row["collection"])
            if allowed is not None:
                for key in ("data", "delta"):
                    if row[key] is not None:
                        row[key] = {k: v for k, v in row[key].items() if k in allowed}
        return rows

    async def _visibility(self, acc: Accountability, only: str | None) -> tuple[Any, dict[str, Any]]:
        """The condition "the revision's item is one the caller may read now",
        and the readable fields per collection."""
        items = self.services.items
        permissions = self.services.permissions
        if items is None or permissions is None:
            raise Forbidden()
        schema = self.services.schema.current()
        reader = await items.reader(acc, schema)
        names = await permissions.readable_collections(acc)
        if only is not None:
            if only not in names or only not in schema.collections:
                raise Forbidden()
            names = {only}
        clauses = []
        fields_of: dict[str, Any] = {}
        for name in sorted(names):
            c = schema.get(name)
            if c is None:
                continue
            rule = reader.access(name)
            if rule is None:
                continue
            fields_of[name] = rule.fields
            keys = sa.select(sa.cast(c.pk_column, sa.String)).where(reader.compile(c, [rule.filter]))
            clauses.append(sa.and_(revisions.c.collection == name, revisions.c.item.in_(keys)))
        return (sa.or_(*clauses) if clauses else sa.false()), fields_of

    # -- restores ----------------------------------------------------------------------
    async def restore_revision(self, acc: Accountability, revision_id: Any) -> dict[str, Any]:
        """Put the revision's item back in the state that revision recorded."""
        self._signed_in(acc)
        rid = _as_int(revision_id, "revision")
        async with self.services.db.read() as conn:
            row = (await conn.execute(sa.select(revisions).where(revisions.c.id == rid))).mappings().first()
        if row is None:
            raise NotFound(f"Revision {str(revision_id)[:40]!r} not found")
        c = self._collection(acc, row["collection"])
        if not await self._may_read(acc, c, row["item"]):
            raise NotFound(f"Revision {str(revision_id)[:40]!r} not found")
        state = _ABSENT if row["data"] is None else _json(row["data"])
        result = await self._apply(acc, c, {row["item"]: state}, {"revision": rid},
                                   action="item.restore", item=row["item"])
        return result.to_json()

    async def restore_item(self, acc: Accountability, collection: str, key: Any, at: dt.datetime) -> dict[str, Any]:
        """Put one item back in its state at ``at``."""
        self._signed_in(acc)
        self._check_retention(at)
        c = self._collection(acc, collection)
        item = str(key)[:255]
        if not await self._may_read(acc, c, item):
            raise NotFound(f"Item {item[:80]!r} of {collection!r} has no recorded history")
        async with self.services.db.read() as conn:
            states = await _states_at(conn, c.name, at, [item])
        if item not in states:
            raise NotFound(f"Item {item[:80]!r} of {collection!r} has no recorded history")
        result = await self._apply(acc, c, states, {"at": _iso(at)}, action="item.restore", item=item)
        return result.to_json()

    async def restore_collection(self, acc: Accountability, collection: str, at: dt.datetime) -> dict[str, Any]:
        """Put every item of ``collection`` changed after ``at`` back in its state
        then, in one transaction (admin only)."""
        if not acc.admin:
            raise Forbidden()
        self._check_retention(at)
        c = self._collection(acc, collection)
        async with self.services.db.read() as conn:
            states = await _states_at(conn, c.name, at, None)
        if len(states) > MAX_RESTORE:
            raise InvalidQuery(f"More than {MAX_RESTORE} items changed since then; restore in steps")
        result = await self._apply(acc, c, states, {"at": _iso(at)}, action="collection.restore", item=None)
        return result.to_json()

    @staticmethod
    def _signed_in(acc: Accountability) -> None:
        """Anonymous callers restore nothing (as they read no revisions)."""
        if acc.is_anonymous:
            raise Forbidden()

    def _collection(self, acc: Accountability, name: str) -> Collection:
        c = self.services.schema.current().get(name)
        if c is None or (c.system and not c.items_api):
            if not acc.admin:
                raise Forbidden()
            raise NotFound(f"Collection {name[:80]!r} does not exist")
        return c

    async def _may_read(self, acc: Accountability, c: Collection, stored_key: str) -> bool:
        """Whether the caller may read the item a revision belongs to: the row
        as it is now under their read rule or, for an item deleted since, its
        last recorded state matched against that rule in this process."""
        if acc.admin:
            return True
        items = self.services.items
        reader = await items.reader(acc)
        c, rule = reader.collection(c.name)  # 403 without read access to the collection
        try:
            pk = key_of(c, stored_key)
        except NotFound:
            return False
        async with self.services.db.read() as conn:
            exists = (await conn.execute(sa.select(c.pk_column).where(c.pk_column == pk))).first()
            if exists is not None:
                visible = (await conn.execute(sa.select(c.pk_column).where(
                    c.pk_column == pk, reader.compile(c, [rule.filter])))).first()
                return visible is not None
            # The last recorded state (a delete's revision holds none: JSON null,
            # which is not SQL NULL on every dialect).
            last = None
            for (data,) in await conn.execute(
                    sa.select(revisions.c.data).where(revisions.c.collection == c.name,
                                                      revisions.c.item == stored_key)
                    .order_by(revisions.c.id.desc()).limit(50)):
                if data is not None and _json(data) is not None:
                    last = data
                    break
        if last is None or rule.filter is None:
            return last is not None
        module = permissions_module()
        return bool(module.match_filter(rule.filter, _json(last), schema=items.schema(), collection=c.name,
                                        variables=module.Variables.for_accountability(acc)))

    async def _apply(self, acc: Accountability, c: Collection, states: Mapping[str, Any],
                     source: Mapping[str, Any], *, action: str, item: str | None) -> RestoreResult:
        """Bring each item of ``states`` (key as stored in revisions → JSON row,
        ``_ABSENT`` or ``_UNKNOWN``) to that state in one transaction, through
        the items service's write path: every create, update and delete is an
        ordinary write under the caller's rule for that action (row filter,
        field allowlist, presets, validation), with its hooks, audit rows and
        events."""
        unknown = [k for k, s in states.items() if s is _UNKNOWN]
        if unknown:
            raise Conflict(f"Item {unknown[0][:80]!r} of {c.name!r} has no recorded state at that time "
                           "(its history starts later)")
        items = self.services.items
        schema = items.schema()
        result = RestoreResult([], [], [])
        meta = {"restore": dict(source)}
        async with items.writing(c, schema) as w:
            for stored_key in sorted(states, key=str):
                state = states[stored_key]
                pk = key_of(c, stored_key)
                stmt = sa.select(c.table).where(c.pk_column == pk)
                stmt = self.services.db.for_update(stmt)
                current = (await w.conn.execute(stmt)).mappings().first()
                if state is _ABSENT:
                    if current is None:
                        continue
                    deleted = await w.delete(acc, c, [pk], meta=meta)
                    result.deleted += [r[c.primary_key] for r in deleted]
                    continue
                values = {name: value for name, value in state.items()
                          if name in c.fields and not c.fields[name].alias}
                if current is None:
                    values = await self._restorable(acc, w, c, "create", values)
                    keys, _ = await w.create(acc, c, [values], many=False, meta=meta, keep_keys=True)
                    result.created += keys
                    continue
                current_json = full_row(schema, c, current)
                changed = {}
                for name, value in values.items():
                    if name == c.primary_key:
                        continue
                    coerced = coerce_value(c.fields[name], value, f" (restoring item {stored_key})")
                    if delta(c, {name: coerced})[name] != current_json.get(name):
                        changed[name] = value
                if not changed:
                    continue
                changed = await self._restorable(acc, w, c, "update", changed)
                keys, _, _ = await w.update(acc, c, changed, keys=[pk], meta=meta)
                result.updated += keys
            await activity_log.record(w.conn, action=action, accountability=acc, collection=c.name, item=item,
                                      timestamp=now(), meta={**source, **result.to_json()})
        return result

    @staticmethod
    async def _restorable(acc: Accountability, w: Writes, c: Collection, action: str,
                          values: dict[str, Any]) -> dict[str, Any]:
        """The values a restore may write: outside the caller's field allowlist
        for ``action``, empty values are left out and anything else refuses the
        restore, without naming the field (it may be one the caller cannot
        read)."""
        if acc.admin:
            return values
        rule = await w.rule(acc, c, action)
        if rule.fields is None:
            return values
        allowed = set(rule.fields) | {c.primary_key}
        outside = {k: v for k, v in values.items() if k not in allowed}
        if any(v is not None for v in outside.values()):
            raise Forbidden("You don't have permission to restore this item to that state")
        return {k: v for k, v in values.items() if k in allowed}


async def _states_at(conn: AsyncConnection, collection: str, at: dt.datetime,
                     only: list[str] | None) -> dict[str, Any]:
    """For each item (of ``only``, or every item changed after ``at``): its
    recorded row at ``at``, ``_ABSENT`` if it did not exist then, ``_UNKNOWN``
    if its history starts after ``at`` with something other than its creation."""
    r = revisions
    in_collection = r.c.collection == collection
    if only is None:
        targets = [row[0] for row in await conn.execute(
            sa.select(r.c.item).where(in_collection, r.c.timestamp > at).distinct())]
    else:
        targets = list(only)
    if not targets:
        return {}
    states: dict[str, Any] = {}
    for chunk in [targets[i:i + 1000] for i in range(0, len(targets), 1000)]:
        last_before = (sa.select(r.c.item, sa.func.max(r.c.id).label("id"))
                       .where(in_collection, r.c.item.in_(chunk), r.c.timestamp <= at)
                       .group_by(r.c.item).subquery())
        for item, data in await conn.execute(
                sa.select(r.c.item, r.c.data).join(last_before, last_before.c.id == r.c.id)):
            states[item] = _ABSENT if data is None else _json(data)
        missing = [k for k in chunk if k not in states]
        if not missing:
            continue
        first_after = (sa.select(r.c.item, sa.func.min(r.c.id).label("id"))
                       .where(in_collection, r.c.item.in_(missing), r.c.timestamp > at)
                       .group_by(r.c.item).subquery())
        for item, action in await conn.execute(
                sa.select(r.c.item, activity.c.action).join(first_after, first_after.c.id == r.c.id)
                .join(activity, activity.c.id == r.c.activity)):
            states[item] = _ABSENT if action == "item.create" else _UNKNOWN
    return states


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, (str, bytes)) else value


def _iso(value: dt.datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.isoformat() + "Z"


def _as_int(raw: Any, what: str) -> int:
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise NotFound(f"{what.capitalize()} {str(raw)[:40]!r} not found") from None
    if not -(2**63) <= value < 2**63:
        raise NotFound(f"{what.capitalize()} {str(raw)[:40]!r} not found")
    return value


