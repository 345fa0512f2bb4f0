"""File storage backends (local disk, S3 and S3-compatible services)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from . import hookspec
from ._entries import Backend


class Storage(Protocol):
    """What a storage backend's factory returns. Keys are ``/``-separated paths."""

    async def put(self, key: str, chunks: AsyncIterator[bytes], *, content_type: str | None = None) -> int:
        """Store the stream under ``key``; return its size in bytes."""

    def get(self, key: str, *, start: int | None = None, end: int | None = None) -> AsyncIterator[bytes]:
        """Stream the object (optionally a byte range); raise NotFound if absent."""

    async def delete(self, key: str) -> None:
        """Remove the object; absent keys are not an error."""

    async def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""

    # Optional: ``def local_path(self, key: str) -> os.PathLike | None`` — a
    # backend whose objects are regular files on this machine returns the
    # object's path (whether or not it exists yet), so readers can use it in
    # place (``sendfile``, decoding an image) instead of streaming it.


@dataclass(frozen=True)
class StorageBackend(Backend):
    """A storage backend. ``factory(settings) -> Storage`` (may be awaitable)."""


@hookspec
def workeros_register_storage_backends() -> Sequence[StorageBackend]:
    """Register file storage backends.

    Called once per boot. The backend named by ``storage.backend`` is used; without
    that setting the available backend with the highest priority is chosen (local
    disk has priority 0).

    :return: storage backend entries. Not firstresult.

    .. versionadded:: 0.1

    Example::

        @hookimpl
        def workeros_register_storage_backends():
            return [StorageBackend(name="s3", factory=S3Storage.from_settings, check=_boto_missing)]
    """
