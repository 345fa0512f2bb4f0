"""A small SSE reader for the tests: events as (event, id, data) from a live
aiohttp response."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any


@dataclass
class Event:
    event: str
    id: str | None
    data: Any


class EventReader:
    def __init__(self, response: Any) -> None:
        self.response = response

    async def next(self, timeout: float = 10.0) -> Event:
        return await asyncio.wait_for(self._next(), timeout)

    async def _next(self) -> Event:
        event, ident, data = "message", None, []
        while True:
            raw = await self.response.content.readline()
            if not raw:
                raise EOFError("stream ended")
            line = raw.decode().rstrip("\r\n")
            if line == "":
                if data:
                    return Event(event, ident, json.loads("\n".join(data)))
                event, ident, data = "message", None, []
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                event = value
            elif name == "id":
                ident = value
            elif name == "data":
                data.append(value)

    async def until(self, kind: str, timeout: float = 10.0) -> Event:
        while True:
            found = await self.next(timeout)
            if found.event == kind:
                return found

    async def nothing_within(self, seconds: float) -> bool:
        try:
            found = await self.next(seconds)
        except TimeoutError:
            return True
        raise AssertionError(f"unexpected event {found}")
