"""Activity and revisions as they are written: one activity row per action
(``item.create``, ``auth.login``...), and for item changes one revision row
beside it (the state after the change and what changed), both in the same
transaction as the change they record. Reading them back is
:mod:`workeros.audit.activity_reads` and :mod:`workeros.audit.revisions`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

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
    await conn.execute(_INSERT_REVISION, {
        "activity": activity_id,
        "collection": collection,
        "item": str(item),
        "data": dict(data) if data is not None else None,
        "delta": dict(delta) if delta is not None else None,
        "timestamp": timestamp,
    })


_INSERT_REVISION = revisions.insert()
