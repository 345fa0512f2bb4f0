"""``GET /api/assets/{id}``: a file's bytes, or a transformed image.

Strong ``ETag`` (from the checksum, or from the variant's cache key) with
``If-None-Match`` → 304; one ``Range`` → 206 (416 outside the file);
``X-Content-Type-Options: nosniff`` always; types that could run as active
content in a browser (HTML, SVG, XML, scripts…) are sent as attachments under a
sandboxing ``Content-Security-Policy``, never inline.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
from collections.abc import AsyncIterator
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from aiohttp import web

from workeros.api import (
    InvalidQuery,
    NotFound,
    PayloadTooLarge,
    RangeNotSatisfiable,
    ServiceUnavailable,
    accountability,
    services,
)

from .images import (
    MIME,
    SOURCE_TYPES,
    Transform,
    cache_key,
    negotiate,
    output_format,
    parse_params,
)
from .sniff import INLINE_SAFE

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")
SANDBOX = "default-src 'none'; sandbox"
#: Piece size when the bytes go through the response writer instead of sendfile.
READ_CHUNK = 256 * 1024
_UNPARSED = object()
#: ``os.sendfile`` where the platform has it (not on Windows).
_SENDFILE = getattr(os, "sendfile", None)


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end inclusive) of a single satisfiable range; None to send the
    whole file (no header, or one this server ignores such as several ranges);
    416 when it lies outside the file."""
    if not header:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        length = int(last)
        if length == 0 or size == 0:
            raise RangeNotSatisfiable(f"The range is outside the file ({size} bytes)")
        return max(0, size - length), size - 1
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable(f"The range is outside the file ({size} bytes)")
    return start, min(int(last) if last else size - 1, size - 1)


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    return any(part.strip().removeprefix("W/") == etag for part in header.split(","))


def _disposition(kind: str, filename: str) -> str:
    ascii_name = filename.encode("ascii", "ignore").decode().replace('"', "") or "file"
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


@lru_cache(maxsize=4096)
def _disposition_of(mime: str, filename: str, download: bool) -> tuple[str, str | None]:
    """``Content-Disposition`` and, for types that could run as active content,
    the sandboxing ``Content-Security-Policy``."""
    if mime in INLINE_SAFE and not download:
        return _disposition("inline", filename), None
    return _disposition("attachment", filename), None if mime in INLINE_SAFE else SANDBOX


def _transform_of(files: Any, request: web.Request) -> Transform | None:
    """The transform the query string asks for, parsed once per distinct query
    string (the ``assets.*`` settings are per process); a bad one is 400 every
    time and is not remembered."""
    raw = request.query_string
    if not raw:
        return None
    parsed = files.parsed_transforms
    found = parsed.get(raw, _UNPARSED)
    if found is _UNPARSED:
        config = files.assets
        found = parse_params(request.query, mode=config.transforms, presets=config.presets,
                             max_dimension=config.max_dimension)
        if len(parsed) >= 1024:
            parsed.clear()
        parsed[raw] = found
    return found


async def get_asset(request: web.Request) -> web.StreamResponse:
    files = services(request).get("files")
    config = files.assets
    acc = accountability(request)
    row = await files.stored_row(acc, request.match_info["id"])
    transform = _transform_of(files, request)
    storage = await files.storage(row["storage"])
    vary = False
    filename = row["filename_download"] or "file"
    render = None
    if transform is None:
        key, mime = f"files/{row['id']}", row["type"] or "application/octet-stream"
        etag = '"' + (row["checksum"] or row["id"]).removeprefix("sha256:")[:48] + '"'
    else:
        if row["type"] not in SOURCE_TYPES:
            raise InvalidQuery("Transforms apply to images only")
        max_pixels = config.max_pixels
        if row["width"] and row["height"] and row["width"] * row["height"] > max_pixels:
            raise PayloadTooLarge(f"The image has {row['width']}x{row['height']} pixels, over this server's "
                                  f"limit of {max_pixels}")
        transform, vary = negotiate(transform, request.headers.get("Accept", ""), row["type"])
        fmt = output_format(transform, row["type"])
        key = cache_key(row["id"], row["checksum"], transform)
        mime = MIME[fmt]
        etag = '"' + key.rsplit("/", 1)[-1] + '"'
        filename = filename.rsplit(".", 1)[0] + "." + fmt

        def render() -> Any:
            """Render the variant once however many requests ask for it."""
            return files.transformer.run(key, lambda: _render(files, storage, row, transform, fmt, key,
                                                              max_pixels))
    headers = {
        "ETag": etag,
        "Cache-Control": config.cache_control_public if acc.user is None else config.cache_control_private,
        "X-Content-Type-Options": "nosniff",
        "Accept-Ranges": "bytes",
    }
    if vary:
        headers["Vary"] = "Accept"
    # The ETag is known without the bytes (the checksum, or the variant's key):
    # a revalidation never touches storage.
    if _etag_matches(request.headers.get("If-None-Match"), etag):
        return web.Response(status=304, headers=headers)
    download = bool(request.query_string) and "download" in request.query
    headers["Content-Disposition"], policy = _disposition_of(mime, filename, download)
    if policy is not None:
        headers["Content-Security-Policy"] = policy

    local = files.local_path(storage, key)
    if local is not None:
        return await _send_local(request, local, render, headers, mime)
    if render is None:
        size = row["filesize"]
    else:
        variant = await files.variant(key)
        if variant is None:
            variant = await render()
        size = variant["size"]
    return await _send_stream(request, files, storage, key, render is not None, headers, mime, size)


