"""Resumable uploads, TUS 1.0.0 (core, creation, termination, expiration) at
``/api/files/tus``.

The upload's offset lives in ``wos_file_uploads`` and its bytes in a part file
under ``<data_dir>/uploads`` (named by the server's own random id), so an
upload resumes across a server restart. Creation is checked like a multipart
upload (the caller must be allowed to create files, and ``files.max_size``
applies to ``Upload-Length``); only the caller that created an upload may
continue, inspect or end it. When the last byte arrives the upload becomes an
ordinary file row (bytes streamed to the default storage, sniffed, hashed);
unfinished uploads never appear in ``/api/files``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import os
import re
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from aiohttp import web

from workeros.api import (
    Accountability,
    Conflict,
    Forbidden,
    InvalidPayload,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
    WorkerosError,
    accountability,
    error_response,
    now,
    services,
    streams_body,
)

from .tables import uploads

VERSION = "1.0.0"
EXTENSIONS = "creation,termination,expiration"
_ID = re.compile(r"[0-9a-f]{32}")
CHUNK = 256 * 1024


class PreconditionFailed(WorkerosError):
    status = 412
    code = "INVALID_PAYLOAD"


class Gone(WorkerosError):
    status = 410
    code = "NOT_FOUND"


def _headers(**extra: str) -> dict[str, str]:
    return {"Tus-Resumable": VERSION, "Cache-Control": "no-store", **extra}


def _http_date(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")


def parse_metadata(header: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    if not header:
        return out
    for pair in header.split(","):
        pair = pair.strip()
        if not pair:
            continue
        key, _, value = pair.partition(" ")
        if not key or key in out:
            raise InvalidPayload("Upload-Metadata is malformed")
        try:
            out[key] = base64.b64decode(value.strip(), validate=True).decode("utf-8") if value.strip() else ""
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidPayload(f"Upload-Metadata value of {key[:40]!r} is not base64 UTF-8") from None
    return out


class Tus:
    def __init__(self, request: web.Request) -> None:
        self.svc = services(request)
        self.files = self.svc.get("files")
        self.settings = self.svc.settings
        self.root = Path(self.settings["data_dir"]).resolve() / "uploads"

    def part(self, upload_id: str) -> Path:
        if not _ID.fullmatch(upload_id):
            raise NotFound("Upload not found")
        return self.root / f"{upload_id}.part"

    async def row(self, upload_id: str, acc: Accountability) -> dict:
        self.part(upload_id)
        async with self.svc.db.read() as conn:
            row = (await conn.execute(sa.select(uploads).where(uploads.c.id == upload_id))).mappings().first()
        if row is None:
            raise NotFound("Upload not found")
        if not acc.admin and row["user"] != acc.user:
            raise NotFound("Upload not found")
        if row["expires_at"] <= now():
            await self.drop(upload_id)
            raise Gone("The upload has expired")
        return dict(row)

    async def drop(self, upload_id: str) -> None:
        async with self.svc.db.transaction() as conn:
            await conn.execute(uploads.delete().where(uploads.c.id == upload_id))
        await asyncio.to_thread(self.part(upload_id).unlink, missing_ok=True)

    async def purge_expired(self) -> None:
        async with self.svc.db.read() as conn:
            ids = (await conn.execute(sa.select(uploads.c.id).where(uploads.c.expires_at <= now()))).scalars().all()
        for upload_id in ids:
            await self.drop(upload_id)


def _check_version(request: web.Request) -> None:
    if request.headers.get("Tus-Resumable") != VERSION:
        raise PreconditionFailed(f"Tus-Resumable: {VERSION} is required")


def _int_header(request: web.Request, name: str) -> int:
    raw = request.headers.get(name)
    if raw is None or not raw.strip().isdigit():
        raise InvalidPayload(f"{name} must be a non-negative integer")
    return int(raw)


def tus_errors(handler: Any) -> Any:
    """TUS clients read ``Tus-Resumable`` on every answer, errors included."""
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except WorkerosError as exc:
            response = error_response(exc)
            response.headers.update(_headers())
            return response
    return wrapped


@tus_errors
async def options(request: web.Request) -> web.Response:
    files = services(request).get("files")
    return web.Response(status=204, headers={"Tus-Resumable": VERSION, "Tus-Version": VERSION,
                                             "Tus-Extension": EXTENSIONS, "Tus-Max-Size": str(files.max_size)})


@tus_errors
async def create(request: web.Request) -> web.Response:
    _check_version(request)
    tus = Tus(request)
    acc = accountability(request)
    if "Upload-Defer-Length" in request.headers:
        raise InvalidPayload("Upload-Defer-Length is not supported: send Upload-Length")
    length = _int_header(request, "Upload-Length")
    if length > tus.files.max_size:
        raise PayloadTooLarge(f"The file is larger than this server's limit of {tus.files.max_size} bytes")
    meta = parse_metadata(request.headers.get("Upload-Metadata"))
    data = {k: meta[k] for k in ("title", "folder") if meta.get(k)}
    filename = meta.get("filename") or meta.get("name")
    tus.files.client_values(data)
    await tus.files.check_create(acc, data)
    await tus.purge_expired()
    upload_id = secrets.token_hex(16)
    created = now()
    expires = created + dt.timedelta(hours=tus.settings["files.tus_expire_hours"])
    await asyncio.to_thread(tus.root.mkdir, parents=True, exist_ok=True)
    await asyncio.to_thread(tus.part(upload_id).touch)
    async with tus.svc.db.transaction() as conn:
        await conn.execute(uploads.insert().values(
            id=upload_id, length=length, offset=0, user=acc.user, role=acc.role, created_at=created,
            expires_at=expires, metadata={"filename": filename, **data}))
    location = f"{request.path.rstrip('/')}/{upload_id}"
    return web.Response(status=201, headers=_headers(Location=location, **{"Upload-Expires": _http_date(expires)}))


@tus_errors
async def head(request: web.Request) -> web.Response:
    _check_version(request)
    tus = Tus(request)
    row = await tus.row(request.match_info["upload"], accountability(request))
    return web.Response(status=200, headers=_headers(**{
        "Upload-Offset": str(row["offset"]), "Upload-Length": str(row["length"]),
        "Upload-Expires": _http_date(row["expires_at"])}))


_locks: dict[str, asyncio.Lock] = {}


@streams_body
@tus_errors
async def patch(request: web.Request) -> web.Response:
    _check_version(request)
    if request.content_type != "application/offset+octet-stream":
        raise UnsupportedMediaType("PATCH bodies are application/offset+octet-stream")
    tus = Tus(request)
    acc = accountability(request)
    upload_id = request.match_info["upload"]
    offset = _int_header(request, "Upload-Offset")
    lock = _locks.setdefault(upload_id, asyncio.Lock())
    if lock.locked():
        raise Conflict("Another request is writing this upload")
    async with lock:
        try:
            row = await tus.row(upload_id, acc)
            if offset != row["offset"]:
                raise Conflict(f"Upload-Offset {offset} does not match the upload's offset {row['offset']}")
            written = await _append(tus, request, upload_id, row)
            headers = {"Upload-Offset": str(written), "Upload-Expires": _http_date(row["expires_at"])}
            if written == row["length"]:
                file_row = await _finish(tus, acc, upload_id, row)
                headers["Workeros-File-Id"] = str(file_row["id"])
            return web.Response(status=204, headers=_headers(**headers))
        finally:
            _locks.pop(upload_id, None)


async def _append(tus: Tus, request: web.Request, upload_id: str, row: dict) -> int:
    """Append the body at the recorded offset; the offset written to the
    table afterwards is what safely reached the disk, even when the client
    went away mid-request."""
    path = tus.part(upload_id)
    start = row["offset"]
    handle = await asyncio.to_thread(_open_at, path, start)
    written = start
    try:
        async for chunk in request.content.iter_chunked(CHUNK):
            if written + len(chunk) > row["length"]:
                raise InvalidPayload("The body goes past Upload-Length")
            await asyncio.to_thread(handle.write, chunk)
            written += len(chunk)
    except (ConnectionError, asyncio.CancelledError):
        pass  # keep what arrived; the client resumes from the recorded offset
    finally:
        await asyncio.to_thread(_sync_close, handle)
        if written != start:
            await asyncio.shield(_record(tus, upload_id, start, written))
    return written


async def _record(tus: Tus, upload_id: str, start: int, written: int) -> None:
    async with tus.svc.db.transaction() as conn:
        result = await conn.execute(uploads.update().where(uploads.c.id == upload_id, uploads.c.offset == start)
                                    .values(offset=written))
    if result.rowcount != 1:
        raise Conflict("The upload changed while this request was writing it")


def _open_at(path: Path, offset: int) -> Any:
    handle = open(path, "r+b")
    handle.truncate(offset)  # bytes past the recorded offset were never acknowledged
    handle.seek(offset)
    return handle


def _sync_close(handle: Any) -> None:
    handle.flush()
    os.fsync(handle.fileno())
    handle.close()


async def _finish(tus: Tus, acc: Accountability, upload_id: str, row: dict) -> dict:
    path = tus.part(upload_id)
    meta = dict(row["metadata"] or {})
    filename = meta.pop("filename", None)

    async def chunks() -> AsyncIterator[bytes]:
        handle = await asyncio.to_thread(open, path, "rb")
        try:
            while data := await asyncio.to_thread(handle.read, CHUNK):
                yield data
        finally:
            await asyncio.to_thread(handle.close)

    file_row = await tus.files.store(acc, chunks(), filename=filename, data=meta)
    await tus.drop(upload_id)
    return file_row


@tus_errors
async def terminate(request: web.Request) -> web.Response:
    _check_version(request)
    tus = Tus(request)
    upload_id = request.match_info["upload"]
    await tus.row(upload_id, accountability(request))
    if upload_id in _locks:
        raise Conflict("The upload is being written")
    await tus.drop(upload_id)
    return web.Response(status=204, headers=_headers())


def add_routes(app: web.Application) -> None:
    app.router.add_route("OPTIONS", "/tus", options)
    app.router.add_post("/tus", create)
    app.router.add_route("HEAD", "/tus/{upload}", head)
    app.router.add_patch("/tus/{upload}", patch)
    app.router.add_delete("/tus/{upload}", terminate)


__all__ = ["Forbidden", "add_routes", "parse_metadata"]
