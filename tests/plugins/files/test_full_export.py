"""``workeros export --full`` / ``import --full``: one archive with the schema,
every row, the plugins' tables (files, folders, webhooks, flows, functions) and
the file objects, restored into the other dialect and the other storage backend
(SQLite + fs -> PostgreSQL + S3 on moto -> SQLite + fs); damaged or foreign
archives refused with nothing left behind; non-empty targets refused."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from callers import Api, TestCallers

from tests.conftest import FIRST_PARTY
from tests.kernel.snapshot.conftest import make_url  # noqa: F401 (fixture)

from .conftest import jpeg, s3_settings, upload

BYTES = os.urandom(300_000)  # incompressible, several storage chunks
CODE = "export default () => 1"


@asynccontextmanager
async def running(url: str, data_dir: Path, **storage: Any) -> AsyncIterator[Api]:
    """The app on ``url`` with the given storage settings; an admin :class:`Api`
    with ``.services``."""
    from aiohttp.test_utils import TestClient, TestServer

    from workeros.config import Settings
    from workeros.http.app import create_app
    from workeros.http.keys import SERVICES
    from workeros.plugins import Plugins

    data_dir.mkdir(parents=True, exist_ok=True)
    settings = Settings(env={}, cli={"data_dir": str(data_dir), "database.url": url, "database.pool_size": 5,
                                     "log.access": False, "load_plugins": FIRST_PARTY, "network.allow_private": True,
                                     **storage})
    plugins = Plugins(load=settings["load_plugins"], disable=(), strict=False, plugins_dir=None)
    plugins.load_all()
    plugins.register(TestCallers(), name="test-callers", distribution="test-fixtures")
    server = TestServer(await create_app(settings, plugins=plugins))
    async with TestClient(server) as client:
        admin = Api(client).as_admin()
        admin.services = server.app[SERVICES]  # type: ignore[attr-defined]
        yield admin


async def ok(response: Any, *status: int) -> Any:
    assert response.status in (status or (200, 201)), response
    return response.data


async def build_source(admin: Api) -> dict[str, Any]:
    folder = await ok(await admin.post("/api/folders", json={"name": "Covers"}))
    photo = await ok(await upload(admin, jpeg(160, 120), "cover.jpg", "image/jpeg", folder=folder["id"]))
    blob = await ok(await upload(admin, BYTES, "blob.bin", "application/octet-stream"))
    await ok(await admin.post("/api/collections", json={"collection": "posts", "fields": [
        {"field": "title", "type": "string"}, {"field": "cover", "type": "file"}]}))
    await ok(await admin.post("/api/items/posts", json={"title": "first", "cover": photo["id"]}))
    await ok(await admin.post("/api/webhooks", json={"name": "h", "url": "http://127.0.0.1:9/hook",
                                                     "events": ["items.create"]}))
    await ok(await admin.post("/api/flows", json={
        "name": "manual flow", "trigger": "manual", "options": {},
        "operations": [{"key": "a", "type": "transform", "options": {"json": "{}"}}]}))
    await ok(await admin.post("/api/functions", json={"name": "hello", "code": CODE}))
    return {"files": {photo["id"]: jpeg(160, 120), blob["id"]: BYTES}, **await state(admin)}


def _without(rows: list[dict[str, Any]], *names: str) -> list[dict[str, Any]]:
    return sorted(({k: v for k, v in row.items() if k not in names} for row in rows), key=lambda r: str(r["id"]))


async def state(admin: Api) -> dict[str, Any]:
    """What must survive a move, minus what belongs to the instance (which
    storage holds the bytes)."""
    files = await ok(await admin.get("/api/files", params={"limit": "-1"}))
    return {
        "file_rows": _without(files, "storage"),
        "folders": await ok(await admin.get("/api/folders")),
        "posts": await ok(await admin.get("/api/items/posts", params={"fields": "title,cover.filename_download"})),
        "webhooks": _without(await ok(await admin.get("/api/webhooks")), "secret"),
        "flows": [(f["name"], f["trigger"], f["operations"]) for f in await ok(await admin.get("/api/flows"))],
        "functions": [f["name"] for f in await ok(await admin.get("/api/functions"))],
    }


async def check_restored(admin: Api, source: dict[str, Any], backend: str) -> None:
    assert await state(admin) == {k: v for k, v in source.items() if k != "files"}
    storage = admin.services.storage  # type: ignore[attr-defined]
    for file_id, data in source["files"].items():
        r = await admin.get(f"/api/assets/{file_id}")
        assert r.status == 200 and r.raw == data, (file_id, r.status)
        assert await storage.exists(f"files/{file_id}")
    rows = await ok(await admin.get("/api/files", params={"fields": "storage"}))
    assert {row["storage"] for row in rows} == {backend}
    # A transformed image is rendered from the moved bytes (variants are not
    # carried: they are rendered again).
    photo = next(i for i, d in source["files"].items() if d != BYTES)
    assert (await admin.get(f"/api/assets/{photo}", params={"width": "40"})).status == 200


def cli(data_dir: Path, *args: str, database_url: str | None = None,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "workeros", "--data-dir", str(data_dir), *args]
    if database_url:
        argv += ["--database-url", database_url]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("WORKEROS_")}
    clean.update({"WORKEROS_LOAD_PLUGINS": ",".join(FIRST_PARTY), **(env or {})})
    return subprocess.run(argv, capture_output=True, text=True, env=clean, timeout=600)


def s3_env(settings: dict[str, Any]) -> dict[str, str]:
    return {"WORKEROS_" + k.upper().replace(".", "_"): str(v).lower() if isinstance(v, bool) else str(v)
            for k, v in settings.items()}


@pytest.mark.postgres
async def test_full_export_moves_sqlite_fs_to_postgres_s3_and_back(make_url, s3_endpoint, tmp_path) -> None:  # noqa: F811
    import uuid

    s3 = s3_settings(s3_endpoint, f"wos-full-{uuid.uuid4().hex[:12]}")
    first = tmp_path / "first.zip"
    async with running(await make_url("sqlite", "a"), tmp_path / "a", **{"storage.backend": "fs"}) as a:
        source = await build_source(a)
        manifest = await _export(a.services, first)
    assert manifest["full"] is True
    assert manifest["sections"]["files"]["content"] == {"objects": 2, "bytes": sum(map(len, source["files"].values()))}
    assert {"wos_webhooks", "wos_flows", "wos_functions", "wos_files", "wos_folders"} <= {
        t for entry in manifest["sections"].values() for t in entry["tables"]}
    with zipfile.ZipFile(first) as z:
        names = set(z.namelist())
    assert {f"sections/files/content/{i}" for i in source["files"]} <= names
    assert not any("wos_file_variants" in n or "wos_file_uploads" in n for n in names)

    pg = await make_url("postgres", "b")
    async with running(pg, tmp_path / "b", **s3) as b:
        from workeros.schema import transfer

        await transfer.import_archive(b.services, first, full=True)
        await check_restored(b, source, "s3")
        # Back again, through the command line: export from PostgreSQL + S3 ...
        second = tmp_path / "second.zip"
        done = await asyncio.to_thread(cli, tmp_path / "b-cli", "export", "--full", "--no-progress", str(second),
                                       database_url=pg, env=s3_env(s3))
        assert done.returncode == 0, done.stderr
        assert "files (3 rows, 2 objects)" in done.stdout, done.stdout

    # ... and import into an empty SQLite data dir on the disk.
    target = tmp_path / "c"
    done = await asyncio.to_thread(cli, target, "import", "--full", "--no-progress", str(second))
    assert done.returncode == 0, done.stderr
    async with running(f"sqlite:///{target / 'data.db'}", target, **{"storage.backend": "fs"}) as c:
        await check_restored(c, source, "fs")
    assert sorted(p.name for p in (target / "files" / "files").iterdir()) == sorted(source["files"])


async def _export(services: Any, path: Path) -> dict[str, Any]:
    from workeros.schema import transfer

    return await transfer.export_archive(services, path, full=True)


def _damage(archive: Path, member: str) -> None:
    """Flip bytes in the middle of ``member``'s stored data (a CRC or deflate
    error when it is read)."""
    with zipfile.ZipFile(archive) as z:
        info = z.getinfo(member)
    with open(archive, "r+b") as f:
        f.seek(info.header_offset + 26)
        name_len, extra_len = int.from_bytes(f.read(2), "little"), int.from_bytes(f.read(2), "little")
        start = info.header_offset + 30 + name_len + extra_len
        f.seek(start + info.compress_size // 2)
        chunk = f.read(64)
        f.seek(start + info.compress_size // 2)
        f.write(bytes(b ^ 0x5A for b in chunk))


def _rewritten(archive: Path, out: Path, edit_manifest: Any = None, drop: str | None = None) -> Path:
    with zipfile.ZipFile(archive) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            if item.filename == drop:
                continue
            data = src.read(item)
            if item.filename == "manifest.json" and edit_manifest is not None:
                manifest = json.loads(data)
                edit_manifest(manifest)
                data = json.dumps(manifest).encode()
            dst.writestr(item, data)
    return out


@pytest.mark.parametrize("storage_settings", ["fs", "s3"], indirect=True)
async def test_damaged_or_foreign_archives_are_refused_and_leave_nothing(wos_dialect, make_url, storage_settings,  # noqa: F811
                                                                         tmp_path) -> None:
    from workeros.schema import transfer

    archive = tmp_path / "full.zip"
    async with running(await make_url("sqlite", "a"), tmp_path / "a", **{"storage.backend": "fs"}) as a:
        source = await build_source(a)
        await transfer.export_archive(a.services, archive, full=True)
    ids = sorted(source["files"])

    damaged = tmp_path / "damaged.zip"
    damaged.write_bytes(archive.read_bytes())
    _damage(damaged, f"sections/files/content/{ids[-1]}")  # the last object: the first is already written
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    foreign = _rewritten(archive, tmp_path / "foreign.zip",
                         lambda m: m["sections"].update({"billing": {"tables": {}}}))
    missing = _rewritten(archive, tmp_path / "missing.zip", drop=f"sections/files/content/{ids[0]}")
    plain = tmp_path / "plain.zip"

    async with running(await make_url(wos_dialect, "b"), tmp_path / "b", **storage_settings) as b:
        storage = b.services.storage
        for bad, words in ((damaged, "archive is damaged"), (truncated, "not a ZIP archive"),
                           (foreign, "billing, which no installed plugin provides"),
                           (missing, "1 missing")):
            with pytest.raises(transfer.InvalidPayload) as info:
                await transfer.import_archive(b.services, bad, full=True)
            assert words in str(info.value), (bad.name, info.value)
            assert str(tmp_path) not in str(info.value)
            assert (await ok(await b.get("/api/schema/snapshot")))["collections"] == [], bad.name
            assert await ok(await b.get("/api/files")) == [], bad.name
            assert await ok(await b.get("/api/webhooks")) == [], bad.name
            for file_id in ids:
                assert not await storage.exists(f"files/{file_id}"), (bad.name, file_id)
        await transfer.export_archive(b.services, plain)
        with pytest.raises(transfer.InvalidPayload, match="not a full export"):
            await transfer.import_archive(b.services, plain, full=True)
        # ... and the instance still takes the good archive.
        await transfer.import_archive(b.services, archive, full=True)
        await check_restored(b, source, storage_settings.get("storage.backend", "fs"))


async def test_a_non_empty_target_is_refused(wos_dialect, make_url, tmp_path) -> None:  # noqa: F811
    from workeros.schema import transfer

    archive = tmp_path / "full.zip"
    async with running(await make_url("sqlite", "a"), tmp_path / "a", **{"storage.backend": "fs"}) as a:
        source = await build_source(a)
        await transfer.export_archive(a.services, archive, full=True)
    async with running(await make_url(wos_dialect, "b"), tmp_path / "b", **{"storage.backend": "fs"}) as b:
        # Only a webhook: no collection, no user, still not empty.
        await ok(await b.post("/api/webhooks", json={"name": "mine", "url": "http://127.0.0.1:9/x",
                                                     "events": ["items.create"]}))
        with pytest.raises(transfer.Conflict, match="wos_webhooks"):
            await transfer.import_archive(b.services, archive, full=True)
        assert [w["name"] for w in await ok(await b.get("/api/webhooks"))] == ["mine"]
        assert await ok(await b.get("/api/files")) == []
    async with running(await make_url(wos_dialect, "c"), tmp_path / "c", **{"storage.backend": "fs"}) as c:
        # Storage holding a file of the archive (a shared bucket, a reused folder).
        stray = sorted(source["files"])[-1]

        async def one() -> AsyncIterator[bytes]:
            yield b"someone else's"

        await c.services.storage.put(f"files/{stray}", one())
        with pytest.raises(transfer.Conflict, match="storage already holds"):
            await transfer.import_archive(c.services, archive, full=True)
        assert await ok(await c.get("/api/files")) == []
        assert not await c.services.storage.exists(f"files/{sorted(source['files'])[0]}")
        assert b"".join([x async for x in c.services.storage.get(f"files/{stray}")]) == b"someone else's"
    # The command line says so plainly, without a trace.
    target = tmp_path / "d"
    assert (await asyncio.to_thread(cli, target, "import", "--no-progress", str(archive))).returncode == 0
    again = await asyncio.to_thread(cli, target, "import", "--full", "--no-progress", str(archive))
    assert again.returncode == 1 and "empty instance" in again.stderr and "Traceback" not in again.stderr