def _response(request: web.Request, headers: dict[str, str], mime: str,
              size: int) -> tuple[web.StreamResponse, int, int]:
    """The response (200, or 206 for one satisfiable ``Range``; 416 outside
    the file) and the span of bytes it sends: (response, start, count)."""
    span = parse_range(request.headers.get("Range"), size)
    response = web.StreamResponse(status=200 if span is None else 206, headers=headers)
    response.content_type = mime
    if span is None:
        start, count = 0, size
    else:
        start, end = span
        count = end - start + 1
        response.headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    response.content_length = count
    return response, start, count


def _open(path: Any) -> tuple[Any, int] | None:
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        return None
    try:
        return handle, os.fstat(handle.fileno()).st_size
    except BaseException:
        handle.close()
        raise


async def _send_local(request: web.Request, path: Any, render: Any, headers: dict[str, str],
                      mime: str) -> web.StreamResponse:
    """A file on this machine: opened on the event loop's thread (opening a
    local file and reading its size are two system calls that do not wait on
    the disk's data, cheaper than a trip to a thread; a variant not rendered
    yet is rendered first, its file is the cache), then ``sendfile`` from the
    page cache straight to the socket."""
    opened = _open(path)
    if opened is None:
        if render is None:
            raise NotFound("The file's bytes are missing from storage")
        await render()
        opened = _open(path)
        if opened is None:
            raise ServiceUnavailable("The transformed image is being rebuilt; retry", retry_after=1)
    handle, size = opened
    try:
        response, start, count = _response(request, headers, mime, size)
        await response.prepare(request)
        if count and request.method != "HEAD":
            try:
                await _sendfile(request, response, handle, start, count)
            except ConnectionError:
                return _gone(response)
        await response.write_eof()
        return response
    finally:
        # Closing a file opened for reading does not wait on the disk.
        handle.close()


async def _sendfile(request: web.Request, response: web.StreamResponse, handle: Any, start: int,
                    count: int) -> None:
    transport = request.transport
    if transport is None or transport.is_closing():
        raise ConnectionResetError("Connection lost")
    sock = transport.get_extra_info("socket")
    if sock is not None and transport.get_extra_info("sslcontext") is None:
        if _SENDFILE is not None and transport.get_write_buffer_size() == 0:
            # Nothing of this response waits in the transport (the headers went
            # out whole): as much as the socket takes now goes straight from
            # the page cache, without the rounds of asyncio's sendfile (pausing
            # reads, waiting for the buffer, watching the socket for writes).
            try:
                sent = _SENDFILE(sock.fileno(), handle.fileno(), start, count)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError as exc:
                raise ConnectionResetError("The client went away") from exc
            start += sent
            count -= sent
            if count == 0:
                return
        # The rest: asyncio waits for the transport's buffer to empty before
        # handing the socket to os.sendfile, and for the socket to take more.
        try:
            await asyncio.get_running_loop().sendfile(transport, handle, start, count)
        except (ConnectionError, RuntimeError) as exc:  # RuntimeError: the transport closed meanwhile
            # The client went away mid-transfer: as a write through aiohttp would say it.
            raise ConnectionResetError("The client went away") from exc
        return
    # TLS, or a runtime without a socket (ASGI, Lambda): through the writer.
    while count > 0:
        chunk = await asyncio.to_thread(_read_at, handle, start, min(count, READ_CHUNK))
        if not chunk:
            break
        await response.write(chunk)
        start += len(chunk)
        count -= len(chunk)


def _read_at(handle: Any, start: int, size: int) -> bytes:
    handle.seek(start)
    return handle.read(size)


async def _send_stream(request: web.Request, files: Any, storage: Any, key: str, variant: bool,
                       headers: dict[str, str], mime: str, size: int) -> web.StreamResponse:
    """An object streamed from a remote store (S3)."""
    response, start, count = _response(request, headers, mime, size)
    end = start + count - 1
    # The first chunk is read before the headers go out: a missing object is
    # still a clean 404 envelope rather than a cut-off response.
    body = storage.get(key, start=start, end=end).__aiter__() if count and request.method != "HEAD" else None
    first = b""
    if body is not None:
        try:
            first = await anext(body, b"")
        except NotFound:
            if not variant:
                raise
            # A cached variant whose object is gone: forget it and render again.
            await files.forget_variant(key)
            raise ServiceUnavailable("The transformed image is being rebuilt; retry", retry_after=1) from None
    await response.prepare(request)
    if body is not None:
        try:
            if first:
                await response.write(first)
            async for chunk in body:
                await response.write(chunk)
        except ConnectionError:
            await body.aclose()  # lets go of the store's connection
            return _gone(response)
    await response.write_eof()
    return response


def _gone(response: web.StreamResponse) -> web.StreamResponse:
    """The client went away mid-body: nothing is wrong on this side (no error
    logged), and the connection is not used again."""
    response.force_close()
    return response


async def _render(files: Any, storage: Any, row: dict, transform: Any, fmt: str, key: str,
                  max_pixels: int) -> dict:
    original = f"files/{row['id']}"
    source: Any = files.local_path(storage, original)
    if source is None:
        source = io.BytesIO(b"".join([chunk async for chunk in storage.get(original)]))
    data = await files.transformer.render(source, transform, fmt, max_pixels=max_pixels)
    mime = MIME[fmt]
    await storage.put(key, _one(data), content_type=mime)
    await files.remember_variant(key, row["id"], mime, len(data))
    return {"type": mime, "size": len(data)}


def build(root: web.Application) -> web.Application:
    app = web.Application()
    app.router.add_get("/{id}", get_asset)
    return app
