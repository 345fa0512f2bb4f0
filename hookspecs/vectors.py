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


class Embedder(Protocol):
    """Turns text into vectors. ``dimensions`` is the length of every vector it
    returns (``None`` when only known after the first call)."""

    dimensions: int | None

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text, in order; raise ``ServiceUnavailable`` when the
        model or the remote service cannot answer."""


@dataclass(frozen=True)
class EmbedderBackend(Backend):
    """An embedder. ``factory(settings) -> Embedder`` (may be awaitable)."""


@hookspec
def workeros_register_embedders() -> Sequence[EmbedderBackend]:
    """Register text embedders (a local model, an OpenAI-compatible endpoint…).

    Called once per boot. The embedder named by ``vectors.embedder`` is used;
    without it the available embedder with the highest priority. Fields with a
    ``source`` and searches by ``text`` need one; without one they answer 503.

    :return: embedder entries. Not firstresult.

    .. versionadded:: 0.2

    Example::

        @hookimpl
        def workeros_register_embedders():
            return [EmbedderBackend(name="openai", factory=OpenAIEmbedder.from_settings)]
    """
