"""The ``fs`` storage backend: objects as files under ``<data_dir>/files``.

Keys are made by the files service (``files/<uuid>``, ``cache/<hex>``) and are
checked against a strict pattern before any path is built, so nothing a client
sends ever becomes part of a path. Writes go to a temporary file beside the
target and are renamed into place when complete: a reader never sees half an
object, and a failed upload leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from workeros.api import NotFound, Settings

KEY = re.compile(r"[a-z]+(/[A-Za-z0-9._-]{1,128}){1,3}")
#: Bytes gathered before one write in the thread pool (fewer thread hops).
WRITE_BUFFER = 1 << 20
READ_CHUNK = 256 * 1024
#: Spans read in one piece (one thread hop) rather than streamed in chunks.
SMALL = 4 * 1024 * 1024


def check_key(key: str) -> str:
    if not KEY.fullmatch(key) or ".." in key:
        raise ValueError(f"bad storage key {key[:80]!r}")
    return key


class FsStorage:
    """Objects as files under one root folder."""

    name = "fs"

    def __init__(self, root: Path) -> None:
        self.root = root
        #: Paths of keys asked for recently (an asset is answered from its path
        #: on every request; a key's path never changes).
        self._paths: dict[str, Path] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> FsStorage:
        root = settings["storage.fs.root"] or str(Path(settings["data_dir"]) / "files")
        return cls(Path(root).resolve())

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

    def local_path(self, key: str) -> Path:
        """Every object is a file on this machine: assets are sent from it with
        ``sendfile`` and transforms decode it in place."""
        found = self._paths.get(key)
        if found is None:
            found = self.path(key)
            if len(self._paths) >= 4096:
                self._paths.clear()
            self._paths[key] = found
        return found

    async def put(self, key: str, chunks: AsyncIterator[bytes], *, content_type: str | None = None) -> int:
        target = self.path(key)
        await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
        temp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
        handle = await asyncio.to_thread(open, temp, "wb")
        size = 0
        try:
            buffer = bytearray()
            async for chunk in chunks:
                buffer += chunk
                size += len(chunk)
                if len(buffer) >= WRITE_BUFFER:
                    await asyncio.to_thread(handle.write, bytes(buffer))
                    buffer.clear()
            if buffer:
                await asyncio.to_thread(handle.write, bytes(buffer))
            await asyncio.to_thread(_close_and_replace, handle, temp, target)
        except BaseException:
            await asyncio.to_thread(_discard, handle, temp)
            raise
        return size

    async def get(self, key: str, *, start: int | None = None, end: int | None = None) -> AsyncIterator[bytes]:
        """``end`` is inclusive, as in an HTTP range."""
        path = self.path(key)
        if end is not None and end - (start or 0) < SMALL:
            # One trip to a thread for the whole span: most assets are small.
            try:
                yield await asyncio.to_thread(_read_span, path, start or 0, end - (start or 0) + 1)
            except FileNotFoundError:
                raise NotFound("The file's bytes are missing from storage") from None
            return
        try:
            handle = await asyncio.to_thread(open, path, "rb")
        except FileNotFoundError:
            raise NotFound("The file's bytes are missing from storage") from None
        try:
            if start:
                await asyncio.to_thread(handle.seek, start)
            remaining = None if end is None else end - (start or 0) + 1
            while remaining is None or remaining > 0:
                size = READ_CHUNK if remaining is None else min(READ_CHUNK, remaining)
                data = await asyncio.to_thread(handle.read, size)
                if not data:
                    break
                if remaining is not None:
                    remaining -= len(data)
                yield data
        finally:
            await asyncio.to_thread(handle.close)

    async def read(self, key: str) -> bytes:
        try:
            return await asyncio.to_thread(self.path(key).read_bytes)
        except FileNotFoundError:
            raise NotFound("The file's bytes are missing from storage") from None

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.path(key).unlink, missing_ok=True)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self.path(key).is_file)

    async def size(self, key: str) -> int | None:
        try:
            return (await asyncio.to_thread(os.stat, self.path(key))).st_size
        except FileNotFoundError:
            return None


def _read_span(path: Path, start: int, length: int) -> bytes:
    with open(path, "rb") as handle:
        if start:
            handle.seek(start)
        return handle.read(length)


def _close_and_replace(handle: Any, temp: Path, target: Path) -> None:
    handle.flush()
    os.fsync(handle.fileno())
    handle.close()
    os.replace(temp, target)


def _discard(handle: Any, temp: Path) -> None:
    handle.close()
    temp.unlink(missing_ok=True)
