"""Files over real HTTP, on both dialects and both storage backends (``fs``
and a real S3 endpoint): uploads sniffed, hashed and measured, assets with
ETag/Range, permissions per role, 413 leaving nothing behind."""

from __future__ import annotations

import hashlib
import io

import pytest
from PIL import Image

from .conftest import jpeg, png, upload


async def test_upload_sniffs_hashes_and_measures(booted) -> None:
    async with booted() as (admin, svc):
        data = png(64, 32)
        r = await upload(admin, data, filename="../../etc/shot.jpg", content_type="text/html", title="Shot")
        assert r.status == 201, r
        row = r.data
        assert row["type"] == "image/png"  # from the bytes, not the client's header or name
        assert row["checksum"] == "sha256:" + hashlib.sha256(data).hexdigest()
        assert (row["filesize"], row["width"], row["height"]) == (len(data), 64, 32)
        assert row["filename_download"] == "shot.jpg" and row["title"] == "Shot"
        assert row["storage"] == svc.settings["storage.backend"] and row["uploaded_by"] == "test-admin"
        got = await admin.get(f"/api/assets/{row['id']}")
        assert got.status == 200 and got.raw == data
        assert got.headers["Content-Type"] == "image/png"
        assert got.headers["X-Content-Type-Options"] == "nosniff"
        listed = await admin.get("/api/files", params={"filter": '{"type": {"_eq": "image/png"}}'})
        assert [f["id"] for f in listed.data] == [row["id"]]
        # activity like any collection
        activity = await admin.get("/api/activity", params={"filter": '{"collection": {"_eq": "wos_files"}}'})
        assert [a["action"] for a in activity.data] == ["item.create"], activity


async def test_several_files_and_text(booted) -> None:
    import aiohttp

    async with booted() as (admin, _):
        form = aiohttp.FormData()
        form.add_field("title", "Both")
        form.add_field("file", b"hello, plain text\n", filename="a.txt")
        form.add_field("file", b"%PDF-1.4\n%...", filename="b.pdf")
        r = await admin.post("/api/files", data=form)
        assert r.status == 201, r
        assert [f["type"] for f in r.data] == ["text/plain", "application/pdf"]
        assert all(f["title"] == "Both" for f in r.data)


async def test_etag_and_ranges(booted) -> None:
    async with booted() as (admin, _):
        data = bytes(range(256)) * 40
        row = (await upload(admin, data, filename="blob.bin")).data
        url = f"/api/assets/{row['id']}"
        first = await admin.get(url)
        etag = first.headers["ETag"]
        assert etag.startswith('"') and first.headers["Accept-Ranges"] == "bytes"
        assert "max-age=" in first.headers["Cache-Control"]
        assert (await admin.get(url, headers={"If-None-Match": etag})).status == 304
        assert (await admin.get(url, headers={"If-None-Match": '"other"'})).status == 200
        part = await admin.get(url, headers={"Range": "bytes=100-199"})
        assert part.status == 206 and part.raw == data[100:200]
        assert part.headers["Content-Range"] == f"bytes 100-199/{len(data)}"
        tail = await admin.get(url, headers={"Range": "bytes=-10"})
        assert tail.status == 206 and tail.raw == data[-10:]
        open_end = await admin.get(url, headers={"Range": f"bytes={len(data) - 5}-"})
        assert open_end.raw == data[-5:]
        outside = await admin.get(url, headers={"Range": f"bytes={len(data)}-"})
        assert outside.status == 416 and outside.code == "RANGE_NOT_SATISFIABLE"
        # application/octet-stream is never inline
        assert first.headers["Content-Disposition"].startswith("attachment")


async def test_objects_missing_from_storage(booted) -> None:
    """A variant whose object is gone is rendered again (the same bytes); an
    original whose object is gone is a clean 404, with no path in it."""
    import sqlalchemy as sa
    from workeros_files.tables import variants

    async with booted() as (admin, svc):
        row = (await upload(admin, jpeg(320, 240), filename="p.jpg")).data
        url = f"/api/assets/{row['id']}"
        first = await admin.get(url, params={"width": "50"})
        assert first.status == 200 and Image.open(io.BytesIO(first.raw)).size == (50, 38)
        files = svc.get("files")
        storage = await files.storage(row["storage"])
        async with svc.db.read() as conn:
            keys = (await conn.execute(sa.select(variants.c.key).where(variants.c.file == row["id"]))).scalars().all()
        assert len(keys) == 1
        await storage.delete(keys[0])
        again = await admin.get(url, params={"width": "50"})
        if again.status == 503:  # a remote store notices on reading: forgotten, rendered on the next request
            assert again.code == "SERVICE_UNAVAILABLE" and again.headers["Retry-After"]
            again = await admin.get(url, params={"width": "50"})
        assert again.status == 200 and again.raw == first.raw
        assert again.headers["ETag"] == first.headers["ETag"]
        await storage.delete(f"files/{row['id']}")
        gone = await admin.get(url)
        assert gone.status == 404 and gone.code == "NOT_FOUND"
        assert "files/" not in gone.raw.decode() and str(storage.__class__.__name__) not in gone.raw.decode()


