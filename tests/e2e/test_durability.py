"""A ``workeros serve`` process killed with SIGKILL under concurrent writes loses
no acknowledged write: after a restart on the same data, every create and update
that got a 2xx answer is there (on SQLite in WAL mode and on PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import FIRST_PARTY
from workeros.sdk.testing import ServerProcess

ENV = {"WORKEROS_LOAD_PLUGINS": ",".join(FIRST_PARTY)}
CREDENTIALS = {"email": "admin@example.com", "password": "correct horse battery"}
CREATORS = 6
UPDATERS = 2
#: Keep writing this long before the kill (and at least MIN_ACKED writes).
LOAD_SECONDS = 1.5
MIN_ACKED = 100


async def _json(response: aiohttp.ClientResponse) -> Any:
    return json.loads(await response.read())


async def sign_in(http: aiohttp.ClientSession, url: str) -> dict[str, str]:
    async with http.post(url + "/api/auth/login", json={**CREDENTIALS, "mode": "json"}) as r:
        assert r.status == 200, await r.text()
        token = (await _json(r))["data"]["access_token"]
    return {"Authorization": f"Bearer {token}"}


async def set_up(http: aiohttp.ClientSession, url: str) -> dict[str, str]:
    async with http.post(url + "/api/auth/sign-up", json=CREDENTIALS) as r:
        assert r.status in (200, 201), await r.text()
    auth = await sign_in(http, url)
    async with http.post(url + "/api/collections", headers=auth, json={"collection": "writes", "fields": [
            {"field": "writer", "type": "integer"}, {"field": "seq", "type": "integer"},
            {"field": "body", "type": "string"}]}) as r:
        assert r.status == 201, await r.text()
    async with http.post(url + "/api/collections", headers=auth, json={"collection": "counters", "fields": [
            {"field": "value", "type": "integer"}]}) as r:
        assert r.status == 201, await r.text()
    async with http.post(url + "/api/items/counters", headers=auth,
                         json=[{"value": 0} for _ in range(UPDATERS)]) as r:
        assert r.status == 200, await r.text()
    return auth


class Load:
    """What the writers were told was saved."""

    def __init__(self) -> None:
        self.created: dict[int, dict[str, Any]] = {}  # id -> row as acknowledged
        self.counters: dict[int, int] = {}  # counter id -> last acknowledged value
        self.refused: list[str] = []  # non-2xx answers while the server was up
        self.stop = asyncio.Event()

    @property
    def acked(self) -> int:
        return len(self.created) + sum(self.counters.values())


async def creator(http: aiohttp.ClientSession, url: str, auth: dict[str, str], load: Load, writer: int) -> None:
    seq = 0
    while not load.stop.is_set():
        seq += 1
        # Every third write is a batch of three: one transaction, one answer.
        rows = [{"writer": writer, "seq": seq * 10 + k, "body": f"w{writer}-{seq}-{k}"}
                for k in range(3 if seq % 3 == 0 else 1)]
        try:
            async with http.post(url + "/api/items/writes", headers=auth,
                                 json=rows if len(rows) > 1 else rows[0]) as r:
                body = await r.read()
                status = r.status
        except (TimeoutError, aiohttp.ClientError):
            return  # the server is gone: this write was never acknowledged
        if 200 <= status < 300:
            data = json.loads(body)["data"]
            for row in data if isinstance(data, list) else [data]:
                load.created[row["id"]] = row
        else:
            load.refused.append(f"{status} {body[:200]!r}")


async def updater(http: aiohttp.ClientSession, url: str, auth: dict[str, str], load: Load, counter: int) -> None:
    value = 0
    while not load.stop.is_set():
        value += 1
        try:
            async with http.patch(url + f"/api/items/counters/{counter}", headers=auth, json={"value": value}) as r:
                body = await r.read()
                status = r.status
        except (TimeoutError, aiohttp.ClientError):
            return
        if 200 <= status < 300:
            assert json.loads(body)["data"]["value"] == value
            load.counters[counter] = value
        else:
            load.refused.append(f"{status} {body[:200]!r}")


async def read_all(http: aiohttp.ClientSession, url: str, auth: dict[str, str], collection: str) -> list[Any]:
    rows: list[Any] = []
    page = 1
    while True:
        async with http.get(url + f"/api/items/{collection}", headers=auth,
                            params={"limit": "1000", "page": str(page), "sort": "id"}) as r:
            assert r.status == 200, await r.text()
            batch = (await _json(r))["data"]
        rows += batch
        if len(batch) < 1000:
            return rows
        page += 1


@pytest.mark.slow
async def test_sigkill_under_concurrent_writes_loses_no_acknowledged_write(tmp_path: Path,
                                                                          wos_database_url: str) -> None:
    data_dir = tmp_path / "data"
    server = ServerProcess(data_dir=data_dir, database_url=wos_database_url, env=ENV)
    await asyncio.to_thread(server.start)
    load = Load()
    try:
        timeout = aiohttp.ClientTimeout(total=10)
        connector = aiohttp.TCPConnector(limit=CREATORS + UPDATERS)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
            auth = await set_up(http, server.url)
            writers = [asyncio.create_task(creator(http, server.url, auth, load, w)) for w in range(CREATORS)]
            writers += [asyncio.create_task(updater(http, server.url, auth, load, c + 1)) for c in range(UPDATERS)]
            started = time.monotonic()
            while time.monotonic() - started < LOAD_SECONDS or load.acked < MIN_ACKED:
                assert time.monotonic() - started < 20, f"only {load.acked} writes acknowledged in 20 s"
                assert all(not t.done() for t in writers), [t.exception() for t in writers if t.done()]
                await asyncio.sleep(0.05)
            # Mid-load: requests are in flight on every connection.
            server.proc.send_signal(signal.SIGKILL)
            await asyncio.to_thread(server.proc.wait, 10)
            load.stop.set()
            await asyncio.wait_for(asyncio.gather(*writers), 15)
    finally:
        server.kill()
        server.stop()
    assert server.proc.returncode == -signal.SIGKILL
    assert not load.refused, load.refused[:5]
    assert len(load.created) >= MIN_ACKED // 2 and all(load.counters.values()), (len(load.created), load.counters)

    restarted = ServerProcess(data_dir=data_dir, database_url=wos_database_url, env=ENV)
    await asyncio.to_thread(restarted.start)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            auth = await sign_in(http, restarted.url)
            stored = {row["id"]: row for row in await read_all(http, restarted.url, auth, "writes")}
            missing = sorted(set(load.created) - set(stored))
            assert not missing, f"{len(missing)} acknowledged creates lost, e.g. {missing[:5]}"
            changed = [i for i, row in load.created.items() if stored[i] != row]
            assert not changed, f"acknowledged rows differ after the restart: {changed[:5]}"
            # At most the writes in flight at the kill were saved unacknowledged.
            assert len(stored) - len(load.created) <= CREATORS * 3
            keys = [(row["writer"], row["seq"]) for row in stored.values()]
            assert len(keys) == len(set(keys)), "no write was saved twice"

            counters = {row["id"]: row["value"] for row in await read_all(http, restarted.url, auth, "counters")}
            for counter, value in load.counters.items():
                # The last acknowledged value, or the one in flight when the server died.
                assert counters[counter] in (value, value + 1), (counter, counters[counter], value)

            # The database is healthy: writes go on where they stopped.
            async with http.post(restarted.url + "/api/items/writes", headers=auth,
                                 json={"writer": -1, "seq": 0, "body": "after"}) as r:
                assert r.status == 200, await r.text()
                assert (await _json(r))["data"]["id"] > max(stored)
    finally:
        await asyncio.to_thread(restarted.stop)
    print(f"\n{len(load.created)} creates and {sum(load.counters.values())} updates acknowledged before SIGKILL; "
          f"{len(stored) - len(load.created)} unacknowledged creates were saved")
