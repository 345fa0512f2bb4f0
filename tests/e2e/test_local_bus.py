"""Processes on one database keep in step without another server: ``workeros
serve --workers 2`` on SQLite shares schema and realtime events between its
workers (the SQLite bus), and changes made by the CLI (``schema apply``,
``import``, ``create-user``) reach a running server, on both dialects."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from tests.conftest import FIRST_PARTY
from workeros.sdk.testing import ServerProcess

ENV = {"WORKEROS_LOAD_PLUGINS": ",".join(FIRST_PARTY)}
CREDS = {"email": "admin@example.com", "password": "correct horse battery"}


async def _json(response: aiohttp.ClientResponse) -> Any:
    return json.loads(await response.read())


async def _sse_events(response: aiohttp.ClientResponse) -> AsyncIterator[tuple[str, str | None, Any]]:
    """(event, id, data) of each server-sent event."""
    event, ident, data = "message", None, []
    while True:
        line = (await response.content.readline()).decode().rstrip("\r\n")
        if line == "":
            if data:
                yield event, ident, json.loads("\n".join(data))
            event, ident, data = "message", None, []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("id:"):
            ident = line[3:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())


def fresh() -> aiohttp.ClientSession:
    """A session whose every request opens a new connection: with SO_REUSEPORT
    each new connection may land on either worker."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))


async def _admin_token(url: str) -> dict[str, str]:
    async with fresh() as http:
        async with http.post(url + "/api/auth/sign-up", json=CREDS) as r:
            assert r.status in (200, 201), await r.text()
        async with http.post(url + "/api/auth/login", json={**CREDS, "mode": "json"}) as r:
            assert r.status == 200, await r.text()
            return {"Authorization": f"Bearer {(await _json(r))['data']['access_token']}"}


async def test_workers_share_schema_and_realtime_events_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'data.db'}"
    server = ServerProcess(data_dir=tmp_path, database_url=url, env={**ENV, "WORKEROS_SERVER_WORKERS": "2"})
    await asyncio.to_thread(server.start)
    streams: list[tuple[aiohttp.ClientSession, aiohttp.ClientResponse, AsyncIterator[Any]]] = []
    try:
        auth = await _admin_token(server.url)
        async with fresh() as http:
            # The collection is created on one worker ...
            async with http.post(server.url + "/api/collections", headers=auth, json={
                    "collection": "notes", "fields": [{"field": "title", "type": "string"}]}) as r:
                assert r.status == 201, await r.text()
            # ... and soon (the bus is read every 100 ms) every new connection,
            # whichever worker takes it, sees it.
            async def seen() -> bool:
                for _ in range(20):
                    async with http.get(server.url + "/api/collections/notes", headers=auth) as r:
                        if r.status != 200:
                            return False
                return True

            assert await _eventually(seen), "a worker never saw the new collection"
            # Subscribers on new connections until both workers hold one: every
            # write, made on whichever worker, reaches every subscriber; the
            # event ids name the hub (worker) that delivered them.
            hubs: set[str] = set()
            for n in range(40):
                session = aiohttp.ClientSession()
                stream = await session.get(server.url + "/api/realtime/items/notes?fields=title", headers=auth,
                                           timeout=aiohttp.ClientTimeout(total=60))
                assert stream.status == 200, await stream.text()
                events = _sse_events(stream)
                streams.append((session, stream, events))
                assert (await asyncio.wait_for(anext(events), 10))[0] == "ready"
                async with http.post(server.url + "/api/items/notes", headers=auth, json={"title": f"n{n}"}) as r:
                    assert r.status == 200, await r.text()
                for _, _, each in streams:
                    # A subscriber opened on one worker just before another
                    # worker's earlier event reached it (the bus is read every
                    # 100 ms) may get that event too: skip earlier writes, in order.
                    kind, ident, body = await asyncio.wait_for(anext(each), 10)
                    while kind == "create" and body["data"][0]["id"] < n + 1:
                        kind, ident, body = await asyncio.wait_for(anext(each), 10)
                    assert kind == "create" and body["data"] == [{"id": n + 1, "title": f"n{n}"}]
                    assert ident is not None
                    hubs.add(ident.partition("-")[0])
                if len(hubs) == 2:
                    break
            assert len(hubs) == 2, "every subscriber landed on one worker"
    finally:
        for session, stream, _ in streams:
            stream.close()
            await session.close()
        await asyncio.to_thread(server.stop)