async def test_html_and_svg_are_never_inline(booted) -> None:
    async with booted() as (admin, _):
        for body, name, mime in ((b"<!DOCTYPE html><script>alert(1)</script>", "x.png", "text/html"),
                                 (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
                                  "y.jpg", "image/svg+xml")):
            row = (await upload(admin, body, filename=name, content_type="image/png")).data
            assert row["type"] == mime
            got = await admin.get(f"/api/assets/{row['id']}")
            assert got.headers["Content-Disposition"].startswith("attachment")
            assert "sandbox" in got.headers["Content-Security-Policy"]
            assert got.headers["X-Content-Type-Options"] == "nosniff"
        safe = (await upload(admin, png())).data
        assert (await admin.get(f"/api/assets/{safe['id']}")).headers["Content-Disposition"].startswith("inline")
        assert (await admin.get(f"/api/assets/{safe['id']}?download")).headers["Content-Disposition"] \
            .startswith("attachment")


async def test_max_size_413_leaves_nothing(booted) -> None:
    async with booted(**{"files.max_size": 1000}) as (admin, svc):
        r = await upload(admin, b"x" * 5000, filename="big.bin")
        assert r.status == 413 and r.code == "PAYLOAD_TOO_LARGE", r
        assert (await admin.get("/api/files")).data == []
        storage = svc.get("files")
        name, backend = await storage.default()
        assert await _stored_keys(backend) == []
        ok = await upload(admin, b"x" * 1000, filename="fits.bin")
        assert ok.status == 201


async def _stored_keys(backend) -> list[str]:
    if hasattr(backend, "root"):
        return sorted(str(p.relative_to(backend.root)) for p in backend.root.rglob("*") if p.is_file()) \
            if backend.root.exists() else []
    return await backend.keys()


async def test_permissions_per_role(booted) -> None:
    async with booted() as (admin, svc):
        assert (await admin.post("/api/roles", json={"id": "editor", "name": "Editor"})).status == 201
        for action in ("create", "read", "update", "delete"):
            r = await admin.post("/api/permissions", json={
                "role": "editor", "collection": "wos_files", "action": action,
                "filter": None if action == "create" else {"uploaded_by": {"_eq": "$CURRENT_USER"}}})
            assert r.status in (200, 201), r
        ids = {}
        for name in ("alice", "bob"):
            r = await admin.post("/api/users", json={"email": f"{name}@wos.test", "password": "pw-long-enough-1",
                                                     "role": "editor"})
            assert r.status == 201, r
            ids[name] = r.data["id"]
        alice = admin.as_role("editor", user=ids["alice"])
        bob = admin.as_role("editor", user=ids["bob"])
        r = await upload(alice, png(), filename="a.png")
        assert r.status == 201, r
        a = r.data
        b = (await upload(bob, png(8, 8), filename="b.png")).data
        assert a["uploaded_by"] == ids["alice"]
        assert [f["id"] for f in (await alice.get("/api/files")).data] == [a["id"]]
        assert (await alice.get(f"/api/assets/{b['id']}")).status == 404
        assert (await alice.get(f"/api/files/{b['id']}")).status == 404
        assert (await alice.patch(f"/api/files/{b['id']}", json={"title": "mine"})).status == 404
        assert (await alice.delete(f"/api/files/{b['id']}")).status == 404
        r = await alice.patch(f"/api/files/{a['id']}", json={"title": "renamed"})
        assert r.status == 200 and r.data["title"] == "renamed"
        assert (await alice.patch(f"/api/files/{a['id']}", json={"checksum": "sha256:0"})).code == "INVALID_PAYLOAD"
        assert (await alice.patch(f"/api/files/{a['id']}", json={"uploaded_by": "bob"})).code == "INVALID_PAYLOAD"
        # a role without a create rule is refused before any byte is stored
        viewer = admin.as_role("viewer", user=ids["bob"])
        assert (await upload(viewer, png())).status == 403
        anonymous = admin.anonymous()
        assert (await anonymous.get(f"/api/assets/{a['id']}")).status == 404
        assert (await alice.delete(f"/api/files/{a['id']}")).status == 204
        assert (await admin.get(f"/api/assets/{a['id']}")).status == 404
        name, backend = await svc.get("files").default()
        assert not await backend.exists(f"files/{a['id']}")


