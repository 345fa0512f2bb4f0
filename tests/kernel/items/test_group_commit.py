"""Concurrent writes through the items service, on both dialects. On SQLite they
are group-committed (the writes queued while one runs share its database
transaction, each in a savepoint, and are acknowledged after it commits); the
promises hold on both: every write keeps its own outcome (one bad item in a
group fails alone, with its own error, and leaves nothing behind), writes apply
in the order they queued, and each has its activity and revision rows."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import sqlalchemy as sa

from workeros.accountability import Accountability
from workeros.db.tables.audit import activity, revisions
from workeros.errors import Conflict, InvalidPayload

ADMIN = Accountability(user="u-admin", role="admin", admin=True, origin="rest")


@pytest.fixture
async def items(wos_services: Any) -> Any:
    await wos_services.schema.create_collection(ADMIN, {"collection": "tags", "fields": [
        {"field": "name", "type": "string", "unique": True},
        {"field": "score", "type": "integer"},
    ]})
    return wos_services.items


def commits(db: Any) -> list[int]:
    """Counts the write transactions that commit (a list, so it can be read after)."""
    counted: list[int] = []
    engine = getattr(db, "write_engine", db.engine)

    def count(conn: Any) -> None:
        counted.append(1)

    sa.event.listen(engine.sync_engine, "commit", count)
    return counted


async def audit(db: Any, name: str = "tags") -> tuple[list[tuple], list[tuple]]:
    async with db.read() as conn:
        acts = (await conn.execute(sa.select(activity.c.id, activity.c.action, activity.c.item)
                                   .where(activity.c.collection == name, activity.c.action.like("item.%"))
                                   .order_by(activity.c.id))).all()
        revs = (await conn.execute(sa.select(revisions.c.activity, revisions.c.item, revisions.c.data)
                                   .where(revisions.c.collection == name).order_by(revisions.c.id))).all()
    return [tuple(r) for r in acts], [tuple(r) for r in revs]


async def test_concurrent_creates_keep_their_order_and_audit_rows(items: Any, wos_services: Any,
                                                                   wos_dialect: str) -> None:
    counted = commits(wos_services.db)
    created = await asyncio.gather(*(items.create(ADMIN, "tags", {"name": f"t{i}", "score": i}) for i in range(40)))
    assert [row["name"] for row in created] == [f"t{i}" for i in range(40)]
    names = {str(row["id"]): row["name"] for row in created}
    acts, revs = await audit(wos_services.db)
    assert sorted(int(a[2]) for a in acts) == sorted(int(k) for k in names) and {a[1] for a in acts} == {"item.create"}
    # each revision points at its own activity row and holds the row it created
    # (compared as sets: PostgreSQL's concurrent transactions take the two
    # tables' ids in their own orders)
    assert sorted((r[0], r[1]) for r in revs) == sorted((a[0], a[2]) for a in acts)
    assert sorted((r[1], r[2]["name"]) for r in revs) == sorted((a[2], names[a[2]]) for a in acts)
    if wos_dialect == "sqlite":
        # Queued in this order, applied in this order (PostgreSQL runs them side by side).
        assert [row["id"] for row in created] == list(range(1, 41))
        assert [a[2] for a in acts] == [str(i) for i in range(1, 41)]
        assert 1 <= len(counted) < 40, counted  # grouped: fewer commits than writes


async def test_a_bad_write_in_a_group_fails_alone(items: Any, wos_services: Any) -> None:
    await items.create(ADMIN, "tags", {"name": "taken"})
    calls = [items.create(ADMIN, "tags", {"name": "taken" if i in (3, 11) else f"n{i}", "score": i})
             for i in range(16)]
    results = await asyncio.gather(*calls, return_exceptions=True)
    for i, result in enumerate(results):
        if i in (3, 11):
            assert isinstance(result, Conflict), result
            assert result.extensions.get("field") == "name"
        else:
            assert isinstance(result, dict) and result["name"] == f"n{i}", result
    rows, _ = await items.query(ADMIN, "tags")
    assert sorted(r["name"] for r in rows) == sorted(["taken", *(f"n{i}" for i in range(16) if i not in (3, 11))])
    acts, revs = await audit(wos_services.db)
    assert len(acts) == len(revs) == len(rows)  # nothing of the failed writes was left behind
    assert {a[2] for a in acts} == {str(r["id"]) for r in rows}


async def test_a_failing_transaction_body_rolls_back_only_its_own_writes(items: Any, wos_services: Any) -> None:
    db, table = wos_services.db, wos_services.schema.current().collections["tags"].table

    async def write(i: int) -> int:
        async with db.transaction() as conn:
            await conn.execute(table.insert().values(name=f"w{i}", score=i))
            await asyncio.sleep(0)  # let the others queue behind this body
            if i % 3 == 1:
                raise InvalidPayload(f"body {i} refuses")
        return i

    results = await asyncio.gather(*(write(i) for i in range(12)), return_exceptions=True)
    for i, result in enumerate(results):
        if i % 3 == 1:
            assert isinstance(result, InvalidPayload) and result.message == f"body {i} refuses"
        else:
            assert result == i
    rows, _ = await items.query(ADMIN, "tags", None)
    assert sorted(r["name"] for r in rows) == sorted(f"w{i}" for i in range(12) if i % 3 != 1)


async def test_callbacks_run_after_the_group_commits(items: Any, wos_services: Any, wos_dialect: str) -> None:
    db, table = wos_services.db, wos_services.schema.current().collections["tags"].table
    seen: list[tuple[int, int]] = []

    async def visible() -> int:
        async with db.read() as conn:
            return int((await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one())

    async def write(i: int) -> None:
        async with db.transaction() as conn:
            await conn.execute(table.insert().values(name=f"c{i}", score=i))

            async def committed(i: int = i) -> None:
                seen.append((i, await visible()))

            db.after_commit(conn, committed)

    await asyncio.gather(*(write(i) for i in range(10)))
    # every callback ran once, after its own write was visible to other connections
    assert sorted(i for i, _ in seen) == list(range(10))
    assert all(count >= 1 for _, count in seen), seen
    if wos_dialect == "sqlite":  # in the order the writes queued
        assert [i for i, _ in seen] == list(range(10))
        assert all(count >= i + 1 for i, count in seen), seen


async def test_updates_in_a_group_apply_in_order(items: Any, wos_services: Any, wos_dialect: str) -> None:
    row = await items.create(ADMIN, "tags", {"name": "counter", "score": 0})
    await asyncio.gather(*(items.update(ADMIN, "tags", row["id"], {"score": i}) for i in range(1, 21)))
    final = (await items.get(ADMIN, "tags", row["id"]))["score"]
    acts, revs = await audit(wos_services.db)
    scores = [r[2]["score"] for r in revs]
    # every update has its revision, and the last one written is the row's state
    assert sorted(scores) == list(range(0, 21)) and scores[-1] == final
    if wos_dialect == "sqlite":  # applied in the order they queued
        assert scores == list(range(0, 21)) and final == 20
