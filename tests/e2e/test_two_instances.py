"""Two ``workeros serve`` processes on one PostgreSQL database: a schema change
on one is seen by the other, and a write on one reaches an SSE subscriber on the
other — over the PostgreSQL bus, and again over Redis."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.instances import CREDS, read_json, sse_events
from workeros.sdk.testing import ServerProcess, create_pg_database, drop_pg_database, require_postgres

BUSES = {
    "postgres": {},
    "redis": {"WORKEROS_REALTIME_BUS": "redis", "WORKEROS_REDIS_PREFIX": f"wos-e2e-{os.getpid()}:"},
}


@pytest.fixture(params=sorted(BUSES))
async def pair(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[ServerProcess, ServerProcess]]:
    await require_postgres()
    url = await create_pg_database()
    env = BUSES[request.param]
    servers = [ServerProcess(data_dir=tmp_path / name, database_url=url, env=env) for name in ("a", "b")]
    try:
        for server in servers:
            await asyncio.to_thread(server.start)
        yield servers[0], servers[1]
    finally:
        for server in servers:
            await asyncio.to_thread(server.stop)
        await drop_pg_database(url)


async def test_schema_and_items_travel_between_instances(pair: tuple[ServerProcess, ServerProcess]) -> None:
    a, b = pair
    async with aiohttp.ClientSession() as http:
        async with http.post(a.url + "/api/auth/sign-up", json=CREDS) as r:
            assert r.status in (200, 201), await r.text()
        async with http.post(b.url + "/api/auth/login", json={**CREDS, "mode": "json"}) as r:
            token = (await read_json(r))["data"]["access_token"]
        auth = {"Authorization": f"Bearer {token}"}

        # a schema change on A is visible on B (B's cache reloads from the bus)
        async with http.post(a.url + "/api/collections", headers=auth, json={"collection": "notes", "fields": [
                {"field": "title", "type": "string"}, {"field": "secret", "type": "string"}]}) as r:
            assert r.status == 201, await r.text()
        for _ in range(100):
            async with http.get(b.url + "/api/collections/notes", headers=auth) as r:
                if r.status == 200:
                    break
            await asyncio.sleep(0.05)
        assert r.status == 200

        # a write on A reaches an SSE subscriber on B, cut to the fields asked for
        async with http.get(b.url + "/api/realtime/items/notes?fields=title", headers=auth,
                            timeout=aiohttp.ClientTimeout(total=30)) as stream:
            assert stream.status == 200
            events = sse_events(stream)
            assert (await asyncio.wait_for(anext(events), 10))[0] == "ready"
            async with http.post(a.url + "/api/items/notes", headers=auth,
                                 json={"title": "hello", "secret": "s"}) as r:
                assert r.status == 200, await r.text()
            kind, body = await asyncio.wait_for(anext(events), 10)
            assert kind == "create" and body["data"] == [{"id": 1, "title": "hello"}]

        # a rename on B moves the API path on A
        async with http.patch(b.url + "/api/collections/notes", headers=auth, json={"collection": "memos"}) as r:
            assert r.status == 200, await r.text()
        for _ in range(100):
            async with http.get(a.url + "/api/items/memos", headers=auth) as r:
                status, body = r.status, await read_json(r)
            if status == 200:
                break
            await asyncio.sleep(0.05)
        assert status == 200 and body["data"][0]["title"] == "hello"
