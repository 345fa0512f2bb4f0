"""Events on top of the active bus: JSON payloads on named channels.

The items service publishes item changes after commit; the schema and
permission services publish invalidations. Because the bus delivers to every
instance including the publisher, caches react in one place: their handler.
"""

from __future__ import annotations

import inspect
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from workeros.hookspecs.realtime import EventBus

log = logging.getLogger("workeros.events")

ITEMS = "items"
SCHEMA = "schema"
PERMISSIONS = "permissions"

Listener = Callable[[dict[str, Any]], "Awaitable[None] | None"]


class Events:
    def __init__(self, bus: EventBus) -> None:
        self.bus = bus
        #: Identifies this process in messages, so a handler can tell its own.
        self.instance = uuid.uuid4().hex

    async def publish(self, channel: str, payload: dict[str, Any]) -> None:
        message = {"instance": self.instance, **payload}
        await self.bus.publish(channel, orjson.dumps(message, default=str))

    def subscribe(self, channel: str, listener: Listener) -> Callable[[], None]:
        async def handler(raw: bytes) -> None:
            try:
                result = listener(orjson.loads(raw))
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("listener on channel %s failed", channel)

        return self.bus.subscribe(channel, handler)
