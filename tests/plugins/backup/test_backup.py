"""workeros backup / restore through the real command line against a running
server, on both dialects (SQLite online backup; pg_dump), the logical form
across dialects, refusals, and scheduled backups with retention."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from workeros.sdk.testing import ServerProcess, create_pg_database, drop_pg_database, require_postgres

ADMIN = {"email": "admin@wos.test", "password": "correct horse battery staple"}
ENV = {"WORKEROS_ADMIN_EMAIL": ADMIN["email"], "WORKEROS_ADMIN_PASSWORD": ADMIN["password"],
       "WORKEROS_AUTH_SECRET": "s" * 40}

pytestmark = pytest.mark.slow


def cli(data_dir: Path, *args: str, database_url: str | None = None) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "workeros", "--data-dir", str(data_dir), *args]
    if database_url:
        argv += ["--database-url", database_url]
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKEROS_")}
    env.update(ENV)
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)


async def admin_session(url: str) -> aiohttp.ClientSession:
    session = aiohttp.ClientSession(base_url=url)
    async with session.post("/api/auth/login", json={**ADMIN, "mode": "json"}) as r:
        assert r.status == 200, await r.text()
        token = (await r.json())["data"]["access_token"]
    session.headers["Authorization"] = f"Bearer {token}"
    return session


async def add_notes(session: aiohttp.ClientSession, *titles: str) -> None:
    for title in titles:
        async with session.post("/api/items/notes", json={"title": title}) as r:
            assert r.status in (200, 201), await r.text()


async def titles(url: str) -> list[str]:
    session = await admin_session(url)
    try:
        async with session.get("/api/items/notes", params={"sort": "title", "fields": "title"}) as r:
            assert r.status == 200, await r.text()
            return [row["title"] for row in (await r.json())["data"]]
    finally:
        await session.close()


def serve(data_dir: Path, url: str | None) -> ServerProcess:
    return ServerProcess(data_dir=data_dir, database_url=url, env=ENV, startup_timeout=120).start()


async def running_with_notes(data_dir: Path, url: str | None) -> ServerProcess:
    server = await asyncio.to_thread(serve, data_dir, url)
    session = await admin_session(server.url)
    try:
        async with session.post("/api/collections", json={"collection": "notes", "fields": [
                {"field": "title", "type": "string"}]}) as r:
            assert r.status in (200, 201), await r.text()
        await add_notes(session, "alpha", "beta")
    finally:
        await session.close()
    return server


async def empty_target(wos_dialect: str, tmp_path: Path, name: str) -> tuple[Path, str | None]:
    """A fresh data dir, and on PostgreSQL a fresh empty database."""
    if wos_dialect == "sqlite":
        return tmp_path / name, None
    return tmp_path / name, await create_pg_database()


async def test_native_backup_while_serving_restores_what_was_acknowledged(wos_dialect, wos_database_url,
                                                                          tmp_path) -> None:
    url = None if wos_dialect == "sqlite" else wos_database_url
    source_dir = tmp_path / "source"
    server = await running_with_notes(source_dir, url)
    try:
        out = tmp_path / "snap.backup"
        done = await asyncio.to_thread(cli, source_dir, "backup", "--out", str(out), database_url=url)
        assert done.returncode == 0, done.stderr
        assert ("(sqlite)" if wos_dialect == "sqlite" else "(pg_dump)") in done.stdout
        assert oct(out.stat().st_mode & 0o777) == "0o600"
        session = await admin_session(server.url)
        await add_notes(session, "after-the-backup")
        await session.close()
    finally:
        await asyncio.to_thread(server.stop)

    target_dir, target_url = await empty_target(wos_dialect, tmp_path, "restored")
    try:
        done = await asyncio.to_thread(cli, target_dir, "restore", str(out), database_url=target_url)
        assert done.returncode == 0, done.stderr
        again = await asyncio.to_thread(cli, target_dir, "restore", str(out), database_url=target_url)
        assert again.returncode == 1 and ("exists" in again.stderr or "not empty" in again.stderr)
        restored = await asyncio.to_thread(serve, target_dir, target_url)
        try:
            assert await titles(restored.url) == ["alpha", "beta"]
        finally:
            await asyncio.to_thread(restored.stop)
    finally:
        if target_url:
            await drop_pg_database(target_url)


async def test_logical_backup_restores_into_the_other_dialect(wos_dialect, wos_database_url, tmp_path) -> None:
    await require_postgres()
    url = None if wos_dialect == "sqlite" else wos_database_url
    source_dir = tmp_path / "source"
    server = await running_with_notes(source_dir, url)
    try:
        out = tmp_path / "logical.zip"
        done = await asyncio.to_thread(cli, source_dir, "backup", "--logical", "--out", str(out), database_url=url)
        assert done.returncode == 0 and "(export)" in done.stdout, done.stderr
    finally:
        await asyncio.to_thread(server.stop)
    other_url = await create_pg_database() if wos_dialect == "sqlite" else None
    target_dir = tmp_path / "other"
    try:
        done = await asyncio.to_thread(cli, target_dir, "restore", str(out), database_url=other_url)
        assert done.returncode == 0, done.stderr
        restored = await asyncio.to_thread(serve, target_dir, other_url)
        try:
            assert await titles(restored.url) == ["alpha", "beta"]
        finally:
            await asyncio.to_thread(restored.stop)
    finally:
        if other_url:
            await drop_pg_database(other_url)


async def test_restore_refuses_what_it_cannot_do(wos_dialect, wos_database_url, tmp_path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"hello, not a backup")
    done = await asyncio.to_thread(cli, tmp_path / "x", "restore", str(junk))
    assert done.returncode == 1 and "not a workeros backup" in done.stderr
    done = await asyncio.to_thread(cli, tmp_path / "x", "restore", str(tmp_path / "missing.backup"))
    assert done.returncode == 1 and "no such file" in done.stderr
    if wos_dialect == "postgres":
        # A SQLite backup does not go into PostgreSQL (export/import moves between them).
        lite = tmp_path / "lite"
        server = await running_with_notes(lite, None)
        await asyncio.to_thread(server.stop)
        out = tmp_path / "lite.backup"
        assert (await asyncio.to_thread(cli, lite, "backup", "--out", str(out))).returncode == 0
        done = await asyncio.to_thread(cli, tmp_path / "y", "restore", str(out), database_url=wos_database_url)
        assert done.returncode == 1 and "restore it into SQLite" in done.stderr
        assert "Traceback" not in done.stderr


async def test_scheduled_backups_keep_the_newest(make_server, wos_settings: Any, tmp_path: Path) -> None:
    from workeros_backup import scheduled_files, scheduled_once

    folder = tmp_path / "backups"
    settings = {"backup.dir": str(folder), "backup.interval_hours": 0.0005, "backup.keep": 2}
    async with make_server(**settings) as server:
        from workeros.http.keys import PLUGINS, SERVICES

        # The schedule took the first one at start-up.
        for _ in range(200):
            if scheduled_files(folder):
                break
            await asyncio.sleep(0.05)
        assert len(scheduled_files(folder)) == 1
        services = server.app[SERVICES]
        for _ in range(3):
            await scheduled_once(services.settings, server.app[PLUGINS], folder, 2, services)
        files = scheduled_files(folder)
        assert len(files) == 2
        assert all(oct(p.stat().st_mode & 0o777) == "0o600" for p in files)


async def test_full_backup_carries_the_file_objects(wos_dialect, wos_database_url, tmp_path) -> None:
    """``backup --full`` writes the full export archive; ``restore`` puts the
    rows and the files' bytes back (fs storage on both sides here; other
    storage backends: tests/plugins/files/test_full_export.py)."""
    url = None if wos_dialect == "sqlite" else wos_database_url
    blob = os.urandom(50_000)
    source_dir = tmp_path / "source"
    server = await running_with_notes(source_dir, url)
    try:
        session = await admin_session(server.url)
        form = aiohttp.FormData()
        form.add_field("file", blob, filename="blob.bin", content_type="application/octet-stream")
        async with session.post("/api/files", data=form) as r:
            assert r.status in (200, 201), await r.text()
            file_id = (await r.json())["data"]["id"]
        await session.close()
        out = tmp_path / "full.backup"
        done = await asyncio.to_thread(cli, source_dir, "backup", "--full", "--out", str(out), database_url=url)
        assert done.returncode == 0 and "(export)" in done.stdout, done.stderr
    finally:
        await asyncio.to_thread(server.stop)

    target_dir, target_url = await empty_target(wos_dialect, tmp_path, "restored")
    try:
        done = await asyncio.to_thread(cli, target_dir, "restore", str(out), database_url=target_url)
        assert done.returncode == 0, done.stderr
        restored = await asyncio.to_thread(serve, target_dir, target_url)
        try:
            assert await titles(restored.url) == ["alpha", "beta"]
            session = await admin_session(restored.url)
            async with session.get(f"/api/assets/{file_id}") as r:
                assert r.status == 200 and await r.read() == blob
            await session.close()
        finally:
            await asyncio.to_thread(restored.stop)
    finally:
        if target_url:
            await drop_pg_database(target_url)
