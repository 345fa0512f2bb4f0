"""An ordered outbox for event-bus backends that talk to another server.

``publish`` of a bus backend appends to the outbox and returns; one task sends
what has queued since its last round as one batch (``send(batch)``), so
messages leave in publish order, a write never waits on the bus, and a burst
of writes costs one round trip per batch instead of one (and one pooled
connection) per message. :meth:`flush` waits for everything queued so far,
which a backend's ``close`` does before letting go of its connections.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

log = logging.getLogger("workeros.bus")

T = TypeVar("T")


class Outbox(Generic[T]):
    def __init__(self, send: Callable[[list[T]], Awaitable[None]], *, name: str) -> None:
        self._send_batch = send
        self._name = name
        self._pending: list[T] = []
        self._sending = False
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._pending)

    def put(self, item: T) -> None:
        self._pending.append(item)
        self._ensure_sender()

    def _ensure_sender(self) -> asyncio.Task[None]:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=self._name)
        return self._task

    async def _run(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            self._sending = True
            try:
                await self._send_batch(batch)
            except asyncio.CancelledError:
                raise
            except Exception:  # the writes are committed; a bus failure must not stop the sender
                log.exception("could not send %d bus message(s); other instances miss them", len(batch))
            finally:
                self._sending = False

    async def flush(self) -> None:
        """Wait until every item put so far has been sent (or failed to send)."""
        while self._pending or self._sending:
            await asyncio.wait({self._ensure_sender()}, timeout=0.05)

    async def close(self, timeout: float = 5.0) -> None:
        """Flush (for up to ``timeout`` seconds), then stop the sender."""
        try:
            await asyncio.wait_for(self.flush(), timeout)
        except Exception:  # noqa: BLE001 - a timeout or a lost server: closing regardless
            log.warning("closing the event bus with %d message(s) unsent", len(self._pending))
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - already reported by _run
                pass
