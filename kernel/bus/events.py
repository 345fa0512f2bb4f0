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
from dataclasses import dataclass
from typing import Any

from workeros.hookspecs.realtime import EventBus
from workeros.serialize import dumps, loads

log = logging.getLogger("workeros.events")

ITEMS = "items"
SCHEMA = "schema"
PERMISSIONS = "permissions"
#: Users, sessions or API keys changed: credential caches and open streams check again.
ACCOUNTS = "accounts"

Listener = Callable[[dict[str, Any]], "Awaitable[None] | None"]


class Events:
    def __init__(self, bus: EventBus) -> None:
        self.bus = bus
        #: Identifies this process in messages, so a handler can tell its own.
        self.instance = uuid.uuid4().hex

    async def publish(self, channel: str, payload: dict[str, Any]) -> None:
        message = {"instance": self.instance, **payload}
        await self.bus.publish(channel, dumps(message))

    def subscribe(self, channel: str, listener: Listener) -> Callable[[], None]:
        async def handler(raw: bytes) -> None:
            try:
                result = listener(loads(raw))
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("listener on channel %s failed", channel)

        return self.bus.subscribe(channel, handler)


@dataclass(frozen=True)
class ItemEvent:
    """An item change, published on :data:`ITEMS` after its transaction commits.

    ``before`` holds the full rows as they were (update, delete), ``after`` the full
    rows as they are (create, update), each keyed by primary key, as JSON-ready
    values — every column, so each subscriber can be filtered and redacted by its
    own permissions without reading the database. ``user`` and ``origin`` say who
    made the change.
    """

    collection: str
    action: str  # create | update | delete
    keys: list[Any]
    before: list[dict[str, Any]] | None = None
    after: list[dict[str, Any]] | None = None
    user: str | None = None
    origin: str | None = None

    def to_message(self) -> dict[str, Any]:
        return {
            "collection": self.collection,
            "action": self.action,
            "keys": self.keys,
            "before": self.before,
            "after": self.after,
            "user": self.user,
            "origin": self.origin,
        }

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> ItemEvent:
        return cls(**{k: message.get(k) for k in ("collection", "action", "keys", "before", "after", "user", "origin")})
