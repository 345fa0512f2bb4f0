"""``/api/files`` and ``/api/folders`` (DESIGN §6 "Files")."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from aiohttp import BodyPartReader, web

from workeros.api import (
    Accountability,
    InvalidPayload,
    PayloadTooLarge,
    UnsupportedMediaType,
    accountability,
    no_content,
    ok,
    parse_query,
    read_json,
    read_object,
    services,
    streams_body,
)

from .service import COLLECTION, FilesService

FOLDERS = "wos_folders"
CHUNK = 256 * 1024
#: Text fields of a multipart upload (before the file part), in bytes.
MAX_FIELD = 64 * 1024


def _files(request: web.Request) -> FilesService:
    return services(request).get("files")


async def _part_chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while True:
        chunk = await part.read_chunk(CHUNK)
        if not chunk:
            return
        yield chunk


@streams_body
async def upload(request: web.Request) -> web.Response:
    """Multipart: text parts (``title``, ``folder``, ``filename_download``)
    first, then one or more ``file`` parts; each file streams to storage as it
    arrives. Several files answer a list; if one fails, none is kept."""
    if not request.content_type.startswith("multipart/"):
        raise UnsupportedMediaType("Upload files as multipart/form-data (a 'file' part)")
    files = _files(request)
    acc = accountability(request)
    length = request.content_length
    if length is not None and length > files.max_size + 64 * 1024:
        raise PayloadTooLarge(f"The file is larger than this server's limit of {files.max_size} bytes")
    await files.check_create(acc, {})
    try:
        reader = await request.multipart()
    except (ValueError, AssertionError):
        raise InvalidPayload("The multipart body could not be read") from None
    fields: dict[str, Any] = {}
    created: list[dict] = []
    try:
        while True:
            try:
                part = await reader.next()
            except (ValueError, AssertionError):
                raise InvalidPayload("The multipart body could not be read") from None
            if part is None:
                break
            if not isinstance(part, BodyPartReader):
                raise InvalidPayload("Nested multipart bodies are not accepted")
            if part.name == "file":
                created.append(await files.store(acc, _part_chunks(part), filename=part.filename, data=fields))
            elif part.name:
                raw = await part.read(decode=True)
                if len(raw) > MAX_FIELD:
                    raise InvalidPayload(f"Field {part.name[:80]!r} is too long")
                fields[part.name] = raw.decode("utf-8", "replace")
            else:
                await part.release()
    except BaseException:
        if created:
            await files.delete(Accountability.system(), [c["id"] for c in created])
        raise
    if not created:
        raise InvalidPayload("No 'file' part in the upload", field="file")
    return ok(created[0] if len(created) == 1 else created, status=201)


async def import_file(request: web.Request) -> web.Response:
    body = await read_object(request)
    url = body.pop("url", None)
    row = await _files(request).import_url(accountability(request), url, body)
    return ok(row, status=201)


async def list_files(request: web.Request) -> web.Response:
    rows, meta = await services(request).items.query(accountability(request), COLLECTION,
                                                     parse_query(request.query))
    return ok(rows, meta=meta or None)


async def get_file(request: web.Request) -> web.Response:
    row = await services(request).items.get(accountability(request), COLLECTION, request.match_info["id"],
                                            parse_query(request.query))
    return ok(row)


async def update_file(request: web.Request) -> web.Response:
    data = await read_json(request)
    row = await _files(request).update(accountability(request), request.match_info["id"], data,
                                       parse_query(request.query))
    return ok(row)


async def delete_file(request: web.Request) -> web.Response:
    await _files(request).delete(accountability(request), [request.match_info["id"]])
    return no_content()


async def delete_files(request: web.Request) -> web.Response:
    keys = await read_json(request)
    if not isinstance(keys, list):
        raise InvalidPayload("Expected a list of file ids")
    await _files(request).delete(accountability(request), keys)
    return no_content()


def build(root: web.Application) -> web.Application:
    from .tus import add_routes

    app = web.Application()
    app.router.add_get("", list_files)
    app.router.add_post("", upload)
    app.router.add_delete("", delete_files)
    app.router.add_post("/import", import_file)
    add_routes(app)
    app.router.add_get("/{id}", get_file)
    app.router.add_patch("/{id}", update_file)
    app.router.add_delete("/{id}", delete_file)
    return app


# -- folders ------------------------------------------------------------------------------

async def list_folders(request: web.Request) -> web.Response:
    rows, meta = await services(request).items.query(accountability(request), FOLDERS, parse_query(request.query))
    return ok(rows, meta=meta or None)


async def get_folder(request: web.Request) -> web.Response:
    return ok(await services(request).items.get(accountability(request), FOLDERS, request.match_info["id"],
                                                parse_query(request.query)))


async def create_folder(request: web.Request) -> web.Response:
    data = await read_json(request)
    return ok(await services(request).items.create(accountability(request), FOLDERS, data,
                                                   parse_query(request.query)), status=201)


async def update_folder(request: web.Request) -> web.Response:
    data = await read_object(request)
    return ok(await services(request).items.update(accountability(request), FOLDERS, request.match_info["id"],
                                                   data, parse_query(request.query)))


async def delete_folder(request: web.Request) -> web.Response:
    await services(request).items.delete(accountability(request), FOLDERS, request.match_info["id"])
    return no_content()


def build_folders(root: web.Application) -> web.Application:
    app = web.Application()
    app.router.add_get("", list_folders)
    app.router.add_post("", create_folder)
    app.router.add_get("/{id}", get_folder)
    app.router.add_patch("/{id}", update_folder)
    app.router.add_delete("/{id}", delete_folder)
    return app