async def test_public_files(booted) -> None:
    async with booted() as (admin, _):
        r = await admin.post("/api/permissions", json={"role": "public", "collection": "wos_files",
                                                        "action": "read", "filter": {"title": {"_eq": "public"}}})
        assert r.status in (200, 201), r
        shown = (await upload(admin, png(), title="public")).data
        hidden = (await upload(admin, png(), title="private")).data
        anonymous = admin.anonymous()
        got = await anonymous.get(f"/api/assets/{shown['id']}")
        assert got.status == 200 and got.headers["Cache-Control"].startswith("public")
        assert (await anonymous.get(f"/api/assets/{hidden['id']}")).status == 404
        assert (await anonymous.get("/api/assets/not-a-uuid")).status in (400, 404)


async def test_transforms_measured_by_pillow(booted) -> None:
    async with booted() as (admin, _):
        row = (await upload(admin, jpeg(640, 480), filename="p.jpg")).data
        url = f"/api/assets/{row['id']}"
        cases = [
            ({"width": "320"}, "JPEG", (320, 240)),
            ({"width": "100", "height": "100", "fit": "cover"}, "JPEG", (100, 100)),
            ({"width": "100", "height": "100", "fit": "contain", "format": "png"}, "PNG", (100, 100)),
            ({"width": "100", "height": "100", "fit": "inside"}, "JPEG", (100, 75)),
            ({"width": "100", "height": "100", "fit": "outside"}, "JPEG", (133, 100)),
            ({"height": "48", "format": "webp"}, "WEBP", (64, 48)),
        ]
        for params, fmt, size in cases:
            r = await admin.get(url, params=params)
            assert r.status == 200, (params, r)
            image = Image.open(io.BytesIO(r.raw))
            assert (image.format, image.size) == (fmt, size), params
            again = await admin.get(url, params=params)
            assert again.raw == r.raw and again.headers["ETag"] == r.headers["ETag"]  # cached, same bytes
            assert (await admin.get(url, params=params, headers={"If-None-Match": r.headers["ETag"]})).status == 304
        low = await admin.get(url, params={"width": "320", "quality": "5"})
        high = await admin.get(url, params={"width": "320", "quality": "95"})
        assert len(low.raw) < len(high.raw)
        auto = await admin.get(url, params={"width": "50", "format": "auto"}, headers={"Accept": "image/webp,*/*"})
        assert Image.open(io.BytesIO(auto.raw)).format == "WEBP" and auto.headers["Vary"] == "Accept"
        plain = await admin.get(url, params={"width": "50", "format": "auto"}, headers={"Accept": "*/*"})
        assert Image.open(io.BytesIO(plain.raw)).format == "JPEG"


@pytest.mark.parametrize("params", [
    {"width": "0"}, {"width": "abc"}, {"width": "4001"}, {"height": "-3"}, {"fit": "stretch"}, {"quality": "0"},
    {"quality": "101"}, {"format": "gif"}, {"key": "nope"},
])
async def test_bad_transform_params_are_400(booted, params) -> None:
    async with booted() as (admin, _):
        row = (await upload(admin, png())).data
        r = await admin.get(f"/api/assets/{row['id']}", params=params)
        assert r.status == 400 and r.code == "INVALID_QUERY", (params, r)


async def test_transform_of_non_image_is_400(booted) -> None:
    async with booted() as (admin, _):
        row = (await upload(admin, b"just text", filename="t.txt")).data
        r = await admin.get(f"/api/assets/{row['id']}", params={"width": "10"})
        assert r.status == 400 and r.code == "INVALID_QUERY"


async def test_presets_and_allowlist_modes(booted) -> None:
    presets = {"thumb": {"width": 40, "height": 40, "fit": "cover", "format": "png"}}
    async with booted(**{"assets.presets": presets, "assets.transforms": "presets"}) as (admin, _):
        row = (await upload(admin, jpeg(200, 100))).data
        url = f"/api/assets/{row['id']}"
        r = await admin.get(url, params={"key": "thumb"})
        image = Image.open(io.BytesIO(r.raw))
        assert (image.format, image.size) == ("PNG", (40, 40))
        assert (await admin.get(url, params={"width": "40"})).code == "INVALID_QUERY"
        assert (await admin.get(url, params={"key": "thumb", "width": "5"})).code == "INVALID_QUERY"
    async with booted(**{"assets.transforms": "none"}) as (admin, _):
        row = (await upload(admin, jpeg(200, 100))).data
        assert (await admin.get(f"/api/assets/{row['id']}", params={"width": "40"})).code == "INVALID_QUERY"
        assert (await admin.get(f"/api/assets/{row['id']}")).status == 200


