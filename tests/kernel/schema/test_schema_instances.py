"""An instance that is still starting when another changes the schema ends up
with the change: it listens for schema changes before it reads the catalog, so
a change committed after that read always reaches it (a worker of
``serve --workers 2`` booting while the first worker already serves)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

import workeros.schema.schema_service as schema_service
from workeros.accountability import Accountability
from workeros.http.keys import SERVICES


async def test_a_change_during_another_instance_start_reaches_it(
        make_server: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    async with make_server() as first:
        read_done, release = asyncio.Event(), asyncio.Event()
        real_load = schema_service.load

        async def slow_first_load(conn: Any, system: Any = ()) -> Any:
            catalog = await real_load(conn, system)
            if not read_done.is_set():  # the starting instance's first read
                read_done.set()
                await release.wait()
            return catalog

        monkeypatch.setattr(schema_service, "load", slow_first_load)

        async def start_second() -> Any:
            async with make_server() as second:
                await done.wait()
                services = second.app[SERVICES]
                for _ in range(100):
                    if "notes" in services.schema.current().collections:
                        return True
                    await asyncio.sleep(0.05)
                return False

        done = asyncio.Event()
        starting = asyncio.create_task(start_second())
        await asyncio.wait_for(read_done.wait(), 30)
        monkeypatch.setattr(schema_service, "load", real_load)
        # The second instance has read the catalog but not finished starting:
        # the first one creates a collection now.
        await first.app[SERVICES].schema.create_collection(
            Accountability.system(), {"collection": "notes", "fields": [{"field": "title", "type": "string"}]})
        await asyncio.sleep(0.5)  # the bus has carried the change (SQLite polls every 100 ms)
        release.set()
        done.set()
        assert await asyncio.wait_for(starting, 60), "the instance that was starting never saw the new collection"
