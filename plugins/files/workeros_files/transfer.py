"""The files plugin's part of a full export (``workeros export --full``): the
rows of ``wos_folders`` and ``wos_files`` and every file's bytes, restored into
whatever storage backend the importing instance uses (``fs`` to ``s3`` and
back). Rendered image variants and unfinished resumable uploads stay behind:
variants are rendered again on demand, uploads are resumed at the source."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from workeros.api import Conflict, InvalidPayload
from workeros.hookspecs.data import ArchiveReader, ArchiveWriter, ExportSection, Undo

from .tables import files, folders


def object_key(file_id: str) -> str:
    return f"files/{file_id}"


async def export_objects(services: Any, conn: AsyncConnection, writer: ArchiveWriter) -> dict[str, Any]:
    """Every file's bytes, one member per file (named by its id), read from
    the storage its row names."""
    service = services.get("files")
    objects = size = 0
    result = await conn.stream(sa.select(files.c.id, files.c.storage).order_by(files.c.id))
    async for row in result:
        storage = await service.storage(row.storage)
        size += await writer.write(str(row.id), storage.get(object_key(row.id)))
        objects += 1
    return {"objects": objects, "bytes": size}


async def restore_objects(services: Any, conn: AsyncConnection, reader: ArchiveReader,
                          summary: dict[str, Any]) -> Undo:
    """Put every file's bytes into this instance's default storage and point
    the (already loaded) rows at it. On failure nothing written stays."""
    service = services.get("files")
    name, storage = await service.default()
    rows = (await conn.execute(sa.select(files.c.id, files.c.filesize, files.c.type))).all()
    members = set(reader.members())
    ids = {str(row.id) for row in rows}
    if members != ids or summary.get("objects", len(ids)) != len(ids):
        raise InvalidPayload(f"the archive's file objects do not match its file rows ({len(ids - members)} "
                             f"missing, {len(members - ids)} without a row)")
    written: list[str] = []

    async def undo() -> None:
        for key in written:
            try:
                await storage.delete(key)
            except Exception:  # noqa: S112 (best effort: the next key may still go)
                continue

    try:
        for row in rows:
            key = object_key(row.id)
            if await storage.exists(key):
                raise Conflict(f"Import needs empty storage: the {name} storage already holds file {row.id}")
            written.append(key)  # before the put: a half-written object goes too
            size = await storage.put(key, reader.read(str(row.id)), content_type=row.type)
            if size != row.filesize:
                raise InvalidPayload(f"the archive is damaged: file {row.id} has {size} bytes, "
                                     f"its row says {row.filesize}")
        await conn.execute(files.update().values(storage=name))
    except BaseException:
        await undo()
        raise
    return undo


SECTION = ExportSection("files", tables=[folders, files], export=export_objects, restore=restore_objects)
