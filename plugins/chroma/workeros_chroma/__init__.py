"""The ``chroma`` vector store (DESIGN §6 "Vectors"): a Chroma collection per
vector field, embedded (``chromadb.PersistentClient`` under the data folder) or
on a Chroma server (``chroma.url``, ``chromadb.HttpClient``).

Select it with ``vectors.backend = "chroma"``; the ``vectors`` plugin provides
the field type and the search, this plugin only the index.
"""

from __future__ import annotations

from typing import Any

from workeros.hookspecs import hookimpl
from workeros.hookspecs.lifecycle import ConfigKey, ServiceEntry
from workeros.hookspecs.vectors import VectorBackend

from .store import ChromaStore, chromadb_missing, open_chroma


@hookimpl
def workeros_register_config_keys() -> list[ConfigKey]:
    return [
        ConfigKey("chroma.url", "str", None,
                  "Chroma server to keep the vector indexes on (http://host:port); unset: an embedded Chroma "
                  "in chroma.path"),
        ConfigKey("chroma.path", "str", None,
                  "Folder of the embedded Chroma (without chroma.url); default: <data_dir>/chroma"),
        ConfigKey("chroma.token", "str", None, "Bearer token sent to the Chroma server", secret=True),
        ConfigKey("chroma.prefix", "str", "wos",
                  "Start of the names of this instance's Chroma collections (instances sharing one Chroma "
                  "server need different prefixes)"),
        ConfigKey("chroma.ef_search", "int", 256,
                  "Candidates Chroma's HNSW graph considers per query (hnsw:search_ef of collections built "
                  "from now on)"),
        ConfigKey("chroma.ef_construction", "int", 256,
                  "Candidates considered while adding a vector to Chroma's graph (hnsw:construction_ef of "
                  "collections built from now on)"),
    ]


@hookimpl
def workeros_register_vector_stores() -> list[VectorBackend]:
    return [VectorBackend(name="chroma", factory=open_chroma, priority=-10, check=chromadb_missing,
                          description="Chroma collections (embedded, or a Chroma server at chroma.url) kept in "
                                      "step through the change log")]


def _closer(services: Any) -> Any:
    """Gives the store a ``close`` at shutdown (vector stores are not services)."""
    store = services.vectors
    return store if isinstance(store, ChromaStore) else None


@hookimpl
def workeros_register_services() -> list[ServiceEntry]:
    return [ServiceEntry("chroma", _closer)]
