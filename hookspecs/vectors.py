"""Vector stores behind ``vector(n)`` fields and similarity search."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from . import hookspec
from ._entries import Backend


class VectorStore(Protocol):
    async def upsert(self, collection: str, key: Any, vector: Sequence[float]) -> None: ...

    async def delete(self, collection: str, key: Any) -> None: ...

    async def nearest(
        self, collection: str, vector: Sequence[float], *, limit: int, keys: Sequence[Any] | None = None
    ) -> list[tuple[Any, float]]:
        """Keys and distances of the closest vectors, optionally among ``keys`` only
        (the rows the caller may read)."""


@dataclass(frozen=True)
class VectorBackend(Backend):
    """A vector store. ``factory(settings, database) -> VectorStore`` (may be awaitable)."""


@hookspec
def workeros_register_vector_stores() -> Sequence[VectorBackend]:
    """Register vector stores.

    Called once per boot. The store named by ``vectors.backend`` is used; without it
    the available store with the highest priority (pgvector only answers available
    on PostgreSQL with the extension installed).

    :return: vector store entries. Not firstresult.

    .. versionadded:: 0.1

    Example::

        @hookimpl
        def workeros_register_vector_stores():
            return [VectorBackend(name="sqlite-vec", factory=SqliteVec, check=_extension_missing)]
    """
