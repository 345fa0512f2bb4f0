"""Background work of one app: tasks the response must not wait for (action
hooks, deliveries), kept so that shutdown can let them finish."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from typing import Any

log = logging.getLogger("workeros.background")


class Background:
    """Spawns tasks, remembers them until they end, and at :meth:`close` waits
    for them (up to a timeout) before cancelling what is left."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, work: Awaitable[Any], name: str | None = None) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(work)
        if name:
            task.set_name(name)
        self.tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", task.get_name(), exc_info=task.exception())

    async def drain(self, timeout: float | None = None) -> None:
        """Wait until every task spawned so far (and any they spawn) has ended."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while self.tasks:
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return
            await asyncio.wait(set(self.tasks), timeout=remaining)

    async def close(self, timeout: float = 5.0) -> None:
        await self.drain(timeout)
        for task in list(self.tasks):
            task.cancel()
        for task in list(self.tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