def _bomb_png(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` pixels, with almost no
    data: decoding it would need width*height bytes at least."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + \
        chunk(b"IEND", b"")


async def test_decompression_bomb_is_refused_unread(booted) -> None:
    async with booted() as (admin, _):
        row = (await upload(admin, _bomb_png(100_000, 100_000), filename="bomb.png")).data
        assert (row["width"], row["height"]) == (100_000, 100_000)  # the header, read without decoding
        r = await admin.get(f"/api/assets/{row['id']}", params={"width": "100"})
        assert r.status in (400, 413, 415) and r.json["errors"], r
        assert (await admin.get(f"/api/assets/{row['id']}")).status == 200  # the original is still served
    async with booted(**{"assets.max_pixels": 10_000}) as (admin, _):
        row = (await upload(admin, png(200, 100))).data
        r = await admin.get(f"/api/assets/{row['id']}", params={"width": "10"})
        assert r.status == 413, r


async def test_folders_and_file_field(booted) -> None:
    async with booted() as (admin, _):
        folder = await admin.post("/api/folders", json={"name": "Covers"})
        assert folder.status == 201, folder
        cover = (await upload(admin, png(), folder=folder.data["id"], title="Cover")).data
        assert cover["folder"] == folder.data["id"]
        r = await admin.post("/api/collections", json={"collection": "books", "fields": [
            {"field": "title", "type": "string"}, {"field": "cover", "type": "file"}]})
        assert r.status in (200, 201), r
        book = await admin.post("/api/items/books", json={"title": "Dune", "cover": cover["id"]})
        assert book.status in (200, 201), book
        got = await admin.get(f"/api/items/books/{book.data['id']}", params={"fields": "title,cover.*"})
        assert got.data["cover"]["title"] == "Cover" and got.data["cover"]["type"] == "image/png"
        found = await admin.get("/api/items/books", params={"filter": '{"cover": {"type": {"_eq": "image/png"}}}'})
        assert [b["title"] for b in found.data] == ["Dune"]
        bad = await admin.post("/api/items/books", json={"title": "X", "cover": "not-a-uuid"})
        assert bad.status == 400
        assert (await admin.delete(f"/api/files/{cover['id']}")).status == 204
        after = await admin.get(f"/api/items/books/{book.data['id']}")
        assert after.data["cover"] is None
        in_folder = await admin.get("/api/files", params={"filter": f'{{"folder": {{"_eq": "{folder.data["id"]}"}}}}'})
        assert in_folder.data == []


async def test_file_changes_are_item_events(booted) -> None:
    import asyncio

    from workeros.api import ITEMS

    async with booted() as (admin, svc):
        seen: list[tuple[str, str]] = []
        unsubscribe = svc.events.subscribe(ITEMS, lambda m: seen.append((m["collection"], m["action"])))
        try:
            row = (await upload(admin, png())).data
            await admin.patch(f"/api/files/{row['id']}", json={"title": "t"})
            await admin.delete(f"/api/files/{row['id']}")
            for _ in range(200):
                if len(seen) >= 3:
                    break
                await asyncio.sleep(0.02)
        finally:
            unsubscribe()
        assert [s for s in seen if s[0] == "wos_files"] == [("wos_files", "create"), ("wos_files", "update"),
                                                            ("wos_files", "delete")]


async def test_create_validation_applies_to_the_measured_file(booted) -> None:
    async with booted() as (admin, svc):
        assert (await admin.post("/api/roles", json={"id": "uploader", "name": "Uploader"})).status == 201
        r = await admin.post("/api/permissions", json={
            "role": "uploader", "collection": "wos_files", "action": "create",
            "validation": {"_and": [{"type": {"_starts_with": "image/"}}, {"filesize": {"_lte": 5000}}]}})
        assert r.status in (200, 201), r
        user = admin.as_role("uploader")
        assert (await upload(user, png(8, 8), filename="ok.png")).status == 201
        refused = await upload(user, b"%PDF-1.4 not an image", filename="doc.png", content_type="image/png")
        assert refused.status == 400 and refused.code == "INVALID_PAYLOAD", refused
        big = await upload(user, png(8, 8) + b"\0" * 6000, filename="big.png")
        assert big.code == "INVALID_PAYLOAD"
        assert len((await admin.get("/api/files")).data) == 1
        _, backend = await svc.get("files").default()
        assert len(await _stored_keys(backend)) == 1
