"""The handlers of an instance's event bus and their delivery, shared by every
bus backend (memory, PostgreSQL, Redis): a backend decides how messages travel
between instances; this decides how one instance hands them to its handlers.

Messages are handed over by one task, in the order they were put, off the
publisher's (or the connection's) stack, so a slow handler never blocks
``publish``; a handler that fails is logged and the others still run.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

from workeros.hookspecs.realtime import Handler

log = logging.getLogger("workeros.bus")

#: Turns what a backend received into the message (None: nothing to deliver).
Decode = Callable[[Any], Awaitable["bytes | None"]]


class Subscribers:
    """``subscribe``/``put``/``start``/``close``. ``decode`` (optional) turns
    what is put that is not ``bytes`` (a notification's payload) into the
    message before delivery, on the delivery task."""

    def __init__(self, *, name: str, decode: Decode | None = None) -> None:
        self._handlers: dict[str, list[Handler]] = defaultdict(list)
        self._queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._decode = decode
        self._name = name
        self._task: asyncio.Task[None] | None = None

    # -- handlers -----------------------------------------------------------------------
    def subscribe(self, channel: str, handler: Handler) -> Callable[[], None]:
        """Add ``handler`` on ``channel``; returns the call that removes it."""
        self._handlers[channel].append(handler)

        def unsubscribe() -> None:
            if handler in self._handlers[channel]:
                self._handlers[channel].remove(handler)

        return unsubscribe

    def wanted(self, channel: str) -> bool:
        """Whether any handler listens on ``channel``."""
        return bool(self._handlers.get(channel))

    def channels(self) -> list[str]:
        """The channels some handler listens on."""
        return [channel for channel, handlers in self._handlers.items() if handlers]

    # -- delivery -----------------------------------------------------------------------
    def put(self, channel: str, message: Any) -> None:
        """Queue ``message`` for the handlers of ``channel`` (in order)."""
        self._queue.put_nowait((channel, message))

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self._name)

    async def _run(self) -> None:
        while True:
            channel, item = await self._queue.get()
            try:
                message = item
                if self._decode is not None and not isinstance(item, bytes):
                    try:
                        message = await self._decode(item)
                    except Exception:
                        log.exception("could not read a bus message on %s", channel)
                        continue
                if message is not None:
                    await self.deliver(channel, message)
            finally:
                self._queue.task_done()

    async def deliver(self, channel: str, message: bytes) -> None:
        """Hand ``message`` to every handler of ``channel`` now."""
        for handler in list(self._handlers.get(channel, ())):
            try:
                result = handler(message)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("handler on channel %s failed", channel)

    async def drain(self) -> None:
        """Wait until everything put so far has been handled."""
        if self._task is not None:
            await self._queue.join()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
