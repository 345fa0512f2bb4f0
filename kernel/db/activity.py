"""Activity and revisions as they are written: one activity row per action
(``item.create``, ``auth.login``...), and for item changes one revision row
beside it (the state after the change and what changed), both in the same
transaction as the change they record. Reading them back is
:mod:`workeros.audit.activity_reads` and :mod:`workeros.audit.revisions`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from workeros.accountability import Accountability
from workeros.clock import now
from workeros.db.tables.audit import activity, revisions


async def record(
    conn: AsyncConnection,
    *,
    action: str,
    accountability: Accountability | None,
    collection: str | None = None,
    item: Any = None,
    meta: Mapping[str, Any] | None = None,
    timestamp: dt.datetime | None = None,
) -> int:
    """Insert one activity row on ``conn`` (inside the caller's transaction);
    return its id."""
    acc = accountability or Accountability.system()
    # One statement with bound parameters (not .values()), so SQLAlchemy's compiled
    # cache serves every call without building a statement per row.
    result = await conn.execute(_INSERT, {
        "action": action,
        "collection": collection,
        "item": None if item is None else str(item),
        "user": acc.user,
        "ip": (acc.ip or None) and acc.ip[:64],
        "user_agent": (acc.user_agent or None) and acc.user_agent[:512],
        "origin": acc.origin,
        "timestamp": timestamp or now(),
        "meta": dict(meta) if meta else None,
    })
    return int(result.inserted_primary_key[0])


_INSERT = activity.insert()


async def record_revision(
    conn: AsyncConnection,
    *,
    activity_id: int,
    collection: str,
    item: Any,
    data: Mapping[str, Any] | None,
    delta: Mapping[str, Any] | None,
    timestamp: dt.datetime,
) -> None:
    """One revision row. ``data`` is the full row after the change (``None`` after
    a delete); ``delta`` the fields the change set. Values must be JSON-ready."""
    await conn.execute(_INSERT_REVISION, _revision_row(activity_id, collection, item, data, delta, timestamp))


def _revision_row(activity_id: int, collection: str, item: Any, data: Mapping[str, Any] | None,
                  delta: Mapping[str, Any] | None, timestamp: dt.datetime) -> dict[str, Any]:
    return {
        "activity": activity_id,
        "collection": collection,
        "item": str(item),
        "data": dict(data) if data is not None else None,
        "delta": dict(delta) if delta is not None else None,
        "timestamp": timestamp,
    }


_INSERT_REVISION = revisions.insert()


async def record_changes(
    conn: AsyncConnection,
    *,
    action: str,
    accountability: Accountability | None,
    collection: str,
    changes: Sequence[tuple[Any, Mapping[str, Any] | None, Mapping[str, Any] | None]],
    timestamp: dt.datetime,
    meta: Mapping[str, Any] | None = None,
) -> None:
    """An activity row and a revision row for each ``(item, data, delta)`` of
    ``changes`` (as :func:`record` and :func:`record_revision` write them), in a
    fixed number of statements whatever their number: the activity rows in one
    ``INSERT ... RETURNING`` (their ids in the order of ``changes``), the
    revisions in one batch. On PostgreSQL a single change is one statement (the
    revision is inserted from the activity row's ``RETURNING`` in a CTE), so a
    create costs one round trip for its audit; elsewhere a single change is two
    plain statements (no batch machinery for one row)."""
    if not changes:
        return
    acc = accountability or Accountability.system()
    common = {
        "action": action,
        "collection": collection,
        "user": acc.user,
        "ip": (acc.ip or None) and acc.ip[:64],
        "user_agent": (acc.user_agent or None) and acc.user_agent[:512],
        "origin": acc.origin,
        "timestamp": timestamp,
        "meta": dict(meta) if meta else None,
    }
    if len(changes) == 1:
        item, data, delta = changes[0]
        if conn.dialect.name == "postgresql":
            await conn.execute(_INSERT_BOTH, {
                **common, "item": str(item),
                "r_data": dict(data) if data is not None else None,
                "r_delta": dict(delta) if delta is not None else None,
            })
            return
        # One row each, executed as such: a list of one takes SQLAlchemy's
        # batch path (insertmanyvalues, the batch's parameters sorted back into
        # order), which costs about twice the two plain statements.
        activity_id = (await conn.execute(_INSERT, {**common, "item": str(item)})).inserted_primary_key[0]
        await conn.execute(_INSERT_REVISION, _revision_row(activity_id, collection, item, data, delta, timestamp))
        return
    ids = (await conn.execute(_INSERT_MANY, [{**common, "item": str(item)} for item, _, _ in changes])).scalars().all()
    await conn.execute(_INSERT_REVISION, [_revision_row(activity_id, collection, item, data, delta, timestamp)
                                          for activity_id, (item, data, delta) in zip(ids, changes, strict=True)])


_INSERT_MANY = activity.insert().returning(activity.c.id, sort_by_parameter_order=True)


def _insert_both() -> sa.Insert:
    columns = ("action", "collection", "item", "user", "ip", "user_agent", "origin", "timestamp", "meta")
    logged = activity.insert().values({name: sa.bindparam(name, type_=activity.c[name].type) for name in columns})
    row = logged.returning(activity.c.id, activity.c.collection, activity.c.item, activity.c.timestamp).cte("a")
    return revisions.insert().from_select(
        ["activity", "collection", "item", "data", "delta", "timestamp"],
        sa.select(row.c.id, row.c.collection, row.c.item,
                  sa.bindparam("r_data", type_=revisions.c.data.type),
                  sa.bindparam("r_delta", type_=revisions.c.delta.type), row.c.timestamp))


_INSERT_BOTH = _insert_both()
