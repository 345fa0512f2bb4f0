"""Activity: one row per action (``item.create``, ``auth.login``...), written in
the same transaction as the change it records."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from workeros.accountability import Accountability
from workeros.db.tables.audit import activity


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


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
