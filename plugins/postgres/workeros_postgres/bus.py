"""The PostgreSQL event bus: LISTEN/NOTIFY, so every instance on one database
shares item, schema and permission events without another server.

- One dedicated asyncpg connection LISTENs on ``wos_<channel>`` for every
  subscribed channel; it reconnects with backoff when the connection drops and
  listens again (messages published while it was away are lost — realtime
  clients see a gap and re-fetch).
- ``publish`` queues the message and returns; one sender task sends what is queued
  in batches (one transaction, one ``pg_notify`` statement per batch) through the
  database pool, so a write never waits on the bus. Closing the bus flushes it.
  A message over NOTIFY's 8000-byte limit is stored in ``wos_bus_messages`` and the
  notification carries its id; receivers read it back. Stored messages are
  pruned after ``postgres.bus_retention_s``.
- Notifications arrive in commit order; one receiving task hands them to the
  handlers in that order, off the connection's callback.
- A message reaches the publishing instance's own handlers straight away (the
  same receiving task, in publish order), not through the database: each
  notification names the instance that sent it (``=<instance>:<body>``) and an
  instance skips its own. So an event is in this instance's realtime hub before
  the write that caused it has answered, and a client that writes, then
  subscribes, never receives that write's event after its initial rows.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import logging
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from workeros.api import Outbox, Subscribers, bus_messages
from workeros.hookspecs.lifecycle import ConfigKey
from workeros.hookspecs.realtime import BusBackend, Handler

if TYPE_CHECKING:
    import asyncpg

log = logging.getLogger("workeros.bus.postgres")

PREFIX = "wos_"
#: NOTIFY payloads must stay under 8000 bytes; base64 grows by a third.
INLINE_LIMIT = 5800
INLINE, REFERENCE = "=", "@"

CONFIG_KEYS = (
    ConfigKey("postgres.bus_retention_s", "int", 300,
              "Seconds large bus messages stay in wos_bus_messages for slow receivers"),
)


def asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class PostgresBus:
    def __init__(self, database: Any, *, retention_s: int = 300) -> None:
        self.database = database
        self.retention_s = retention_s
        self._conn: asyncpg.Connection | None = None  # the LISTEN connection
        #: handlers; what is put is a notification's payload or a message this instance published
        self._subscribers = Subscribers(name="workeros-pg-bus-deliver", decode=self._decode)
        self._instance = uuid.uuid4().hex[:16]
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._connected = asyncio.Event()
        self._listening: set[str] = set()
        self._last_prune = 0.0
        #: messages published here and not sent to the other instances yet
        self._outbox: Outbox[tuple[str, bytes]] = Outbox(self._notify, name="workeros-pg-bus-send")
        self._listen_lock = asyncio.Lock()

    # -- lifecycle --------------------------------------------------------------------
    async def start(self) -> None:
        await self._connect()
        self._subscribers.start()

    async def _connect(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(asyncpg_dsn(self.database.url))
        conn.add_termination_listener(self._on_lost)
        self._conn = conn
        self._listening = set()
        for channel in self._subscribers.channels():
            await self._listen(channel)
        self._connected.set()

    def _on_lost(self, conn: asyncpg.Connection) -> None:
        if self._closing or conn is not self._conn:
            return
        log.warning("event bus connection lost; reconnecting")
        self._connected.clear()
        self._conn = None
        self._tasks.append(asyncio.create_task(self._reconnect(), name="workeros-pg-bus-reconnect"))

    async def _reconnect(self) -> None:
        delay = 0.1
        while not self._closing:
            try:
                await self._connect()
                log.info("event bus reconnected")
                return
            except Exception as exc:  # noqa: BLE001 - any failure to connect is retried
                log.warning("event bus reconnect failed (%s); retrying in %.1fs", type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def close(self) -> None:
        await self._outbox.close()  # what was published before shutdown still goes out
        self._closing = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self._subscribers.close()
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close(timeout=2)
            self._conn = None

    # -- subscribe ----------------------------------------------------------------------
    def subscribe(self, channel: str, handler: Handler) -> Callable[[], None]:
        first = not self._subscribers.wanted(channel)
        unsubscribe = self._subscribers.subscribe(channel, handler)
        if first and self._conn is not None:
            self._tasks.append(asyncio.create_task(self._listen(channel)))
        return unsubscribe

    async def _listen(self, channel: str) -> None:
        async with self._listen_lock:  # one command at a time on the connection
            conn = self._conn
            if channel in self._listening or conn is None:
                return
            await conn.add_listener(PREFIX + channel, self._on_notify)
            self._listening.add(channel)

    async def wait_listening(self, channel: str) -> None:
        """Wait until this instance LISTENs on ``channel`` (tests, startup)."""
        while channel not in self._listening:
            await asyncio.sleep(0.01)

    def _on_notify(self, conn: Any, pid: int, pg_channel: str, payload: str) -> None:
        sender, _, _ = payload[1:].partition(":")
        if sender != self._instance:  # our own went to our handlers at publish time
            self._subscribers.put(pg_channel[len(PREFIX):], payload)

    async def _decode(self, payload: str) -> bytes | None:
        kind, (_, _, body) = payload[:1], payload[1:].partition(":")
        if kind == INLINE:
            return base64.b64decode(body)
        if kind == REFERENCE:
            async with self.database.engine.connect() as conn:
                row = (await conn.execute(sa.select(bus_messages.c.payload)
                                          .where(bus_messages.c.id == int(body)))).first()
            if row is None:
                log.warning("bus message %s expired before it was read", body)
                return None
            return bytes(row[0])
        log.warning("ignoring a foreign notification on a workeros channel")
        return None

    # -- publish ------------------------------------------------------------------------
    async def publish(self, channel: str, message: bytes) -> None:
        """Hand ``message`` to this instance's handlers and queue it for the others
        (see :mod:`workeros.bus.outbox`: sent in order, one transaction and one
        ``pg_notify`` statement per batch; a write never waits on the bus)."""
        if self._subscribers.wanted(channel):
            self._subscribers.put(channel, message)
        self._outbox.put((channel, message))

    async def flush(self) -> None:
        """Wait until every message published so far has been sent."""
        await self._outbox.flush()

    async def _notify(self, batch: list[tuple[str, bytes]]) -> None:
        channels, payloads = [], []
        async with self.database.engine.connect() as conn:
            for channel, message in batch:
                encoded = base64.b64encode(message).decode("ascii")
                if len(encoded) <= INLINE_LIMIT:
                    payload = f"{INLINE}{self._instance}:{encoded}"
                else:
                    now = dt.datetime.now(dt.UTC)
                    result = await conn.execute(bus_messages.insert().values(
                        channel=channel, payload=message, created_at=now))
                    payload = f"{REFERENCE}{self._instance}:{result.inserted_primary_key[0]}"
                    if now.timestamp() - self._last_prune > self.retention_s / 4:
                        self._last_prune = now.timestamp()
                        await conn.execute(bus_messages.delete().where(
                            bus_messages.c.created_at < now - dt.timedelta(seconds=self.retention_s)))
                channels.append(PREFIX + channel)
                payloads.append(payload)
            # one statement for the batch; unnest yields the rows in array order,
            # and notifications of one transaction are delivered in the order sent
            await conn.execute(_NOTIFY_MANY, {"channels": channels, "payloads": payloads})
            await conn.commit()


_NOTIFY_MANY = sa.text("SELECT pg_notify(c, p) FROM unnest(CAST(:channels AS text[]), CAST(:payloads AS text[])) "
                       "AS t(c, p)")


def create(settings: Any, database: Any) -> PostgresBus:
    return PostgresBus(database, retention_s=int(settings["postgres.bus_retention_s"]))


BUS = BusBackend(name="postgres", factory=create, priority=10, dialects=("postgres",),
                 description="PostgreSQL LISTEN/NOTIFY; chosen by default when the database is PostgreSQL")
