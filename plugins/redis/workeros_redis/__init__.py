"""Redis pub/sub as the event bus, for several instances that share a Redis
server (set ``realtime.bus = "redis"`` and ``redis.url``).

One connection subscribes to ``<redis.prefix><channel>`` for every channel a
handler listens on; one task hands messages to the handlers in the order Redis
delivers them. Published messages reach every instance, the publisher included:
its own handlers get them at publish time, without the round trip through Redis
(each message carries the sending instance's id and an instance skips its own
echo), so a write's event is in this instance's realtime hub before the write
has answered.
When the connection drops the subscriber reconnects with backoff and subscribes
again; messages published while it was away are lost (Redis pub/sub keeps
nothing), which realtime clients see as a gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import uuid
from collections.abc import Callable
from typing import Any

from workeros.api import Outbox, Subscribers
from workeros.hookspecs import hookimpl
from workeros.hookspecs.lifecycle import ConfigKey
from workeros.hookspecs.realtime import BusBackend, Handler

log = logging.getLogger("workeros.bus.redis")


def _redis_missing() -> str | None:
    # Looked up, not imported: redis loads at the bus's start, not in every
    # process that has the plugin installed.
    if importlib.util.find_spec("redis") is None:
        return "the redis package is not installed (pip install workeros[redis])"
    return None


class RedisBus:
    def __init__(self, url: str, prefix: str = "workeros:") -> None:
        self.url = url
        self.prefix = prefix
        self._client: Any = None
        self._pubsub: Any = None
        self._task: asyncio.Task[None] | None = None
        self._subscribed: set[str] = set()
        self._closing = False
        self._instance = uuid.uuid4().hex[:16].encode()
        #: the handlers, and the messages to hand them in order: remote and own
        self._subscribers = Subscribers(name="workeros-redis-bus-deliver")
        #: messages published here and not sent to the other instances yet
        self._outbox: Outbox[tuple[str, bytes]] = Outbox(self._send, name="workeros-redis-bus-send")

    async def start(self) -> None:
        import redis.asyncio as redis

        self._client = redis.Redis.from_url(self.url)
        await self._client.ping()
        await self._open_pubsub()
        self._task = asyncio.create_task(self._run(), name="workeros-redis-bus")
        self._subscribers.start()

    async def _open_pubsub(self) -> None:
        self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        self._subscribed = set()
        channels = [self.prefix + c for c in self._subscribers.channels()]
        # A pubsub connection needs a subscription before it can be read.
        await self._pubsub.subscribe(self.prefix + "__workeros__", *channels)
        self._subscribed = {c[len(self.prefix):] for c in channels}

    def subscribe(self, channel: str, handler: Handler) -> Callable[[], None]:
        unsubscribe = self._subscribers.subscribe(channel, handler)
        if self._pubsub is not None and channel not in self._subscribed:
            self._subscribed.add(channel)
            asyncio.get_running_loop().create_task(self._pubsub.subscribe(self.prefix + channel))
        return unsubscribe

    async def wait_listening(self, channel: str) -> None:
        """Wait until this instance's subscription to ``channel`` is active."""
        while self._pubsub is None or (self.prefix + channel).encode() not in self._pubsub.channels:
            await asyncio.sleep(0.01)

    async def publish(self, channel: str, message: bytes) -> None:
        """Hand ``message`` to this instance's handlers and queue it for the others
        (see :mod:`workeros.bus.outbox`: sent in order, one pipeline per batch, so a
        write does not wait on Redis and a burst of writes uses one connection
        instead of one each)."""
        if self._subscribers.wanted(channel):
            self._subscribers.put(channel, message)
        self._outbox.put((channel, message))

    async def flush(self) -> None:
        """Wait until every message published so far has been sent."""
        await self._outbox.flush()

    async def _send(self, batch: list[tuple[str, bytes]]) -> None:
        async with self._client.pipeline(transaction=False) as pipe:
            for channel, message in batch:
                pipe.publish(self.prefix + channel, self._instance + b":" + message)
            await pipe.execute()

    async def _run(self) -> None:
        delay = 0.1
        while not self._closing:
            try:
                message = await self._pubsub.get_message(timeout=1.0)
                delay = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a lost connection is retried
                log.warning("event bus connection lost (%s); reconnecting in %.1fs", type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                with contextlib.suppress(Exception):
                    await self._pubsub.aclose()
                with contextlib.suppress(Exception):
                    await self._open_pubsub()
                continue
            if not message or message.get("type") != "message":
                continue
            sender, _, data = bytes(message["data"]).partition(b":")
            if sender != self._instance:  # our own went to our handlers at publish time
                self._subscribers.put(message["channel"].decode()[len(self.prefix):], data)

    async def close(self) -> None:
        if self._client is not None:
            await self._outbox.close()  # what was published before shutdown still goes out
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._subscribers.close()
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
        if self._client is not None:
            with contextlib.suppress(Exception):
                await self._client.aclose()


def create(settings: Any, database: Any) -> RedisBus:
    return RedisBus(settings["redis.url"], settings["redis.prefix"])


@hookimpl
def workeros_register_config_keys() -> list[ConfigKey]:
    return [
        ConfigKey("redis.url", "str", "redis://127.0.0.1:6379/0", "Redis server for the event bus"),
        ConfigKey("redis.prefix", "str", "workeros:", "Prefix of the Redis channels (several deployments, one Redis)"),
    ]


@hookimpl
def workeros_register_event_buses() -> list[BusBackend]:
    # Priority below the in-process bus: Redis is used when realtime.bus names it.
    return [BusBackend(name="redis", factory=create, priority=-10, check=_redis_missing,
                       description="Redis pub/sub; set realtime.bus = redis")]
