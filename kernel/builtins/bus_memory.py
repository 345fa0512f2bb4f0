"""The in-process event bus: the default on one machine."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from workeros.bus.subscribers import Subscribers
from workeros.hookspecs import hookimpl
from workeros.hookspecs.realtime import BusBackend, Handler


class MemoryBus:
    """Delivers to handlers in this process, in publish order, off the
    publisher's stack (a slow handler never blocks ``publish``)."""

    def __init__(self) -> None:
        self._subscribers = Subscribers(name="workeros-memory-bus")
        self._started = False

    async def start(self) -> None:
        self._subscribers.start()
        self._started = True

    async def publish(self, channel: str, message: bytes) -> None:
        if not self._started:
            raise RuntimeError("bus not started")
        self._subscribers.put(channel, message)

    def subscribe(self, channel: str, handler: Handler) -> Callable[[], None]:
        return self._subscribers.subscribe(channel, handler)

    async def drain(self) -> None:
        """Wait until every published message has been handled (tests)."""
        await self._subscribers.drain()

    async def close(self) -> None:
        await self._subscribers.close()
        self._started = False


def _create(settings: Any, database: Any) -> MemoryBus:
    return MemoryBus()


@hookimpl
def workeros_register_event_buses() -> list[BusBackend]:
    return [BusBackend(name="memory", factory=_create, priority=0,
                       description="In-process; one instance only")]
