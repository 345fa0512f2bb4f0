"""Export and import (``workeros export`` / ``workeros import``): one archive with
the schema, every row and the system data, restored into an empty instance on
the other dialect with the same snapshot and the same rows; all or nothing;
streamed in batches, not held in memory."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
import tracemalloc
import zipfile
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import FIRST_PARTY
from tests.kernel.snapshot.conftest import DIALECT_PAIRS, running
from tests.kernel.snapshot.schema_setup import all_rows, create_schema, expect, fill
from workeros.db.tables.bus import bus_messages
from workeros.schema import transfer

COLLECTIONS = ("notes", "people", "people_tags", "tags", "teams")
CREDENTIALS = {"email": "owner@example.com", "password": "correct horse battery"}


async def snapshot_of(admin: Any) -> dict[str, Any]:
    return (await expect(await admin.get("/api/schema/snapshot"), 200)).data


async def contents(admin: Any) -> dict[str, list[dict[str, Any]]]:
    """Every row of every collection, in primary-key order."""
    return {name: sorted(await all_rows(admin, name), key=lambda row: str(row["id"])) for name in COLLECTIONS}


async def build_source(api: Any) -> dict[str, Any]:
    """Schema, data, an owner account, a role with a permission, an API key."""
    admin = api.as_admin()
    await create_schema(admin)
    await fill(admin)
    await expect(await api.anonymous().post("/api/auth/sign-up", json=CREDENTIALS), 201)
    role = (await expect(await admin.post("/api/roles", json={"name": "reader"}), 201)).data["id"]
    await expect(await admin.post("/api/permissions", json={
        "role": role, "collection": "teams", "action": "read", "filter": {"title": {"_neq": "Red"}},
        "fields": ["id", "title"]}), 201)
    await expect(await admin.post("/api/users", json={"email": "reader@example.com", "password": "reader pass 123",
                                                      "role": role}), 201)
    return {"snapshot": await snapshot_of(admin), "rows": await contents(admin),
            "roles": sorted(r["name"] for r in (await expect(await admin.get("/api/roles"), 200)).data),
            "users": sorted(u["email"] for u in (await expect(await admin.get("/api/users"), 200)).data)}


async def check_restored(api: Any, source: dict[str, Any]) -> None:
    admin = api.as_admin()
    assert await snapshot_of(admin) == source["snapshot"]
    assert await contents(admin) == source["rows"]
    assert sorted(r["name"] for r in (await expect(await admin.get("/api/roles"), 200)).data) == source["roles"]
    assert sorted(u["email"] for u in (await expect(await admin.get("/api/users"), 200)).data) == source["users"]
    # Passwords and permissions came across: the reader signs in and sees what it saw.
    owner = await api.sign_in(**CREDENTIALS)
    assert (await owner.get("/api/users/me")).data["email"] == CREDENTIALS["email"]
    reader = await api.sign_in("reader@example.com", "reader pass 123")
    r = await expect(await reader.get("/api/items/teams", params={"sort": "id"}), 200)
    assert r.data == [{"id": 2, "title": "Blue"}, {"id": 3, "title": "Green"}]
    assert (await reader.get("/api/items/people")).status == 403
    # Sequences moved past the imported ids; relations are enforced.
    created = (await expect(await admin.post("/api/items/teams", json={"title": "New"}), 200)).data
    assert created["id"] == 4
    r = await admin.post("/api/items/notes", json={"body": "dangling", "team_id": 999})
    assert r.status in (400, 409), r
    await expect(await admin.delete("/api/items/teams/1"), 204)
    assert [row["body"] for row in await all_rows(admin, "notes")] == ["none"], "on_delete cascade came across"


@pytest.mark.parametrize("dialects", DIALECT_PAIRS)
async def test_export_then_import_into_the_other_dialect_restores_everything(dialects, make_url, tmp_path) -> None:
    source_dialect, target_dialect = dialects
    archive = tmp_path / "export.zip"
    async with running(await make_url(source_dialect, "a"), tmp_path / "a") as a:
        source = await build_source(a)
        # A large realtime event in flight between instances (PostgreSQL bus).
        async with a.services.db.transaction() as conn:
            await conn.execute(bus_messages.insert().values(channel="events", payload=b"\x00\xff" * 5000,
                                                            created_at=dt.datetime.now(dt.UTC)))
        manifest = await transfer.export_archive(a.services, archive)
    assert "wos_bus_messages" not in manifest["system"], "events in flight stay behind"
    assert manifest["dialect"] == {"sqlite": "sqlite", "postgres": "postgresql"}[source_dialect]
    assert {name: entry["rows"] for name, entry in manifest["collections"].items()} == {
        "notes": 3, "people": 6, "people_tags": 3, "tags": 2, "teams": 3}
    with zipfile.ZipFile(archive) as z:
        names = set(z.namelist())
        assert {"manifest.json", "schema.json", "data/people.jsonl", "system/wos_users.jsonl"} <= names
        assert not any("sessions" in n or "one_time" in n or "rate_limits" in n for n in names)
        first = json.loads(z.read("data/people.jsonl").splitlines()[0])
        assert set(first) >= {"id", "name", "price", "seen_at", "born", "wakes", "data", "team"}
    assert not archive.with_name("export.zip.partial").exists()

    async with running(await make_url(target_dialect, "b"), tmp_path / "b") as b:
        loaded = await transfer.import_archive(b.services, archive)
        assert loaded["collections"]["people"]["rows"] == 6
        await check_restored(b, source)


def _tampered(archive: Path, out: Path, member: str, extra_line: bytes) -> Path:
    """A copy of ``archive`` with one more row in ``member`` (the manifest's
    count follows, so only the row itself is wrong)."""
    collection = member.removeprefix("data/").removesuffix(".jsonl")
    with zipfile.ZipFile(archive) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename == member:
                data += extra_line
            if item.filename == "manifest.json":
                manifest = json.loads(data)
                manifest["collections"][collection]["rows"] += 1
                data = json.dumps(manifest).encode()
            dst.writestr(item, data)
    return out


async def test_import_needs_an_empty_instance_and_is_all_or_nothing(wos_dialect, make_url, tmp_path) -> None:
    archive = tmp_path / "export.zip"
    async with running(await make_url(wos_dialect, "a"), tmp_path / "a") as a:
        source = await build_source(a)
        await transfer.export_archive(a.services, archive)
        with pytest.raises(transfer.Conflict, match="empty instance"):
            await transfer.import_archive(a.services, archive)
        assert await contents(a.as_admin()) == source["rows"]

    not_a_string = _tampered(archive, tmp_path / "bad-value.zip", "data/teams.jsonl",
                             b'{"id": 9, "title": {"not": "a string"}}\n')
    dangling = _tampered(archive, tmp_path / "dangling.zip", "data/notes.jsonl",
                         b'{"id": 9, "body": "x", "team_id": 77}\n')
    no_manifest = tmp_path / "no-manifest.zip"
    with zipfile.ZipFile(no_manifest, "w") as z:
        z.writestr("schema.json", "{}")
    async with running(await make_url(wos_dialect, "b"), tmp_path / "b") as b:
        admin = b.as_admin()
        roles = (await expect(await admin.get("/api/roles"), 200)).data
        for bad, error, words in ((not_a_string, transfer.InvalidPayload, "data/teams.jsonl line 4"),
                                  (dangling, transfer.Conflict, "match no row of teams"),
                                  (no_manifest, transfer.InvalidPayload, "manifest.json")):
            with pytest.raises(error) as info:
                await transfer.import_archive(b.services, bad)
            assert words in str(info.value), (bad.name, info.value)
            assert (await snapshot_of(admin))["collections"] == [], bad.name
            assert (await expect(await admin.get("/api/users"), 200)).data == [], bad.name
            assert (await expect(await admin.get("/api/roles"), 200)).data == roles, bad.name
        # ... and the instance still takes the good archive.
        await transfer.import_archive(b.services, archive)
        await check_restored(b, source)


def test_binary_system_columns_come_back_as_bytes() -> None:
    from workeros.serialize import dumps, loads

    column = sa.Column("payload", sa.LargeBinary)
    value = b"\x00\xffbinary"
    assert transfer._revive(column, loads(dumps({"v": value}))["v"]) == value


# -- streaming -------------------------------------------------------------------------------

ROWS = 20_000
PAYLOAD = "x" * 400


async def test_export_and_import_stream_instead_of_loading_every_row(wos_dialect, make_url, tmp_path) -> None:
    """20k rows of ~0.5 kB (10 MB of values): the Python heap stays a small
    fraction of that during export and import."""
    archive = tmp_path / "big.zip"
    async with running(await make_url(wos_dialect, "a"), tmp_path / "a") as a:
        await expect(await a.as_admin().post("/api/collections", json={"collection": "logs", "fields": [
            {"field": "line", "type": "text"}, {"field": "n", "type": "integer"},
            {"field": "at", "type": "datetime"}]}), 201)
        table = a.services.schema.current().collections["logs"].table
        async with a.services.db.transaction() as conn:
            for start in range(0, ROWS, 5000):
                await conn.execute(table.insert(), [
                    {"line": f"{i:06d}{PAYLOAD}", "n": i, "at": None} for i in range(start, start + 5000)])
        tracemalloc.start()
        try:
            began = time.perf_counter()
            manifest = await transfer.export_archive(a.services, archive)
            export_seconds = time.perf_counter() - began
            _, export_peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert manifest["collections"]["logs"]["rows"] == ROWS
    with zipfile.ZipFile(archive) as z:
        assert z.getinfo("data/logs.jsonl").file_size > ROWS * len(PAYLOAD)

    async with running(await make_url(wos_dialect, "b"), tmp_path / "b") as b:
        tracemalloc.start()
        try:
            began = time.perf_counter()
            await transfer.import_archive(b.services, archive)
            import_seconds = time.perf_counter() - began
            _, import_peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        async with b.services.db.read() as conn:
            logs = b.services.schema.current().collections["logs"].table
            count, total = (await conn.execute(sa.select(sa.func.count(), sa.func.sum(logs.c.n)))).one()
        assert (count, total) == (ROWS, sum(range(ROWS)))

    print(f"\n{wos_dialect}: export {ROWS / export_seconds:,.0f} rows/s, peak {export_peak / 1e6:.1f} MB; "
          f"import {ROWS / import_seconds:,.0f} rows/s, peak {import_peak / 1e6:.1f} MB "
          f"(data {ROWS * len(PAYLOAD) / 1e6:.0f} MB; times under tracemalloc)")
    # All rows as Python dicts would take several times the 8 MB of payload.
    assert export_peak < 6e6, f"export peak {export_peak / 1e6:.1f} MB"
    assert import_peak < 6e6, f"import peak {import_peak / 1e6:.1f} MB"


# -- the command line --------------------------------------------------------------------------

def _cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"WORKEROS_LOAD_PLUGINS": ",".join(FIRST_PARTY), "WORKEROS_LOG_LEVEL": "warning", "PATH": ""}
    return subprocess.run([sys.executable, "-m", "workeros", "--data-dir", str(data_dir), *args],
                          capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.slow
@pytest.mark.parametrize("dialects", DIALECT_PAIRS)
async def test_cli_export_and_import(dialects, make_url, tmp_path) -> None:
    source_dialect, target_dialect = dialects
    source_url, target_url = await make_url(source_dialect, "a"), await make_url(target_dialect, "b")
    async with running(source_url, tmp_path / "a") as a:
        source = await build_source(a)
    archive = tmp_path / "out" / "export.zip"
    archive.parent.mkdir()
    out = _cli(tmp_path / "a", "export", str(archive), "--database-url", source_url)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("exported 5 collections (17 rows)")

    out = _cli(tmp_path / "b", "import", str(archive), "--database-url", target_url)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("imported 5 collections (17 rows)")
    out = _cli(tmp_path / "b", "import", str(archive), "--database-url", target_url)
    assert out.returncode == 1 and "empty instance" in out.stderr and "Traceback" not in out.stderr
    out = _cli(tmp_path / "b", "import", str(tmp_path / "nope.zip"), "--database-url", target_url)
    assert out.returncode == 1 and "no such file" in out.stderr
    async with running(target_url, tmp_path / "b") as b:
        await check_restored(b, source)
