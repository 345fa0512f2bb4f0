"""Vector fields and similarity search (DESIGN §6 "Vectors").

- the ``vector`` field type (``{"type": "vector", "dimensions": 384, "metric":
  "cosine", "source": "body"}``), stored in the row's own column;
- vector stores: ``usearch`` (an in-process HNSW index kept in step by a change
  log; the default on SQLite), ``sqlite-vec`` (``vec0`` tables in the SQLite
  file), ``pgvector`` (HNSW; the usearch store, else an exact scan, with a
  startup warning where the extension is missing), ``exact`` (NumPy over the
  permitted rows, any dialect);
- ``POST /api/vectors/{slug}/search``, the ``vector_search`` and ``vector_upsert``
  MCP tools, and ``services.get("vector_search")`` for other plugins;
- an OpenAI-compatible embedder filling ``source`` fields and embedding ``text``
  searches.
"""

from __future__ import annotations

from typing import Any

from workeros.api import (
    InvalidPayload,
    ServiceUnavailable,
    accountability,
    ok,
    read_object,
    services,
)
from workeros.hookspecs import hookimpl
from workeros.hookspecs.lifecycle import ConfigKey, ServiceEntry
from workeros.hookspecs.mcp import McpTool, ToolContext
from workeros.hookspecs.transport import GraphQLQuery
from workeros.hookspecs.vectors import EmbedderBackend, VectorBackend

from . import stores
from .embedders import LocalEmbedder, OpenAIEmbedder, wordllama_missing
from .field import VECTOR, vector_fields
from .hnsw import open_usearch, usearch_missing
from .search import VectorSearch, embed


@hookimpl
def workeros_register_field_types() -> list[Any]:
    return [VECTOR]


@hookimpl
def workeros_register_config_keys() -> list[ConfigKey]:
    return [
        ConfigKey("vectors.exact_threshold", "int", 2000,
                  "Searches whose permitted, filtered rows are at most this many rank them exactly; above it "
                  "the store's index proposes candidates"),
        ConfigKey("vectors.max_limit", "int", 1000, "Largest 'limit' a vector search accepts"),
        ConfigKey("vectors.embedder_url", "str", None,
                  "Base URL of an OpenAI-compatible embeddings API (POST {url}/embeddings)"),
        ConfigKey("vectors.embedder_model", "str", "text-embedding-3-small", "Model the embedder is asked for"),
        ConfigKey("vectors.embedder_api_key", "str", None, "Bearer key sent to the embedder", secret=True),
        ConfigKey("vectors.local_embedder", "bool", True,
                  "Without vectors.embedder_url, embed with the local WordLlama model when it is installed"),
        ConfigKey("vectors.embedder_dimensions", "int", None,
                  "Dimensions asked of the embedder (models that can shorten their vectors)"),
        ConfigKey("vectors.index_connectivity", "int", 16,
                  "usearch store: links per node of the HNSW graph (more: better recall, more memory)"),
        ConfigKey("vectors.index_ef_construction", "int", 128,
                  "usearch store: candidates considered while adding a vector to the graph"),
        ConfigKey("vectors.index_ef_search", "int", 128,
                  "usearch store: candidates considered per search (more: better recall, slower)"),
        ConfigKey("vectors.index_dtype", "str", "auto",
                  "usearch store: how the graph holds vectors (auto: i8 for cosine fields, f32 for l2 and ip; "
                  "or f32, f16, i8 for every field); results are ranked by the rows' own float64 vectors "
                  "either way", choices=("auto", "f32", "f16", "i8")),
    ]


