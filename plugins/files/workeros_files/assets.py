"""``GET /api/assets/{id}``: a file's bytes, or a transformed image.

Strong ``ETag`` (from the checksum, or from the variant's cache key) with
``If-None-Match`` → 304; one ``Range`` → 206 (416 outside the file);
``X-Content-Type-Options: nosniff`` always; types that could run as active
content in a browser (HTML, SVG, XML, scripts…) are sent as attachments under a
sandboxing ``Content-Security-Policy``, never inline.
"""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
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
    cache_key,
    negotiate,
    output_format,
    parse_params,
)
from .sniff import INLINE_SAFE

_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


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


async def get_asset(request: web.Request) -> web.StreamResponse:
    svc = services(request)
    files = svc.get("files")
    settings = svc.settings
    acc = accountability(request)
    row = await files.stored_row(acc, request.match_info["id"])
    transform = parse_params(request.query, mode=settings["assets.transforms"],
                             presets=settings["assets.presets"] or {},
                             max_dimension=settings["assets.max_dimension"])
    storage = await files.storage(row["storage"])
    vary = False
    filename = row["filename_download"] or "file"
    if transform is None:
        key, mime, size = f"files/{row['id']}", row["type"] or "application/octet-stream", row["filesize"]
        etag = '"' + (row["checksum"] or row["id"]).removeprefix("sha256:")[:48] + '"'
    else:
        if row["type"] not in SOURCE_TYPES:
            raise InvalidQuery("Transforms apply to images only")
        max_pixels = settings["assets.max_pixels"]
        if row["width"] and row["height"] and row["width"] * row["height"] > max_pixels:
            raise PayloadTooLarge(f"The image has {row['width']}x{row['height']} pixels, over this server's "
                                  f"limit of {max_pixels}")
        transform, vary = negotiate(transform, request.headers.get("Accept", ""), row["type"])
        fmt = output_format(transform, row["type"])
        key = cache_key(row["id"], row["checksum"], transform)
        variant = await files.variant(key)
        if variant is None:
            variant = await files.transformer.run(key, lambda: _render(files, storage, row, transform, fmt, key,
                                                                       max_pixels))
        mime, size = variant["type"], variant["size"]
        etag = '"' + key.rsplit("/", 1)[-1] + '"'
        filename = filename.rsplit(".", 1)[0] + "." + fmt
    headers = {
        "ETag": etag,
        "Cache-Control": f"{'public' if acc.user is None else 'private'}, max-age={settings['assets.cache_max_age']}",
        "X-Content-Type-Options": "nosniff",
        "Accept-Ranges": "bytes",
    }
    if vary:
        headers["Vary"] = "Accept"
    if _etag_matches(request.headers.get("If-None-Match"), etag):
        return web.Response(status=304, headers=headers)
    if mime in INLINE_SAFE and "download" not in request.query:
        headers["Content-Disposition"] = _disposition("inline", filename)
    else:
        headers["Content-Disposition"] = _disposition("attachment", filename)
        if mime not in INLINE_SAFE:
            headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    span = parse_range(request.headers.get("Range"), size)
    response = web.StreamResponse(status=200 if span is None else 206, headers=headers)
    response.content_type = mime
    if span is None:
        response.content_length = size
        start, end = 0, size - 1
    else:
        start, end = span
        response.content_length = end - start + 1
        response.headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    # The first chunk is read before the headers go out: a missing object is
    # still a clean 404 envelope rather than a cut-off response.
    body = storage.get(key, start=start, end=end).__aiter__() if size and request.method != "HEAD" else None
    first = b""
    if body is not None:
        try:
            first = await anext(body, b"")
        except NotFound:
            if transform is None:
                raise
            # A cached variant whose object is gone: forget it and render again.
            await files.forget_variant(key)
            raise ServiceUnavailable("The transformed image is being rebuilt; retry", retry_after=1) from None
    await response.prepare(request)
    if body is not None:
        if first:
            await response.write(first)
        async for chunk in body:
            await response.write(chunk)
    await response.write_eof()
    return response


async def _render(files: Any, storage: Any, row: dict, transform: Any, fmt: str, key: str,
                  max_pixels: int) -> dict:
    original = f"files/{row['id']}"
    if hasattr(storage, "path"):
        source: Any = storage.path(original)
    else:
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
