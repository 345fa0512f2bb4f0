"""Files uploaded through the API land in the archive and come back whole, by
range, and are gone after a delete; on SQLite and PostgreSQL."""

import sqlite3
from pathlib import Path

import aiohttp
import pytest

ADMIN = {"email": "admin@example.com", "password": "correct horse 1"}


@pytest.fixture
def wos_settings_overrides():
    return {"storage.backend": "sqlar", "admin.email": ADMIN["email"], "admin.password": ADMIN["password"],
            "auth.password.argon2_time_cost": 1, "auth.password.argon2_memory_kib": 8192}


async def admin_headers(client):
    response = await client.post("/api/auth/login", json={**ADMIN, "mode": "json"})
    assert response.status == 200, await response.text()
    return {"Authorization": "Bearer " + (await response.json())["data"]["access_token"]}


async def test_files_are_stored_in_the_archive(wos_client, wos_settings):
    headers = await admin_headers(wos_client)
    content = b"hello sqlar " * 1000
    form = aiohttp.FormData()
    form.add_field("file", content, filename="hello.txt", content_type="text/plain")
    response = await wos_client.post("/api/files", data=form, headers=headers)
    assert response.status == 201, await response.text()
    file_id = (await response.json())["data"]["id"]

    asset = await wos_client.get(f"/api/assets/{file_id}", headers=headers)
    assert asset.status == 200 and await asset.read() == content
    ranged = await wos_client.get(f"/api/assets/{file_id}", headers={**headers, "Range": "bytes=6-10"})
    assert ranged.status == 206 and await ranged.read() == b"sqlar"

    archive = Path(wos_settings["data_dir"]) / "files.sqlar"
    with sqlite3.connect(archive) as db:
        rows = db.execute("SELECT name, sz, length(data) FROM sqlar").fetchall()
    assert len(rows) == 1
    name, size, stored = rows[0]
    assert size == len(content) and stored < size  # compressed, as the format allows

    deleted = await wos_client.delete(f"/api/files/{file_id}", headers=headers)
    assert deleted.status == 204
    with sqlite3.connect(archive) as db:
        assert db.execute("SELECT count(*) FROM sqlar WHERE name = ?", (name,)).fetchone() == (0,)
    gone = await wos_client.get(f"/api/assets/{file_id}", headers=headers)
    assert gone.status == 404


def test_the_backend_is_the_active_storage(wos_app):
    from workeros.api import REGISTRY

    assert wos_app[REGISTRY].summary()["storage"]["active"] == "sqlar"