@hookimpl
def workeros_register_vector_stores() -> list[VectorBackend]:
    return [
        VectorBackend(name="usearch", factory=open_usearch, priority=20, dialects=("sqlite",),
                      check=usearch_missing,
                      description="In-process HNSW index (usearch) kept in step by a change log"),
        VectorBackend(name="sqlite-vec", factory=stores.open_sqlite_vec, priority=10, dialects=("sqlite",),
                      check=stores.sqlite_vec_missing, description="vec0 tables in the SQLite database file"),
        VectorBackend(name="pgvector", factory=stores.open_pgvector, priority=10, dialects=("postgres",),
                      description="pgvector HNSW (the usearch store, else an exact scan, when the extension is "
                                  "missing)"),
        VectorBackend(name="exact", factory=stores.open_exact, priority=0,
                      description="Exact scan of the permitted rows with NumPy; no index"),
    ]


@hookimpl
def workeros_register_embedders() -> list[EmbedderBackend]:
    return [
        EmbedderBackend(name="openai", factory=OpenAIEmbedder.from_settings, priority=10,
                        description="OpenAI-compatible embeddings API at vectors.embedder_url"),
        EmbedderBackend(name="wordllama", factory=lambda settings: LocalEmbedder(), priority=5,
                        check=wordllama_missing, description="Local WordLlama model (256 dimensions), offline"),
    ]


def _open_search(svc: Any) -> VectorSearch:
    if isinstance(svc.embedder, OpenAIEmbedder):
        svc.embedder.outbound = svc.outbound
    elif (svc.embedder is None and svc.settings["vectors.embedder"] is None and svc.settings["vectors.local_embedder"]
          and wordllama_missing() is None):
        # No URL for the HTTP embedder: the local model, where it is installed.
        svc.embedder = LocalEmbedder()
    return VectorSearch.open(svc)


@hookimpl
def workeros_register_services() -> list[ServiceEntry]:
    return [ServiceEntry("vector_search", _open_search)]


# -- keeping vectors in step with rows ----------------------------------------------------

def _collection(mutation: Any) -> Any:
    return mutation.services.schema.current().get(mutation.collection)


async def _fill_from_source(mutation: Any) -> None:
    """A field with ``source`` gets the embedding of that text when the payload
    sets the text and not the vector itself."""
    collection = _collection(mutation)
    if collection is None:
        return
    for field in vector_fields(collection):
        source = field.options.get("source")
        if not source:
            continue
        todo = [p for p in mutation.payloads if isinstance(p, dict) and source in p and field.name not in p]
        texts = [p[source] for p in todo]
        for text in texts:
            if text is not None and not isinstance(text, str):
                raise InvalidPayload(f"Field {source!r} must be text to embed it into {field.name!r}")
        wanted = [t for t in texts if t and t.strip()]
        if wanted and mutation.services.embedder is None:
            raise ServiceUnavailable(f"Field {field.name!r} is filled from {source!r} by an embedder, and none "
                                     "is configured (vectors.embedder_url)")
        vectors = iter(await embed(mutation.services, wanted, field)) if wanted else iter(())
        for payload, text in zip(todo, texts, strict=True):
            payload[field.name] = next(vectors) if text and text.strip() else None


@hookimpl
def workeros_items_before_create(mutation: Any) -> Any:
    return _fill_from_source(mutation)


@hookimpl
def workeros_items_before_update(mutation: Any) -> Any:
    return _fill_from_source(mutation)


@hookimpl
async def workeros_items_committing(mutation: Any) -> None:
    store = mutation.services.vectors
    collection = _collection(mutation)
    if store is None or collection is None or not vector_fields(collection):
        return
    search = mutation.services.extra.get("vector_search")
    if search is not None:
        search.forget(collection.name)
    for field in vector_fields(collection):
        if not store.indexed(collection, field):
            continue
        if mutation.action == "delete":
            await store.delete(mutation.connection, collection, field, mutation.keys)
            continue
        pk = collection.primary_key
        present = [(row[pk], row[field.name]) for row in mutation.after or () if row.get(field.name) is not None]
        absent = [row[pk] for row in mutation.after or () if row.get(field.name) is None]
        if present:
            await store.upsert(mutation.connection, collection, field, present)
        if absent:
            await store.delete(mutation.connection, collection, field, absent)


