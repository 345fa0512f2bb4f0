"""The SQLite event bus: the processes on one SQLite database (``workeros serve
--workers N``, a second server, CLI commands such as ``schema apply``,
``import`` or ``create-user``) share item, schema and permission events through
a table of that database, with nothing else to run.

- ``publish`` hands the message to this process's own handlers at once (in
  publish order) and queues it for the others; one sender task writes what has
  queued up to ``wos_bus_messages`` in one write transaction per batch (a write
  never waits on the bus). Each row names the instance that sent it, and an
  instance skips its own. Closing the bus flushes it, so a CLI command's events
  are in the table before the command exits.
- Every ``sqlite.bus_poll_ms`` milliseconds one task reads the rows newer than
  the last it has seen (one indexed range read on the primary key; the ids grow
  in commit order because SQLite runs one write transaction at a time) and hands
  them to the handlers in that order.
- A process alone on the database writes nothing: every instance announces
  itself with a row when it starts (before it loads its caches) and every few
  seconds after, and the sender writes a batch only when another instance has
  announced itself lately (a read, no write lock). A change committed before a
  new instance announced itself is in the caches it loads; one committed after
  is sent to it. A single server therefore pays one read per batch, and no
  write, for the bus.
- Rows older than ``sqlite.bus_retention_s`` are pruned (the newest row is always
  kept, so ids never go back). A process that could not read for longer than
  that misses what was pruned; realtime clients see it as a gap.

An in-memory database (``sqlite:///:memory:``) has no other process to talk to:
the bus then only delivers to this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from workeros.api import Database, Outbox, Subscribers, bus_messages, now
from workeros.hookspecs.lifecycle import ConfigKey
from workeros.hookspecs.realtime import BusBackend, Handler

log = logging.getLogger("workeros.bus.sqlite")

CONFIG_KEYS = (
    ConfigKey("sqlite.bus_poll_ms", "int", 100,
              "How often the SQLite event bus reads other processes' events, in milliseconds"),
    ConfigKey("sqlite.bus_retention_s", "int", 60,
              "Seconds events stay in wos_bus_messages for processes that fall behind"),
)
#: How many rows one read takes at most (the rest come on the next read, at once).
READ_BATCH = 500
SEP = b":"
#: The channel of the rows by which instances announce themselves.
ALIVE = "__alive__"
#: How often an instance announces itself, and how long it counts as alive after.
HEARTBEAT_S = 2.0
ALIVE_FOR_S = 30.0


class SqliteBus:
    def __init__(self, database: Database, *, poll_ms: int = 100, retention_s: int = 60) -> None:
        self.database = database
        self.poll_s = max(poll_ms, 1) / 1000
        self.retention_s = retention_s
        self.shared = ":memory:" not in database.url and database.url.rstrip("/") not in ("sqlite:", "sqlite+aiosqlite:")
        self._instance = uuid.uuid4().hex[:16].encode()
        self._subscribers = Subscribers(name="workeros-sqlite-bus-deliver")
        self._outbox: Outbox[tuple[str, bytes]] = Outbox(self._send, name="workeros-sqlite-bus-send")
        self._last_id = 0
        self._task: asyncio.Task[None] | None = None
        self._last_prune = 0.0
        self._started = asyncio.Event()
        self._heartbeat: asyncio.Task[None] | None = None
        #: until when (monotonic) another instance is known to be alive without asking
        self._others_until = 0.0

    # -- lifecycle --------------------------------------------------------------------
    async def start(self) -> None:
        self._subscribers.start()
        if self.shared:
            async with self.database.read() as conn:
                self._last_id = (await conn.execute(sa.select(sa.func.max(bus_messages.c.id)))).scalar() or 0
            await self._announce()
            self._task = asyncio.create_task(self._poll(), name="workeros-sqlite-bus-read")
            self._heartbeat = asyncio.create_task(self._announce_every(), name="workeros-sqlite-bus-alive")
        self._started.set()

    async def close(self) -> None:
        await self._outbox.close()  # what was published before shutdown still goes out
        for task in (self._task, self._heartbeat):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._heartbeat = None
        await self._subscribers.close()

    # -- subscribe and publish ----------------------------------------------------------
    def subscribe(self, channel: str, handler: Handler) -> Callable[[], None]:
        return self._subscribers.subscribe(channel, handler)

    async def wait_listening(self, channel: str) -> None:
        """Listening starts with :meth:`start` (tests)."""
        await self._started.wait()

    async def publish(self, channel: str, message: bytes) -> None:
        if self._subscribers.wanted(channel):
            self._subscribers.put(channel, message)
        if self.shared:
            self._outbox.put((channel, message))

    async def flush(self) -> None:
        """Wait until every message published so far is in the table."""
        await self._outbox.flush()

    async def drain(self) -> None:
        """Wait until this process's handlers have handled what reached them (tests)."""
        await self._subscribers.drain()

    async def _others_alive(self) -> bool:
        """Whether another instance announced itself within ``ALIVE_FOR_S``
        (remembered for a few seconds once seen: it keeps announcing itself)."""
        if time.monotonic() < self._others_until:
            return True
        since = now() - dt.timedelta(seconds=ALIVE_FOR_S)
        async with self.database.read() as conn:
            alive = (await conn.execute(sa.select(bus_messages.c.payload).where(
                bus_messages.c.channel == ALIVE, bus_messages.c.created_at > since))).scalars().all()
        if any(bytes(payload).partition(SEP)[0] != self._instance for payload in alive):
            self._others_until = time.monotonic() + 2 * HEARTBEAT_S
            return True
        return False

    async def _send(self, batch: list[tuple[str, bytes]]) -> None:
        if not await self._others_alive():
            return  # nobody else is on this database
        t = now()
        rows = [{"channel": channel, "payload": self._instance + SEP + message, "created_at": t}
                for channel, message in batch]
        async with self.database.transaction() as conn:
            await conn.execute(bus_messages.insert(), rows)
            if time.monotonic() - self._last_prune > min(30.0, self.retention_s):
                self._last_prune = time.monotonic()
                newest = sa.select(sa.func.max(bus_messages.c.id)).scalar_subquery()
                await conn.execute(bus_messages.delete().where(
                    bus_messages.c.created_at < t - dt.timedelta(seconds=self.retention_s),
                    bus_messages.c.id < newest))

    async def _announce(self) -> None:
        async with self.database.transaction() as conn:
            await conn.execute(bus_messages.insert().values(channel=ALIVE, payload=self._instance + SEP,
                                                            created_at=now()))

    async def _announce_every(self) -> None:
        failing = False
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            try:
                await self._announce()
                failing = False
            except Exception as exc:  # noqa: BLE001 - retried on the next beat
                if not failing:
                    log.warning("event bus could not announce this instance (%s)", type(exc).__name__)
                failing = True

    # -- receive ------------------------------------------------------------------------
    async def _poll(self) -> None:
        query = (sa.select(bus_messages.c.id, bus_messages.c.channel, bus_messages.c.payload)
                 .where(bus_messages.c.id > sa.bindparam("last")).order_by(bus_messages.c.id).limit(READ_BATCH))
        failing = False
        while True:
            try:
                async with self.database.read() as conn:
                    rows = (await conn.execute(query, {"last": self._last_id})).all()
                failing = False
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a failed read is retried on the next tick
                if not failing:
                    log.warning("event bus read failed (%s); retrying", type(exc).__name__)
                failing = True
                rows = []
            for key, channel, payload in rows:
                self._last_id = key
                sender, _, message = bytes(payload).partition(SEP)
                if sender == self._instance:
                    continue
                if channel == ALIVE:
                    self._others_until = time.monotonic() + 2 * HEARTBEAT_S
                elif self._subscribers.wanted(channel):
                    self._subscribers.put(channel, message)
            if len(rows) < READ_BATCH:
                await asyncio.sleep(self.poll_s)


def create(settings: Any, database: Database) -> SqliteBus:
    return SqliteBus(database, poll_ms=settings["sqlite.bus_poll_ms"], retention_s=settings["sqlite.bus_retention_s"])


BUS = BusBackend(name="sqlite", factory=create, priority=10, dialects=("sqlite",),
                 description="A table of the SQLite database, polled: every process on that database")
