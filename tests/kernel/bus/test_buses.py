"""The event buses that carry events between instances: PostgreSQL
LISTEN/NOTIFY, Redis pub/sub and the SQLite table, each between two independent
instances."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa

from workeros.sdk.testing import create_pg_database, drop_pg_database, require_postgres

REDIS_URL = os.environ.get("WOS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


async def _redis_reason() -> str | None:
    import redis.asyncio as redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except Exception as exc:  # noqa: BLE001
        return f"no Redis server answers at {REDIS_URL} ({type(exc).__name__})"
    finally:
        await client.aclose()
    return None


@contextlib.asynccontextmanager
async def _pg_pair() -> AsyncIterator[tuple[Any, Any]]:
    from workeros_postgres import create as create_db
    from workeros_postgres.bus import PostgresBus

    from workeros.db import migrate

    await require_postgres()
    url = await create_pg_database()
    settings = {"database.pool_size": 2, "database.pool_timeout": 30.0, "postgres.max_overflow": 2,
                "postgres.pool_recycle_s": 60,
                "postgres.statement_cache_size": 0, "database.statement_timeout_ms": 10000,
                "postgres.idle_in_transaction_timeout_ms": 10000}
    dbs = [create_db(url, settings), create_db(url, settings)]
    await migrate.upgrade(dbs[0])
    buses = [PostgresBus(db, retention_s=300) for db in dbs]
    try:
        for bus in buses:
            await bus.start()
        yield buses[0], buses[1]
    finally:
        for bus in buses:
            await bus.close()
        for db in dbs:
            await db.close()
        await drop_pg_database(url)


@contextlib.asynccontextmanager
async def _redis_pair() -> AsyncIterator[tuple[Any, Any]]:
    from workeros_redis import RedisBus

    reason = await _redis_reason()
    if reason:
        if os.environ.get("WOS_TEST_REQUIRE_POSTGRES"):
            pytest.fail(reason)
        pytest.skip(reason)
    prefix = f"wos-test-{os.getpid()}-{id(object())}:"
    buses = [RedisBus(REDIS_URL, prefix), RedisBus(REDIS_URL, prefix)]
    try:
        for bus in buses:
            await bus.start()
        yield buses[0], buses[1]
    finally:
        for bus in buses:
            await bus.close()


@contextlib.asynccontextmanager
async def _sqlite_pair() -> AsyncIterator[tuple[Any, Any]]:
    import tempfile

    from workeros_sqlite import create as create_db
    from workeros_sqlite.bus import SqliteBus

    from workeros.db import migrate

    settings = {"database.pool_size": 2, "database.pool_timeout": 30.0, "sqlite.busy_timeout_ms": 10000,
                "sqlite.synchronous": "NORMAL", "sqlite.driver": "sqlite3"}
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bus.db"
        dbs = [create_db(url, settings), create_db(url, settings)]
        await migrate.upgrade(dbs[0])
        buses = [SqliteBus(db, poll_ms=20) for db in dbs]
        try:
            for bus in buses:
                await bus.start()
            yield buses[0], buses[1]
        finally:
            for bus in buses:
                await bus.close()
            for db in dbs:
                await db.close()


PAIRS = {"postgres": _pg_pair, "redis": _redis_pair, "sqlite": _sqlite_pair}


@pytest.fixture(params=sorted(PAIRS))
async def pair(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Any, Any]]:
    async with PAIRS[request.param]() as buses:
        yield buses


async def _collect(bus: Any, channel: str, n: int) -> tuple[list[bytes], asyncio.Event]:
    """Subscribe on ``bus``; the event is set once ``n`` messages arrived."""
    got: list[bytes] = []
    done = asyncio.Event()

    def handler(message: bytes) -> None:
        got.append(message)
        if len(got) >= n:
            done.set()

    bus.subscribe(channel, handler)
    await bus.wait_listening(channel)
    return got, done


async def test_every_instance_receives_in_publish_order(pair: tuple[Any, Any]) -> None:
    a, b = pair
    got_a, done_a = await _collect(a, "items", 50)
    got_b, done_b = await _collect(b, "items", 50)
    other, _ = await _collect(b, "schema", 1)
    sent = [f'{{"n": {i}}}'.encode() for i in range(50)]
    for message in sent:
        await a.publish("items", message)
    await asyncio.wait_for(asyncio.gather(done_a.wait(), done_b.wait()), 10)
    assert got_a == sent  # the publisher's own instance too
    assert got_b == sent
    assert other == []  # another channel hears nothing


async def test_large_messages_arrive_whole(pair: tuple[Any, Any]) -> None:
    a, b = pair
    got, done = await _collect(b, "items", 2)
    big = b'{"x": "' + b"y" * 200_000 + b'"}'
    await a.publish("items", big)
    await a.publish("items", b'{"small": 1}')
    await asyncio.wait_for(done.wait(), 10)
    assert got == [big, b'{"small": 1}']


async def test_a_burst_arrives_in_order_and_closing_flushes_what_was_published(pair: tuple[Any, Any]) -> None:
    """Many writers publishing at once (as concurrent requests do), large and small
    messages mixed: every message arrives once, in publish order; and what was
    published just before the publisher closes still reaches the other instance."""
    a, b = pair
    sent = [(b'{"big": "' + b"y" * 9000 + b'", "n": %d}' % i) if i % 50 == 7 else b'{"n": %d}' % i
            for i in range(300)]
    got, done = await _collect(b, "items", len(sent))
    await asyncio.gather(*(a.publish("items", message) for message in sent))
    await asyncio.wait_for(done.wait(), 20)
    assert got == sent

    tail = [b'{"last": %d}' % i for i in range(20)]
    more, more_done = await _collect(b, "schema", len(tail))
    for message in tail:
        await a.publish("schema", message)
    await a.close()
    await asyncio.wait_for(more_done.wait(), 10)
    assert more == tail


async def test_unsubscribed_handler_hears_nothing_more(pair: tuple[Any, Any]) -> None:
    a, b = pair
    got: list[bytes] = []
    stop = b.subscribe("items", got.append)
    await b.wait_listening("items")
    other, done = await _collect(b, "items", 2)
    await a.publish("items", b"1")
    await asyncio.sleep(0)
    while len(other) < 1:
        await asyncio.sleep(0.01)
    stop()
    await a.publish("items", b"2")
    await asyncio.wait_for(done.wait(), 10)
    assert got == [b"1"]


async def test_postgres_bus_reconnects_after_the_connection_is_killed() -> None:
    async with _pg_pair() as (a, b):
        got, _ = await _collect(b, "items", 1)
        async with a.database.engine.connect() as conn:
            await conn.execute(sa.select(sa.func.pg_terminate_backend(b._conn.get_server_pid())))
            await conn.commit()
        for _ in range(200):  # wait for the listener to come back
            await asyncio.sleep(0.05)
            if b._conn is not None and "items" in b._listening and not b._conn.is_closed():
                break
        await b.wait_listening("items")
        for _ in range(100):
            await a.publish("items", b"after")
            await asyncio.sleep(0.05)
            if got:
                break
        assert got and got[0] == b"after"


async def test_postgres_bus_is_chosen_for_a_postgres_database(wos_dialect: str, wos_settings: Any) -> None:
    from workeros.http.app import prepare

    _, registry = prepare(wos_settings)
    assert registry.get("bus").name == ("postgres" if wos_dialect == "postgres" else "sqlite")


async def test_sqlite_bus_writes_nothing_while_alone() -> None:
    """A lone instance on a SQLite database keeps its events to itself (no row per
    event); once a second instance has announced itself, events are written and
    reach it."""
    from workeros_sqlite import create as create_db
    from workeros_sqlite.bus import ALIVE, SqliteBus

    from workeros.api import bus_messages
    from workeros.db import migrate

    settings = {"database.pool_size": 2, "database.pool_timeout": 30.0, "sqlite.busy_timeout_ms": 10000,
                "sqlite.synchronous": "NORMAL", "sqlite.driver": "sqlite3"}
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bus.db"
        db_a, db_b = create_db(url, settings), create_db(url, settings)
        await migrate.upgrade(db_a)
        a = SqliteBus(db_a, poll_ms=20)
        b = SqliteBus(db_b, poll_ms=20)
        try:
            await a.start()
            mine, _ = await _collect(a, "items", 10)
            for i in range(10):
                await a.publish("items", b"%d" % i)
            await a.flush()
            assert len(mine) == 10  # its own handlers still hear every event

            async def written() -> int:
                async with db_a.read() as conn:
                    return (await conn.execute(sa.select(sa.func.count()).select_from(bus_messages)
                                               .where(bus_messages.c.channel != ALIVE))).scalar_one()

            assert await written() == 0
            await b.start()
            got, done = await _collect(b, "items", 1)
            await a.publish("items", b"for b")
            await asyncio.wait_for(done.wait(), 10)
            assert got == [b"for b"] and await written() == 1
        finally:
            for bus in (a, b):
                await bus.close()
            for db in (db_a, db_b):
                await db.close()
