"""TUS 1.0.0 at /api/files/tus on both dialects and backends: creation,
offsets and 409 on a wrong one, termination, expiration, permission at
creation, resume after a server restart, and a real client (tuspy)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
from typing import Any

from aiohttp.test_utils import TestClient
from callers import Api, TestCallers

from workeros.api import SERVICES

from .conftest import png

TUS = {"Tus-Resumable": "1.0.0"}


def metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


async def create(api: Api, length: int, **meta: str) -> Any:
    return await api.post("/api/files/tus", headers={**TUS, "Upload-Length": str(length),
                                                     "Upload-Metadata": metadata(**meta)})


async def send(api: Api, location: str, offset: int, body: bytes) -> Any:
    return await api.patch(location, data=body, headers={**TUS, "Upload-Offset": str(offset),
                                                         "Content-Type": "application/offset+octet-stream"})


async def test_create_patch_head_and_finish(booted) -> None:
    data = png(300, 200)
    async with booted() as (admin, _):
        options = await admin.request("OPTIONS", "/api/files/tus")
        assert options.status == 204 and "creation" in options.headers["Tus-Extension"]
        r = await create(admin, len(data), filename="pic.png", filetype="text/plain", title="Resumed")
        assert r.status == 201, r
        location = r.headers["Location"]
        assert location.startswith("/api/files/tus/") and r.headers["Tus-Resumable"] == "1.0.0"
        head = await admin.request("HEAD", location, headers=TUS)
        assert head.headers["Upload-Offset"] == "0" and head.headers["Upload-Length"] == str(len(data))
        assert (await admin.get("/api/files")).data == []  # unfinished uploads are not files
        half = len(data) // 2
        r = await send(admin, location, 0, data[:half])
        assert r.status == 204 and r.headers["Upload-Offset"] == str(half)
        wrong = await send(admin, location, 0, data[half:])
        assert wrong.status == 409 and wrong.code == "CONFLICT"
        assert (await admin.request("HEAD", location, headers=TUS)).headers["Upload-Offset"] == str(half)
        r = await send(admin, location, half, data[half:])
        assert r.status == 204 and r.headers["Upload-Offset"] == str(len(data))
        file_id = r.headers["Workeros-File-Id"]
        row = (await admin.get(f"/api/files/{file_id}")).data
        assert (row["type"], row["width"], row["height"], row["title"]) == ("image/png", 300, 200, "Resumed")
        assert row["filename_download"] == "pic.png"
        assert row["checksum"] == "sha256:" + hashlib.sha256(data).hexdigest()
        assert (await admin.get(f"/api/assets/{file_id}")).raw == data
        assert (await admin.request("HEAD", location, headers=TUS)).status == 404  # finished: gone


async def test_protocol_errors(booted) -> None:
    async with booted(**{"files.max_size": 1000}) as (admin, _):
        assert (await admin.post("/api/files/tus", headers={"Upload-Length": "10"})).status == 412
        assert (await admin.post("/api/files/tus", headers=TUS)).code == "INVALID_PAYLOAD"
        big = await create(admin, 1001)
        assert big.status == 413 and big.code == "PAYLOAD_TOO_LARGE"
        location = (await create(admin, 10)).headers["Location"]
        r = await admin.patch(location, data=b"x", headers={**TUS, "Upload-Offset": "0",
                                                              "Content-Type": "application/octet-stream"})
        assert r.status == 415
        assert (await send(admin, location, 0, b"x" * 11)).code == "INVALID_PAYLOAD"
        assert (await admin.request("HEAD", "/api/files/tus/" + "0" * 32, headers=TUS)).status == 404
        assert (await admin.request("HEAD", "/api/files/tus/../../etc", headers=TUS)).status == 404


async def test_termination_and_permissions(booted) -> None:
    async with booted() as (admin, svc):
        location = (await create(admin, 100)).headers["Location"]
        await send(admin, location, 0, b"a" * 40)
        r = await admin.delete(location, headers=TUS)
        assert r.status == 204
        assert (await admin.request("HEAD", location, headers=TUS)).status == 404
        assert not any(svc.settings["data_dir"] and os.scandir(os.path.join(svc.settings["data_dir"], "uploads")))
        # creation is permission-checked: a role without create on wos_files is refused
        stranger = admin.as_role("viewer")
        assert (await create(stranger, 10)).status == 403
        # someone else's upload is invisible
        location = (await create(admin, 10)).headers["Location"]
        assert (await admin.anonymous().request("HEAD", location, headers=TUS)).status == 404
        assert (await send(admin.anonymous(), location, 0, b"x")).status == 404


async def test_expired_uploads_are_gone(booted) -> None:
    async with booted(**{"files.tus_expire_hours": 0.0}) as (admin, _):
        r = await create(admin, 10)
        assert "Upload-Expires" in r.headers
        assert (await admin.request("HEAD", r.headers["Location"], headers=TUS)).status in (404, 410)


async def test_resume_after_restart(make_server, storage_settings) -> None:
    data = os.urandom(300_000)
    settings = {"network.allow_private": True, **storage_settings}
    async with make_server(TestCallers(), **settings) as server, TestClient(server) as client:
        admin = Api(client).as_admin()
        location = (await create(admin, len(data), filename="r.bin")).headers["Location"]
        assert (await send(admin, location, 0, data[:100_000])).status == 204
    async with make_server(TestCallers(), **settings) as server, TestClient(server) as client:
        admin = Api(client).as_admin()
        head = await admin.request("HEAD", location, headers=TUS)
        assert head.status == 200 and head.headers["Upload-Offset"] == "100000"
        r = await send(admin, location, 100_000, data[100_000:])
        assert r.status == 204
        got = await admin.get(f"/api/assets/{r.headers['Workeros-File-Id']}")
        assert got.raw == data
        assert server.app[SERVICES] is not None


async def test_a_real_tus_client(booted) -> None:
    from tusclient import client as tus_client

    data = os.urandom(250_000)
    async with booted() as (admin, _):
        url = str(admin.client.make_url("/api/files/tus"))
        headers = {"X-Workeros-Test-Caller": "admin"}

        def run() -> str:
            tus = tus_client.TusClient(url, headers=headers)
            import io

            uploader = tus.uploader(file_stream=io.BytesIO(data), chunk_size=64 * 1024,
                                    metadata={"filename": "client.bin"})
            uploader.upload()
            return uploader.url

        await asyncio.to_thread(run)
        files = (await admin.get("/api/files")).data
        assert [f["filename_download"] for f in files] == ["client.bin"]
        assert (await admin.get(f"/api/assets/{files[0]['id']}")).raw == data
