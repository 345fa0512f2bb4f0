"""Three ``workeros serve`` processes on one PostgreSQL with Redis as the bus
and S3 (moto's server) for files, behind a small round-robin proxy: writes
through any instance reach realtime subscribers on every instance; a
permission change applies everywhere; a file uploaded through one instance is
read through the others; webhook deliveries are sent once and a schedule flow
runs once per tick; killing an instance loses no acknowledged write and
clients continue through the others."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from receiver import Receiver, eventually

from tests.e2e.instances import CREDS, RoundRobin, moto_s3, redis_reachable, s3_env, sse_events
from workeros.sdk.testing import ServerProcess, create_pg_database, drop_pg_database, require_postgres

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[tuple[list[ServerProcess], RoundRobin, Receiver]]:
    await require_postgres()
    if not await redis_reachable():
        pytest.skip("Redis is not reachable on 127.0.0.1:6379")
    pytest.importorskip("moto.server")
    with moto_s3() as endpoint:
        url = await create_pg_database()
        env = {**s3_env(endpoint, f"wos-three-{uuid.uuid4().hex[:12]}"),
               "WORKEROS_REALTIME_BUS": "redis", "WORKEROS_REDIS_PREFIX": f"wos-three-{os.getpid()}-{tmp_path.name}:",
               "WORKEROS_AUTH_SECRET": "t" * 40, "WORKEROS_NETWORK_ALLOW_PRIVATE": "1",
               "WORKEROS_WEBHOOKS_POLL_SECONDS": "0.2", "WORKEROS_WEBHOOKS_RETRY_BASE_SECONDS": "0.2"}
        servers = [ServerProcess(data_dir=tmp_path / name, database_url=url, env=env, startup_timeout=180)
                   for name in ("a", "b", "c")]
        receiver = await Receiver().start()
        proxy = None
        try:
            for server in servers:
                await asyncio.to_thread(server.start)
            proxy = await RoundRobin([s.url for s in servers]).start()
            yield servers, proxy, receiver
        finally:
            if proxy is not None:
                await proxy.stop()
            await receiver.stop()
            for server in servers:
                await asyncio.to_thread(server.stop)
            await drop_pg_database(url)


async def test_three_instances_behind_a_round_robin(cluster) -> None:
    servers, proxy, receiver = cluster
    async with aiohttp.ClientSession() as http:
        async with http.post(proxy.url + "/api/auth/sign-up", json=CREDS) as r:
            assert r.status in (200, 201), await r.text()
        async with http.post(proxy.url + "/api/auth/login", json={**CREDS, "mode": "json"}) as r:
            token = (await r.json())["data"]["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        async with http.post(proxy.url + "/api/collections", headers=auth, json={"collection": "notes", "fields": [
                {"field": "title", "type": "string"}]}) as r:
            assert r.status == 201, await r.text()

        # the schema change reached every instance
        async def everywhere(path: str, status: int, headers: dict[str, str]) -> bool:
            for s in servers:
                async with http.get(s.url + path, headers=headers) as r:
                    if r.status != status:
                        return False
            return True

        assert await eventually(lambda: everywhere("/api/items/notes", 200, auth))

        # a permission change through the proxy applies on every instance
        assert await everywhere("/api/items/notes", 403, {})
        async with http.post(proxy.url + "/api/permissions", headers=auth, json={
                "role": "public", "collection": "notes", "action": "read"}) as r:
            assert r.status in (200, 201), await r.text()
        assert await eventually(lambda: everywhere("/api/items/notes", 200, {}))

        async with http.post(proxy.url + "/api/webhooks", headers=auth, json={
                "name": "h", "url": receiver.url + "/hook", "events": ["items.create"]}) as r:
            assert r.status == 201, await r.text()

        # a schedule flow with a seconds field: each tick runs on one instance only
        async with http.post(proxy.url + "/api/flows", headers=auth, json={
                "name": "every 2s", "trigger": "schedule", "options": {"cron": "*/2 * * * * *"},
                "operations": [{"key": "tick", "type": "transform", "options": {"json": "{{ $trigger.tick }}"}}]}) as r:
            assert r.status == 201, await r.text()
            flow = (await r.json())["data"]["id"]
        scheduled_at = asyncio.get_running_loop().time()

        # a file uploaded through one instance is read through the others (S3)
        blob = os.urandom(200_000)
        form = aiohttp.FormData()
        form.add_field("file", blob, filename="blob.bin", content_type="application/octet-stream")
        async with http.post(servers[0].url + "/api/files", headers=auth, data=form) as r:
            assert r.status in (200, 201), await r.text()
            file_id = (await r.json())["data"]["id"]
        for s in servers[1:]:
            async with http.get(s.url + f"/api/assets/{file_id}", headers=auth) as r:
                assert r.status == 200 and await r.read() == blob
            async with http.get(s.url + f"/api/assets/{file_id}", headers={**auth, "Range": "bytes=10-19"}) as r:
                assert r.status == 206 and await r.read() == blob[10:20]

        # a subscriber on each instance; writes through the proxy reach all three
        streams = []
        for s in servers:
            stream = await http.get(s.url + "/api/realtime/items/notes?fields=title", headers=auth,
                                    timeout=aiohttp.ClientTimeout(total=120))
            assert stream.status == 200
            events = sse_events(stream)
            assert (await asyncio.wait_for(anext(events), 30))[0] == "ready"
            streams.append((stream, events))
        for i in range(3):
            async with http.post(proxy.url + "/api/items/notes", headers=auth, json={"title": f"n{i}"}) as r:
                assert r.status == 200, await r.text()
        for stream, events in streams:
            seen = []
            while len(seen) < 3:
                kind, body = await asyncio.wait_for(anext(events), 30)
                if kind == "create":
                    seen += [row["title"] for row in body["data"]]
            assert sorted(seen) == ["n0", "n1", "n2"]
            stream.close()

        # each webhook delivery is sent once, whichever instance claims it
        # (three notes and the uploaded file's row)
        await eventually(lambda: len(receiver.requests) >= 4, timeout=60)
        await asyncio.sleep(2)
        bodies = [r.json() for r in receiver.requests]
        assert sorted(b["collection"] for b in bodies) == ["notes", "notes", "notes", "wos_files"]
        assert len({json.dumps(b, sort_keys=True) for b in bodies}) == 4

        # the schedule ran once per tick across the three instances
        await asyncio.sleep(max(0.0, 7 - (asyncio.get_running_loop().time() - scheduled_at)))
        async with http.patch(proxy.url + f"/api/flows/{flow}", headers=auth, json={"status": "inactive"}) as r:
            assert r.status == 200, await r.text()
        elapsed = asyncio.get_running_loop().time() - scheduled_at
        await asyncio.sleep(0.5)
        async with http.get(proxy.url + f"/api/flows/{flow}/runs", headers=auth) as r:
            assert r.status == 200, await r.text()
            ticks = [run["steps"][0]["output"] for run in (await r.json())["data"]]
        assert len(ticks) == len(set(ticks)), ticks  # no tick ran twice
        assert 2 <= len(ticks) <= elapsed / 2 + 1, (ticks, elapsed)
        assert all(int(t[17:19]) % 2 == 0 for t in ticks), ticks

        # kill one instance mid-traffic: every acknowledged write survives, clients go on
        acknowledged = []
        for i in range(30):
            if i == 10:
                await asyncio.to_thread(servers[0].kill)
            async with http.post(proxy.url + "/api/items/notes", headers=auth, json={"title": f"k{i}"}) as r:
                if r.status == 200:
                    acknowledged.append(f"k{i}")
        assert len(acknowledged) >= 28  # at most a request in flight on the killed one fails
        async with http.get(servers[1].url + "/api/items/notes", headers=auth,
                            params={"limit": "-1", "fields": "title"}) as r:
            stored = {row["title"] for row in (await r.json())["data"]}
        assert set(acknowledged) <= stored
