"""Revisions: the state of an item after each change and what changed, written in
the same transaction as the change."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from workeros.tables.audit import revisions


async def record(
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
    await conn.execute(
        revisions.insert().values(
            activity=activity_id,
            collection=collection,
            item=str(item),
            data=dict(data) if data is not None else None,
            delta=dict(delta) if delta is not None else None,
            timestamp=timestamp,
        )
    )
