"""Large objects on both backends: an upload over the S3 part size goes up as
a multipart upload and comes back byte for byte (ranges across a part
boundary included); one cut off by files.max_size in the middle leaves no
object, no row and no unfinished multipart upload."""

from __future__ import annotations

import hashlib
import os

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