def _cli(tmp_path: Path, url: str, *args: str, stdin: str | None = None) -> str:
    env = {"WORKEROS_DATA_DIR": str(tmp_path / "cli"), **ENV, "PATH": ""}
    done = subprocess.run([sys.executable, "-m", "workeros", *args], input=stdin, capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


async def _eventually(check: Any, timeout: float = 10.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result or asyncio.get_running_loop().time() > deadline:
            return result
        await asyncio.sleep(0.1)


async def test_cli_changes_reach_a_running_server(tmp_path: Path, wos_database_url: str) -> None:
    url = wos_database_url
    server = ServerProcess(data_dir=tmp_path / "server", database_url=url, env=ENV)
    await asyncio.to_thread(server.start)
    try:
        auth = await _admin_token(server.url)
        async with aiohttp.ClientSession() as http:
            async def status(path: str) -> int:
                async with http.get(server.url + path, headers=auth) as r:
                    return r.status

            assert await status("/api/collections/books") == 404  # the server has cached its schema
            snapshot = {"format": "workeros-schema", "version": 1, "relations": [], "collections": [
                {"collection": "books", "fields": [{"field": "title", "type": "string"}]}]}
            (tmp_path / "schema.json").write_text(json.dumps(snapshot))
            await asyncio.to_thread(_cli, tmp_path, url, "schema", "apply", str(tmp_path / "schema.json"),
                                    "--database-url", url)
            assert await _eventually(lambda: _is(status("/api/collections/books"), 200)), "schema apply not seen"
            async with http.post(server.url + "/api/items/books", headers=auth, json={"title": "Dune"}) as r:
                assert r.status == 200, await r.text()

            await asyncio.to_thread(_cli, tmp_path, url, "create-user", "--email", "cli@example.com", "--admin",
                                    "--password-stdin", "--database-url", url,
                                    stdin="another long password\n")
            async with http.post(server.url + "/api/auth/login", json={
                    "email": "cli@example.com", "password": "another long password", "mode": "json"}) as r:
                assert r.status == 200, await r.text()

        # import: an archive restored by the CLI into an empty database under a
        # running server: its schema and rows are served at once.
        source = tmp_path / "export.zip"
        await asyncio.to_thread(_cli, tmp_path, url, "export", str(source), "--database-url", url)
    finally:
        await asyncio.to_thread(server.stop)
    await _import_reaches_server(tmp_path, url, source)


async def _is(awaitable: Any, expected: Any) -> bool:
    return (await awaitable) == expected


async def _import_reaches_server(tmp_path: Path, source_url: str, archive: Path) -> None:
    if source_url.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'restored.db'}"
        cleanup = None
    else:
        from workeros.sdk.testing import create_pg_database, drop_pg_database

        url = await create_pg_database()
        cleanup = drop_pg_database
    server = ServerProcess(data_dir=tmp_path / "restored", database_url=url, env=ENV)
    await asyncio.to_thread(server.start)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(server.url + "/api/items/books") as r:
                assert r.status in (403, 404), await r.text()
            await asyncio.to_thread(_cli, tmp_path, url, "import", str(archive), "--database-url", url)
            async with http.post(server.url + "/api/auth/login", json={**CREDS, "mode": "json"}) as r:
                assert r.status == 200, await r.text()
                auth = {"Authorization": f"Bearer {(await _json(r))['data']['access_token']}"}

            async def titles() -> list[str] | None:
                async with http.get(server.url + "/api/items/books", headers=auth) as r:
                    return [b["title"] for b in (await _json(r))["data"]] if r.status == 200 else None

            assert await _eventually(titles) == ["Dune"], "import not seen by the running server"
    finally:
        await asyncio.to_thread(server.stop)
        if cleanup is not None:
            await cleanup(url)