# -- ways in ------------------------------------------------------------------------------

async def search_route(request: Any) -> Any:
    body = await read_object(request)
    search: VectorSearch = services(request).get("vector_search")
    return ok(await search.search(accountability(request), request.match_info["slug"], body))


@hookimpl
def workeros_after_app_created(app: Any) -> None:
    app.router.add_post("/api/vectors/{slug}/search", search_route)


async def _tool_search(ctx: ToolContext, args: dict[str, Any]) -> Any:
    body = {k: v for k, v in args.items() if k != "collection"}
    return await ctx.services.get("vector_search").search(ctx.accountability, args["collection"], body)


async def _tool_upsert(ctx: ToolContext, args: dict[str, Any]) -> Any:
    """Set the vector (or, for a ``source`` field, the text it is embedded
    from) of one item, or create the item when ``id`` is absent."""
    items = ctx.services.items
    if "vector" in args and not args.get("field"):
        raise InvalidPayload("'vector' needs 'field', the vector field to set")
    data = {args["field"]: args["vector"]} if "vector" in args else {}
    data.update(args.get("data") or {})
    if not data:
        raise InvalidPayload("Give 'vector' or 'data'")
    if args.get("id") is None:
        return await items.create(ctx.accountability, args["collection"], data)
    return await items.update(ctx.accountability, args["collection"], args["id"], data)


_SEARCH_SCHEMA = {
    "type": "object",
    "required": ["collection"],
    "properties": {
        "collection": {"type": "string"},
        "field": {"type": "string", "description": "The vector field (optional when there is one)"},
        "vector": {"type": "array", "items": {"type": "number"}},
        "text": {"type": "string", "description": "Embedded with the configured embedder"},
        "limit": {"type": "integer", "minimum": 1},
        "filter": {"type": "object"},
        "fields": {"type": "array", "items": {"type": "string"}},
    },
}
_UPSERT_SCHEMA = {
    "type": "object",
    "required": ["collection"],
    "properties": {
        "collection": {"type": "string"},
        "id": {"type": ["string", "integer"], "description": "The item to update; absent to create one"},
        "field": {"type": "string"},
        "vector": {"type": "array", "items": {"type": "number"}},
        "data": {"type": "object", "description": "Other fields to set (a source text, for instance)"},
    },
}


@hookimpl
def workeros_register_mcp_tools() -> list[McpTool]:
    return [
        McpTool("vector_search", "Items nearest to a vector or a text, among those the caller may read",
                _SEARCH_SCHEMA, _tool_search, read_only=True, idempotent=True, group="vectors"),
        McpTool("vector_upsert", "Set an item's vector (or create an item with one)", _UPSERT_SCHEMA,
                _tool_upsert, group="vectors"),
    ]


# -- GraphQL: <slug>_nearest -----------------------------------------------------------------

def _nearest_applies(collection: Any, readable: Any) -> bool:
    """Collections with a vector field the caller may read."""
    return any(readable is None or f.name in readable for f in vector_fields(collection))


def _nearest_arguments(slug: str, collection: Any) -> str:
    return f"field: String, vector: [Float!], text: String, limit: Int, filter: {slug}_Filter"


async def _nearest(services: Any, acc: Any, slug: str, args: dict[str, Any], fields: tuple[str, ...]) -> Any:
    """The same search as ``POST /api/vectors/{slug}/search``, reading only the
    selected fields; each row's distance as ``_distance``."""
    body = {k: v for k, v in args.items() if v is not None}
    rows = await services.get("vector_search").search(acc, slug, {**body, "fields": list(fields)})
    return [{**{k: v for k, v in row.items() if k != "$distance"}, "_distance": row["$distance"]} for row in rows]


@hookimpl
def workeros_register_graphql_queries() -> list[GraphQLQuery]:
    return [GraphQLQuery("nearest", applies=_nearest_applies, arguments=_nearest_arguments, resolve=_nearest,
                         row_fields={"_distance": "Float"})]
