"""Similarity search under the caller's permissions.

The caller's row filter and the request's ``filter`` apply *before* ranking:

* when the permitted, filtered set is small (``vectors.exact_threshold`` rows or
  fewer), or the store has no index for the field, its vectors are read through
  the items service and ranked exactly;
* otherwise the store's index proposes candidates over the whole field, the items
  service keeps those the caller may read and the filter accepts, and when fewer
  than ``limit`` pass, the index is asked again for more (the over-fetch grows
  with how selective the filter turned out to be) until ``limit`` rows pass or
  the index has nothing more; past half the field, the exact scan is cheaper.

Either way a caller gets ``limit`` rows whenever that many exist, and the
distances returned are computed from the rows' own vectors.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa

from workeros.api import (
    Accountability,
    CoercionError,
    InvalidPayload,
    Query,
    Services,
    ServiceUnavailable,
    setting_or,
)

from .field import coerce_vector, distances, vector_fields

MAX_ROUNDS = 6
#: Filtered searches count their rows up to at least this many (sizes the first over-fetch).
COUNT_AT_LEAST = 2001


def _and(*filters: Any) -> Any:
    parts = [f for f in filters if f]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"_and": parts}


def _names(value: Any, what: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return tuple(p.strip() for p in value.split(",") if p.strip())
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise InvalidPayload(f"'{what}' must be a list of field names")


class VectorSearch:
    """``services.get("vector_search")``: what REST, MCP and GraphQL call."""

    def __init__(self, services: Services) -> None:
        self.services = services
        settings = services.settings
        self.exact_threshold = int(setting_or(settings, "vectors.exact_threshold", 2000))
        self.max_limit = int(setting_or(settings, "vectors.max_limit", 1000))
        self._totals: dict[tuple[str, str], int] = {}
        self._statements: dict[tuple[Any, ...], Any] = {}

    @classmethod
    def open(cls, services: Services) -> VectorSearch:
        return cls(services)

    async def close(self) -> None:
        """Let the store save what it holds in memory (the usearch store's indexes)."""
        close = getattr(self.services.vectors, "close", None)
        if close is not None:
            await close()

    # -- inputs -----------------------------------------------------------------------------
    def _field(self, slug: str, name: Any) -> tuple[Any, Any]:
        collection = self.services.schema.current().get(slug)
        if collection is None:
            return None, None
        fields = vector_fields(collection)
        if name is None:
            if len(fields) != 1:
                raise InvalidPayload("'field' must name the vector field to search"
                                     + (f" (one of {', '.join(f.name for f in fields)})" if fields else ""))
            return collection, fields[0]
        if not isinstance(name, str):
            raise InvalidPayload("'field' must be a field name")
        field = collection.fields.get(name)
        if field is None or field.type != "vector":
            raise InvalidPayload(f"{name[:64]!r} is not a vector field of {slug!r}")
        return collection, field

    async def query_vector(self, field: Any, body: Mapping[str, Any]) -> list[float]:
        vector, text = body.get("vector"), body.get("text")
        if (vector is None) == (text is None):
            raise InvalidPayload("Give exactly one of 'vector' and 'text'")
        if text is not None:
            if not isinstance(text, str) or not text.strip():
                raise InvalidPayload("'text' must be a non-empty string")
            [vector] = await embed(self.services, [text], field)
        try:
            return coerce_vector(vector, field.options)
        except CoercionError as exc:
            raise InvalidPayload(f"Invalid 'vector': {exc}") from None

    def _limit(self, value: Any) -> int:
        if value is None:
            return 10
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= self.max_limit:
            raise InvalidPayload(f"'limit' must be an integer from 1 to {self.max_limit}")
        return value

    # -- the search -------------------------------------------------------------------------
    async def search(self, acc: Accountability, slug: str, body: Mapping[str, Any]) -> list[dict]:
        unknown = sorted(set(body) - {"field", "vector", "text", "limit", "filter", "fields"})
        if unknown:
            raise InvalidPayload(f"Unknown key(s) {', '.join(repr(k)[:40] for k in unknown)}")
        items = self.services.items
        # Access to the collection first (403 whether or not it exists), then the vector field's readability
        # and the filter (400), as /api/items checks them, before anything is read.
        reader = await items.reader(acc)
        c, rule = reader.collection(slug)
        collection, field = self._field(slug, body.get("field"))
        if collection is None:
            raise InvalidPayload(f"{slug!r} has no vector field")
        filter_ = body.get("filter")
        if filter_ is not None and not isinstance(filter_, dict):
            raise InvalidPayload("'filter' must be an object")
        reader.node(c, rule, Query(fields=(collection.primary_key, field.name)))
        unfiltered = rule.filter is None and not filter_
        if unfiltered:  # every vector of the field
            where = self._has_vector(c, field)
        else:
            where = sa.and_(reader.where(c, rule, Query(filter=filter_)), self._has_vector(c, field))
        limit = self._limit(body.get("limit"))
        fields = _names(body.get("fields"), "fields")
        vector = await self.query_vector(field, body)
        store = self.services.vectors
        if store is None or not store.indexed(collection, field):
            ranked = await self._exact(c, field, where, vector, limit)
        else:
            if unfiltered:
                candidates = await self._total(c, field)
            else:
                # Counted up to a bound: enough to choose the path and to size the first over-fetch.
                candidates = await self._count_upto(c, where, max(self.exact_threshold + 1, COUNT_AT_LEAST))
            if candidates <= self.exact_threshold:
                ranked = await self._exact(c, field, where, vector, limit)
            else:
                # The returned fields are read with the candidates' vectors when they need no relation.
                shape = self._shape(reader, c, rule, fields or ("*",))
                ranked = await self._indexed(c, field, where, vector, limit, candidates, unfiltered=unfiltered,
                                             shape=shape)
                if shape is not None:
                    rows = reader.project_flat(shape[0], [row for row, _ in ranked])
                    for row, (_, distance) in zip(rows, ranked, strict=True):
                        row["$distance"] = distance
                    return rows
        return await self._rows(acc, collection, fields, filter_, [(row[0], d) for row, d in ranked])

    def _shape(self, reader: Any, c: Any, rule: Any, fields: tuple[str, ...]) -> Any:
        """How the items service's reader turns a row into its output for
        ``fields`` under ``rule`` (the fields checked as a read of ``/api/items``
        checks them), positioned after the key and the vector that candidate
        rows start with; ``None`` when the output needs relations. Built once
        per schema version, rule and fields."""
        key = ("shape", reader.schema.version, id(reader.schema), c.name, id(rule), rule.fields, fields)
        entry = self._statements.get(key)
        if entry is None:
            node = reader.node(c, rule, Query(fields=fields))
            plan = None if node.children else [(i + 2, name, conv) for i, name, conv in reader.flat_plan(node)]
            if len(self._statements) > 256:
                self._statements.clear()
            # The rule and schema are held so their ids stay their own.
            entry = self._statements[key] = (plan, tuple(node.columns), rule, reader.schema)
        return None if entry[0] is None else (entry[0], entry[1])

    def _has_vector(self, c: Any, field: Any) -> Any:
        """``field IS NOT NULL``, built once per collection object."""
        key = ("has", c.name, field.name, id(c))
        entry = self._statements.get(key)
        if entry is None:
            if len(self._statements) > 256:
                self._statements.clear()
            entry = self._statements[key] = (c.column(field.name).is_not(None), c)  # held: its id stays its own
        return entry[0]

    async def _exact(self, c: Any, field: Any, where: Any, vector: Sequence[float],
                     limit: int) -> list[tuple[Any, float]]:
        """Rank every row the caller may read and the filter accepts (``where``,
        from the items service's reader: the row filter and the filter). The
        vectors are read as their stored bytes, not as JSON-ready lists."""
        raw = sa.type_coerce(c.column(field.name), sa.LargeBinary())
        async with self.services.db.read() as conn:
            rows = (await conn.execute(sa.select(c.pk_column, raw).where(where).order_by(c.pk_column))).all()
        if not rows:
            return []
        matrix = np.frombuffer(b"".join(bytes(row[1]) for row in rows), dtype="<f8").reshape(len(rows), -1)
        if len(rows) > 5000:  # keep the event loop free while NumPy works
            dist = await asyncio.to_thread(distances, matrix, vector, _metric(field))
        else:
            dist = distances(matrix, vector, _metric(field))
        return _top(rows, dist, limit)

    async def _indexed(self, collection: Any, field: Any, where: Any, vector: Sequence[float], limit: int,
                       candidates: int, *, unfiltered: bool = False, shape: Any = None
                       ) -> list[tuple[Any, float]]:
        """Candidates from the store's index, kept when ``where`` (the caller's
        row filter and the filter) accepts them, ranked by the rows' own
        vectors; more candidates while too few pass. Each is ``(row,
        distance)``, the row starting with its key and its vector, then the
        columns of ``shape``."""
        store = self.services.vectors
        total = await self._total(collection, field)
        selectivity = min(1.0, max(candidates / max(total, 1), 1e-6))
        k = min(total, max(limit * 2, math.ceil(limit / selectivity * 1.5)))
        propose = getattr(store, "propose", None) if unfiltered else None
        for _ in range(MAX_ROUNDS):
            if k > total / 2:
                break
            rows = None
            if propose is not None:
                # The index as it is, and in the statement reading the candidates, whether the change
                # log moved past it: only then is it brought up to date and asked again.
                proposal = await propose(collection, field, vector, limit=k)
                if proposal is not None:
                    proposed, position = proposal
                    if not proposed:
                        proposal = None
                    else:
                        rows = await self._candidates(collection, field, [key for key, _ in proposed], shape,
                                                      position)
                        if not rows or rows[0][-1] is not None:
                            rows = None
            if rows is None:
                proposed = await store.nearest(collection, field, vector, limit=k)
                if not proposed:
                    return []
                keys = [key for key, _ in proposed]
                if unfiltered:  # every vector of the field: statements built once per size
                    rows = await self._candidates(collection, field, keys, shape)
                else:
                    rows = await self._read(collection, field, where, keys, shape)
            if len(rows) >= limit or len(proposed) < k:
                if not rows:
                    return []
                rows.sort(key=lambda r: r[0])  # ties by primary key, as the exact scan
                matrix = np.frombuffer(b"".join(bytes(r[1]) for r in rows), dtype="<f8").reshape(len(rows), -1)
                return _top(rows, distances(matrix, vector, _metric(field)), limit)
            # Too few passed: the filter is more selective near this vector than overall.
            seen = max(len(rows), 1) / len(proposed)
            k = min(total, max(k * 4, math.ceil(limit / seen * 1.5)))
        ranked = await self._exact(collection, field, where, vector, limit)
        if shape is None or not ranked:
            return ranked
        # Past half the field: the exact scan's ranking, the rows read again for their fields.
        rows = await self._read(collection, field, where, [row[0] for row, _ in ranked], shape)
        by_key = {row[0]: row for row in rows}
        return [(by_key[row[0]], d) for row, d in ranked if row[0] in by_key]

    async def _read(self, collection: Any, field: Any, where: Any, keys: list[Any], shape: Any) -> list[Any]:
        """``(key, vector bytes, *the columns of shape)`` of those of ``keys``
        that ``where`` accepts."""
        raw = sa.type_coerce(collection.column(field.name), sa.LargeBinary())
        columns = [collection.table.c[name] for name in shape[1]] if shape is not None else []
        rows: list[Any] = []
        async with self.services.db.read() as conn:
            for start in range(0, len(keys), 1000):
                rows += (await conn.execute(sa.select(collection.pk_column, raw, *columns).where(
                    where, collection.pk_column.in_(keys[start:start + 1000])))).all()
        return rows

    async def _candidates(self, collection: Any, field: Any, keys: list[Any], shape: Any = None,
                          position: Mapping[str, Any] | None = None) -> list[Any]:
        """``(key, vector bytes, *the columns of shape[, pending])`` of those of
        ``keys`` that have a vector, by statements with a fixed number of key
        parameters (the next power of two, the last key repeated), built once
        and run by :meth:`Database.fetch`. With ``position``, each row ends with
        the store's :meth:`pending` change (``None`` when the index is current)."""
        rows: list[Any] = []
        db = self.services.db
        columns = shape[1] if shape is not None else ()
        for start in range(0, len(keys), 1024):
            part = keys[start:start + 1024]
            size = 1 << max(3, (len(part) - 1).bit_length())
            cache_key = (collection.name, field.name, id(collection), size, columns, position is not None)
            entry = self._statements.get(cache_key)
            if entry is None:
                if len(self._statements) > 256:
                    self._statements.clear()
                column = collection.column(field.name)
                extra = [collection.table.c[name] for name in columns]
                if position is not None:
                    extra.append(self.services.vectors.pending())
                stmt = sa.select(collection.pk_column, sa.type_coerce(column, sa.LargeBinary()), *extra).where(
                    column.is_not(None),
                    collection.pk_column.in_([sa.bindparam(f"k{i}", type_=collection.pk_column.type)
                                              for i in range(size)]))
                # held: the collection's id stays its own
                entry = self._statements[cache_key] = (stmt, collection, [f"k{i}" for i in range(size)])
            stmt, _, names = entry
            params = dict(zip(names, part, strict=False))
            last = part[-1]
            for name in names[len(part):]:
                params[name] = last
            if position is not None:
                params.update(position)
            rows += await db.fetch(stmt, params)
        return rows

    async def _count_upto(self, c: Any, where: Any, cap: int) -> int:
        """How many rows ``where`` selects, counting no further than ``cap``
        (only "small enough for the exact scan or not" matters)."""
        inner = sa.select(c.pk_column).where(where).limit(cap).subquery()
        async with self.services.db.read() as conn:
            return int((await conn.execute(sa.select(sa.func.count()).select_from(inner))).scalar() or 0)

    async def _total(self, collection: Any, field: Any) -> int:
        """Vectors in the field (sizes the over-fetch). Cached until the next
        write to the collection (:meth:`forget`); a stale figure only changes
        how many candidates are asked for, never which rows are returned."""
        key = (collection.name, field.name)
        if key not in self._totals:
            column = collection.column(field.name)
            async with self.services.db.read() as conn:
                self._totals[key] = int((await conn.execute(
                    sa.select(sa.func.count()).select_from(collection.table).where(column.is_not(None)))).scalar()
                    or 0)
        return self._totals[key]

    def forget(self, collection: str) -> None:
        for key in [k for k in self._totals if k[0] == collection]:
            del self._totals[key]

    async def _rows(self, acc: Accountability, collection: Any, fields: tuple[str, ...] | None,
                    filter_: Any, ranked: list[tuple[Any, float]]) -> list[dict]:
        if not ranked:
            return []
        pk = collection.primary_key
        wanted = fields or ("*",)
        extra = pk not in wanted and "*" not in wanted
        rows, _ = await self.services.items.query(acc, collection.name, Query(
            fields=(*wanted, pk) if extra else wanted, filter=_and(filter_, {pk: {"_in": [k for k, _ in ranked]}}),
            limit=len(ranked)))
        by_key = {row[pk]: row for row in rows}
        out = []
        for key, distance in ranked:
            row = by_key.get(key)
            if row is None:  # changed between ranking and reading
                continue
            if extra:
                row = {k: v for k, v in row.items() if k != pk}
            out.append({**row, "$distance": distance})
        return out


def _metric(field: Any) -> str:
    return field.options.get("metric", "cosine")


def _top(keys: Sequence[Any], dist: np.ndarray, limit: int) -> list[tuple[Any, float]]:
    """The ``limit`` nearest of ``keys`` (keys or rows), nearest first; ties in
    the order they were read (primary key), so answers are stable."""
    if len(keys) > limit:
        part = np.argpartition(dist, limit - 1)[:limit]
        edge = dist[part].max()
        part = np.flatnonzero(dist <= edge)  # every row tied at the edge competes on its key
    else:
        part = np.arange(len(keys))
    order = sorted(part.tolist(), key=lambda i: (float(dist[i]), i))[:limit]
    return [(keys[i], float(dist[i])) for i in order]


async def embed(services: Services, texts: Sequence[str], field: Any) -> list[list[float]]:
    embedder = services.embedder
    if embedder is None:
        raise ServiceUnavailable("No text embedder is configured (set vectors.embedder_url, or install a local "
                                 "embedder); give 'vector' instead of 'text'")
    vectors = await embedder.embed(list(texts))
    dimensions = field.options["dimensions"]
    if len(vectors) != len(texts) or any(len(v) != dimensions for v in vectors):
        raise ServiceUnavailable(f"The embedder's vectors do not have the {dimensions} dimensions of "
                                 f"field {field.name!r}")
    return vectors
