"""The in-process event bus: the default on one machine."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from workeros.hookspecs import hookimpl
from workeros.hookspecs.realtime import BusBackend, Handler

log = logging.getLogger("workeros.bus")


class MemoryBus:
    """Delivers to handlers in this process, in publish order, off the
    publisher's stack (a slow handler never blocks ``publish``)."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = defaultdict(list)
        self._queue: asyncio.Queue[tuple[str, bytes]] | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._run(), name="workeros-memory-bus")

    async def publish(self, channel: str, message: bytes) -> None:
        if self._queue is None:
            raise RuntimeError("bus not started")
        self._queue.put_nowait((channel, message))

    def subscribe(self, channel: str, handler: Handler) -> Callable[[], None]:
        self._handlers[channel].append(handler)

        def unsubscribe() -> None:
            if handler in self._handlers[channel]:
                self._handlers[channel].remove(handler)

        return unsubscribe

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            channel, message = await self._queue.get()
            try:
                for handler in list(self._handlers.get(channel, ())):
                    try:
                        result = handler(message)
                        if inspect.isawaitable(result):
                            await result
                    except Exception:
                        log.exception("handler on channel %s failed", channel)
            finally:
                self._queue.task_done()

    async def drain(self) -> None:
        """Wait until every published message has been handled (tests)."""
        if self._queue is not None:
            await self._queue.join()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None


def _create(settings: Any, database: Any) -> MemoryBus:
    return MemoryBus()


@hookimpl
def workeros_register_event_buses() -> list[BusBackend]:
    return [BusBackend(name="memory", factory=_create, priority=0,
                       description="In-process; one instance only")]
