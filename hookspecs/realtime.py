"""Realtime: transports that stream item events, and the bus that carries them.

The event bus carries every event (item changes, schema and permission changes)
between instances. Its contract: every handler subscribed to a channel, on every
instance including the publishing one, receives each published message once, in
publish order per publisher.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from . import hookspec
from ._entries import Backend
from .transport import Transport

Handler = Callable[[bytes], "Awaitable[None] | None"]


class EventBus(Protocol):
    async def start(self) -> None:
        """Connect; called once before the first publish."""

    async def publish(self, channel: str, message: bytes) -> None:
        """Send ``message`` to every subscriber of ``channel`` on every instance."""

    def subscribe(self, channel: str, handler: Handler) -> Callable[[], None]:
        """Call ``handler`` for each message on ``channel``; returns an unsubscribe."""

    async def close(self) -> None:
        """Disconnect; pending messages may be dropped."""


@dataclass(frozen=True)
class RealtimeTransport(Transport):
    """A realtime transport (SSE, WebSocket), mounted like any :class:`Transport`."""


@dataclass(frozen=True)
class BusBackend(Backend):
    """An event bus. ``factory(settings, database) -> EventBus`` (may be awaitable).

    ``dialects``: when not empty, the bus is auto-selected only if the active
    database dialect is one of these (a bus built on the database itself, such as
    PostgreSQL LISTEN/NOTIFY). Naming it in ``realtime.bus`` still selects it.
    """

    dialects: tuple[str, ...] = ()


@hookspec
def workeros_register_realtime_transports() -> Sequence[RealtimeTransport]:
    """Register realtime transports.

    Called once per boot. Every installed realtime transport is mounted. On a runtime
    that cannot hold streams (``Runtime.realtime`` false) none is mounted.

    :return: realtime transport entries. Not firstresult.

    .. versionadded:: 0.1

    Example::

        @hookimpl
        def workeros_register_realtime_transports():
            return [RealtimeTransport(name="sse", prefix="/api/realtime/items", factory=build_sse_app)]
    """


@hookspec
def workeros_register_event_buses() -> Sequence[BusBackend]:
    """Register event buses that fan events out across instances.

    Called once per boot. The bus named by ``realtime.bus`` is used; without it the
    available bus with the highest priority (the in-process bus has priority 0 and
    is always available).

    A bus delivers every message to every instance, the publisher included.
    ``publish`` should not wait on another server: hand the message to this
    instance's own handlers at once and send it to the others through
    :class:`workeros.bus.outbox.Outbox` (ordered batches, flushed by ``close``), as the
    PostgreSQL and Redis buses do.

    :return: bus entries. Not firstresult.

    .. versionadded:: 0.1

    Example::

        @hookimpl
        def workeros_register_event_buses():
            return [BusBackend(name="redis", factory=RedisBus.from_settings, check=_redis_missing)]
    """
