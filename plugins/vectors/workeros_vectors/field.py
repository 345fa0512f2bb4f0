"""The ``vector`` field type: options, coercion and the column.

The row's own column holds the vector (little-endian float64, so a value reads
back exactly as written), which is why exports, revisions and restores carry
vectors with no special case. Stores keep an index beside it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa

from workeros.api import CoercionError, FieldType

METRICS = ("cosine", "l2", "ip")
MAX_DIMENSIONS = 16000
_DTYPE = np.dtype("<f8")
_FLOAT = frozenset({float})


class VectorColumn(sa.types.TypeDecorator):
    """A list of floats stored as packed float64 bytes (BLOB / bytea)."""

    impl = sa.LargeBinary
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> bytes | None:
        if value is None:
            return None
        return np.asarray(value, dtype=_DTYPE).tobytes()

    def process_result_value(self, value: Any, dialect: Any) -> list[float] | None:
        if value is None:
            return None
        return np.frombuffer(bytes(value), dtype=_DTYPE).tolist()


def check_options(options: Mapping[str, Any]) -> dict[str, Any]:
    extra = sorted(set(options) - {"dimensions", "metric", "source"})
    if extra:
        raise CoercionError(f"unknown vector option(s) {', '.join(repr(k)[:40] for k in extra)}")
    dimensions = options.get("dimensions")
    if isinstance(dimensions, bool) or not isinstance(dimensions, int) or not 1 <= dimensions <= MAX_DIMENSIONS:
        raise CoercionError(f"a vector field needs 'dimensions', an integer from 1 to {MAX_DIMENSIONS}")
    metric = options.get("metric", "cosine")
    if metric not in METRICS:
        raise CoercionError(f"'metric' must be one of {', '.join(METRICS)}")
    out: dict[str, Any] = {"dimensions": dimensions, "metric": metric}
    source = options.get("source")
    if source is not None:
        if not isinstance(source, str) or not source.isidentifier():
            raise CoercionError("'source' must name a text field of the collection")
        out["source"] = source
    return out


def coerce_vector(value: Any, options: Mapping[str, Any]) -> list[float]:
    if not isinstance(value, (list, tuple)):
        raise CoercionError("expected an array of numbers")
    dimensions = options.get("dimensions")
    if dimensions is not None and len(value) != dimensions:
        raise CoercionError(f"expected {dimensions} numbers, got {len(value)}")
    if set(map(type, value)) <= _FLOAT:  # the usual case (only floats): checked by NumPy
        array = np.fromiter(value, dtype=np.float64, count=len(value))
        if not np.isfinite(array).all():
            raise CoercionError("vector components must be finite numbers")
        if options.get("metric", "cosine") == "cosine" and not array.any():
            raise CoercionError("a vector compared by cosine cannot be all zeros")
        return list(value)
    out: list[float] = []
    for number in value:
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise CoercionError("expected an array of numbers")
        number = float(number)
        if not math.isfinite(number):
            raise CoercionError("vector components must be finite numbers")
        out.append(number)
    if options.get("metric", "cosine") == "cosine" and not any(out):
        raise CoercionError("a vector compared by cosine cannot be all zeros")
    return out


VECTOR = FieldType("vector", sql=lambda o: VectorColumn(), coerce=coerce_vector, ordered=False,
                   in_star=False, options=check_options, option_keys=("dimensions", "metric", "source"))


def vector_fields(collection: Any) -> list[Any]:
    return [f for f in collection.fields.values() if f.type == "vector"]


def distances(matrix: np.ndarray, query: Sequence[float], metric: str) -> np.ndarray:
    """Distance of every row of ``matrix`` to ``query``: cosine distance
    (1 - cosine similarity), Euclidean distance, or the negated inner product
    (pgvector's ``<=>``, ``<->`` and ``<#>``): smaller is nearer for all three."""
    q = np.asarray(query, dtype=np.float64)
    if metric == "l2":
        return np.sqrt(np.maximum(((matrix - q) ** 2).sum(axis=1), 0.0))
    dots = matrix @ q
    if metric == "ip":
        return -dots
    norms = np.linalg.norm(matrix, axis=1) * np.linalg.norm(q)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1.0 - np.where(norms > 0, dots / norms, 0.0)
