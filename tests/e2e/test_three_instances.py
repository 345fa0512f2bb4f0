"""Three ``workeros serve`` processes on one PostgreSQL with Redis as the bus,
behind a small round-robin proxy: writes through any instance reach realtime
subscribers on every instance; a permission change applies everywhere;
webhook deliveries are sent once; killing an instance loses no acknowledged
write and clients continue through the others."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from receiver import Receiver, eventually

from workeros.sdk.testing import ServerProcess, create_pg_database, drop_pg_database, free_port, require_postgres

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
CREDS = {"email": "admin@example.com", "password": "correct horse battery"}
HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class RoundRobin:
    """A load balancer in a few lines: each request to the next live backend;
    a backend that refuses the connection is dropped and the request tried on
    the next (it never reached the dead one)."""

    def __init__(self, backends: list[str]) -> None:
        self.backends = list(backends)
        self.turn = itertools.count()
        self.session: aiohttp.ClientSession | None = None
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        assert self.session is not None
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
        for _ in range(len(self.backends) + 1):
            if not self.backends:
                break
            backend = self.backends[next(self.turn) % len(self.backends)]
            try:
                async with self.session.request(request.method, backend + request.path_qs, headers=headers,
                                                data=body, allow_redirects=False) as r:
                    return web.Response(status=r.status, body=await r.read(),
                                        headers={k: v for k, v in r.headers.items() if k.lower() not in HOP})
            except aiohttp.ClientConnectorError:
                if backend in self.backends:
                    self.backends.remove(backend)
        return web.json_response({"errors": [{"message": "no backend", "extensions": {
            "code": "SERVICE_UNAVAILABLE"}}]}, status=503)

    async def start(self) -> RoundRobin:
        self.session = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self.runner.setup()
        port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
        if self.session is not None:
            await self.session.close()


async def _redis_reachable() -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", 6379), 2)
    except (TimeoutError, OSError):
        return False
    writer.close()
    return True


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[tuple[list[ServerProcess], RoundRobin, Receiver]]:
    await require_postgres()
    if not await _redis_reachable():
        pytest.skip("Redis is not reachable on 127.0.0.1:6379")
    url = await create_pg_database()
    env = {"WORKEROS_REALTIME_BUS": "redis", "WORKEROS_REDIS_PREFIX": f"wos-three-{os.getpid()}-{tmp_path.name}:",
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


async def _sse(response: aiohttp.ClientResponse) -> AsyncIterator[tuple[str, Any]]:
    event, data = "message", []
    while True:
        line = (await response.content.readline()).decode().rstrip("\r\n")
        if line == "":
            if data:
                yield event, json.loads("\n".join(data))
            event, data = "message", []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())


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

        # a subscriber on each instance; writes through the proxy reach all three
        streams = []
        for s in servers:
            stream = await http.get(s.url + "/api/realtime/items/notes?fields=title", headers=auth,
                                    timeout=aiohttp.ClientTimeout(total=120))
            assert stream.status == 200
            events = _sse(stream)
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
        await eventually(lambda: len(receiver.requests) >= 3, timeout=60)
        await asyncio.sleep(2)
        bodies = [r.json() for r in receiver.requests]
        assert len(bodies) == 3
        assert len({json.dumps(b, sort_keys=True) for b in bodies}) == 3

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
