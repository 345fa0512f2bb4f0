"""Large objects on both backends: an upload over the S3 part size goes up as
a multipart upload and comes back byte for byte (ranges across a part
boundary included); one cut off by files.max_size in the middle leaves no
object, no row and no unfinished multipart upload."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os

from callers import TEST_CALLER_HEADER

from .conftest import upload

PART = 5 * 1024 * 1024


async def test_multipart_over_the_part_size(booted) -> None:
    data = os.urandom(2 * PART + 123_457)
    async with booted() as (admin, svc):
        r = await upload(admin, data, filename="big.bin")
        assert r.status == 201, r
        row = r.data
        assert row["filesize"] == len(data) and row["checksum"] == "sha256:" + hashlib.sha256(data).hexdigest()
        got = await admin.get(f"/api/assets/{row['id']}")
        assert got.status == 200 and hashlib.sha256(got.raw).digest() == hashlib.sha256(data).digest()
        start, end = PART - 10, PART + 9
        part = await admin.get(f"/api/assets/{row['id']}", headers={"Range": f"bytes={start}-{end}"})
        assert part.status == 206 and part.raw == data[start:end + 1]
        _, backend = await svc.get("files").default()
        if hasattr(backend, "multipart_uploads"):
            assert await backend.multipart_uploads() == []


async def test_cut_off_in_the_middle_leaves_nothing(booted) -> None:
    async with booted(**{"files.max_size": 2 * PART + 1}) as (admin, svc):
        r = await upload(admin, os.urandom(3 * PART), filename="too-big.bin")
        assert r.status == 413 and r.code == "PAYLOAD_TOO_LARGE", r
        assert (await admin.get("/api/files")).data == []
        _, backend = await svc.get("files").default()
        if hasattr(backend, "multipart_uploads"):
            assert await backend.multipart_uploads() == []
            assert await backend.keys() == []
        else:
            assert not backend.root.exists() or not [p for p in backend.root.rglob("*") if p.is_file()]


async def test_a_client_going_away_mid_download(booted, caplog) -> None:
    """A client that stops reading and closes the connection mid-body is no
    error of the server's: nothing logged, the next request answered."""
    data = os.urandom(24 * 1024 * 1024)  # more than the socket buffers hold
    async with booted() as (admin, _):
        row = (await upload(admin, data, filename="big.bin")).data
        url = f"/api/assets/{row['id']}"
        caplog.set_level(logging.ERROR)
        for _ in range(3):
            response = await admin.client.get(url, headers={TEST_CALLER_HEADER: "admin"})
            assert response.status == 200
            assert len(await response.content.readexactly(65536)) == 65536
            response.close()  # drops the connection
        await asyncio.sleep(0.5)
        got = await admin.get(url, headers={"Range": "bytes=0-99"})
        assert got.status == 206 and got.raw == data[:100]
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
