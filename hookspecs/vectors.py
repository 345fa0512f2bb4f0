"""Vector stores behind ``vector(n)`` fields and similarity search."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from . import hookspec
from ._entries import Backend


class VectorStore(Protocol):
    """An index of the vectors of ``vector`` fields.

    The row's own column holds every vector (so exports, revisions and restores
    carry them); a store keeps an index beside it for nearest-neighbour
    candidates. ``upsert`` and ``delete`` are called inside the write's
    transaction (``connection``), so the index commits or rolls back with the
    rows. ``nearest`` answers candidates over *all* rows of the field — the
    search service checks the caller's permissions and filter on them and asks
    again for more when too few pass. A store without an index (the exact
    scan) answers ``indexed() == False`` and is never asked for ``nearest``.
    ``collection`` and ``field`` are :class:`workeros.schema.model.Collection`
    and :class:`workeros.schema.model.Field` objects.
    """

    name: str

    def indexed(self, collection: Any, field: Any) -> bool: ...

    async def upsert(self, connection: Any, collection: Any, field: Any,
                     items: Sequence[tuple[Any, Sequence[float]]]) -> None: ...

    async def delete(self, connection: Any, collection: Any, field: Any, keys: Sequence[Any]) -> None: ...

    async def nearest(self, collection: Any, field: Any, vector: Sequence[float], *, limit: int
                      ) -> list[tuple[Any, float]]:
        """Keys and distances of the ``limit`` closest vectors of the field,
        nearest first (fewer only when the field has fewer vectors)."""


@dataclass(frozen=True)
class VectorBackend(Backend):
    """A vector store. ``factory(settings, database) -> VectorStore`` (may be
    awaitable). ``dialects``: the database dialects it serves (empty: any)."""

    dialects: Sequence[str] = ()


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
            return [VectorBackend(name="sqlite-vec", factory=SqliteVec, dialects=("sqlite",),
                                  check=_extension_missing)]
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
