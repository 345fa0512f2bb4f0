"""Item queries: the :class:`Query` every transport builds (REST from its query
string, GraphQL from its arguments) and the items service runs.

``parse_query`` reads the REST query string (DESIGN §4): ``fields``, ``filter``
(a JSON string, or the deep-object form ``filter[title][_eq]=x``), ``sort``,
``limit``, ``offset``, ``page``, ``search``, ``meta``, ``aggregate[fn]=fields``,
``groupBy`` and ``deep`` (per relational field: ``_filter``, ``_sort``,
``_limit``, ``_offset``, ``_search``, and nested ``deep`` for its own relations).
Only the shape is checked here; fields, operators and permissions are checked
by the items service against the live schema and the caller's rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from workeros.errors import InvalidQuery

AGGREGATES = ("count", "countDistinct", "sum", "avg", "min", "max")
META = frozenset({"total_count", "filter_count"})
#: Operators whose deep-object value is a comma-separated list.
_LIST_OPS = frozenset({"_in", "_nin", "_between", "_nbetween"})
#: Operators whose deep-object value is a boolean.
_BOOL_OPS = frozenset({"_null", "_nnull", "_empty", "_nempty"})
_KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)((?:\[[^\[\]]*\])*)$")
_PART = re.compile(r"\[([^\[\]]*)\]")
_MAX_PARAM_DEPTH = 32


@dataclass(frozen=True)
class Query:
    """What to read. ``None``/empty means the default for each part: all
    readable fields, no filter, sort by primary key, ``limit`` 100."""

    fields: tuple[str, ...] | None = None
    filter: Any = None
    sort: tuple[str, ...] = ()
    limit: int | None = None
    offset: int | None = None
    page: int | None = None
    search: str | None = None
    meta: frozenset[str] = frozenset()
    aggregate: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    group_by: tuple[str, ...] = ()
    deep: Mapping[str, Query] = field(default_factory=dict)

    @property
    def is_aggregate(self) -> bool:
        return bool(self.aggregate)


def _split_list(value: Any, what: str) -> tuple[str, ...]:
    """``a,b`` or a JSON/real list of strings -> ``("a", "b")``."""
    if value is None:
        return ()
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = orjson.loads(text)
            except orjson.JSONDecodeError:
                raise InvalidQuery(f"{what} is not valid JSON") from None
        else:
            return tuple(p.strip() for p in text.split(",") if p.strip())
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(v.strip() for v in value if v.strip())
    raise InvalidQuery(f"{what} must be a comma-separated list of names")


def _int(value: Any, what: str, *, minimum: int) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise InvalidQuery(f"{what} must be an integer")
    if isinstance(value, int):
        out = value
    elif isinstance(value, str) and re.fullmatch(r"\s*-?\d{1,18}\s*", value):
        out = int(value)
    else:
        raise InvalidQuery(f"{what} must be an integer")
    if out < minimum:
        raise InvalidQuery(f"{what} must be at least {minimum}")
    return out


def _json_value(value: Any, what: str) -> Any:
    """A JSON-typed parameter given as a string: parse it."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            raise InvalidQuery(f"{what} is not valid JSON") from None
    return value


def _nest(pairs: Iterable[tuple[list[str], str]], what: str) -> Any:
    """Deep-object parameters (``[a][b]=v``) -> nested dicts; runs of numeric
    keys (``_and[0]``) become lists."""
    root: dict[str, Any] = {}
    for path, value in pairs:
        if not path or any(p == "" for p in path):
            raise InvalidQuery(f"{what}: malformed parameter name")
        node = root
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise InvalidQuery(f"{what}: conflicting parameters at {part!r}")
            node = child
        if isinstance(node.get(path[-1]), dict):
            raise InvalidQuery(f"{what}: conflicting parameters at {path[-1]!r}")
        leaf: Any = value
        op = path[-1]
        if op in _LIST_OPS:
            leaf = [v for v in value.split(",")] if value != "" else []
        elif op in _BOOL_OPS and value.lower() in ("true", "false", "1", "0"):
            leaf = value.lower() in ("true", "1")
        node[op] = leaf
    return _lists(root)


def _lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    out = {k: _lists(v) for k, v in node.items()}
    if out and all(k.isdigit() for k in out):
        return [out[k] for k in sorted(out, key=int)]
    return out


def _params(params: Any) -> list[tuple[str, str]]:
    if hasattr(params, "items") and hasattr(params, "getall"):
        return [(k, v) for k, v in params.items()]
    if isinstance(params, Mapping):
        out: list[tuple[str, str]] = []
        for k, v in params.items():
            if isinstance(v, (list, tuple)):
                out += [(k, str(x)) for x in v]
            else:
                out.append((k, v if isinstance(v, str) else str(v)))
        return out
    raise InvalidQuery("Query parameters must be a mapping")


def parse_query(params: Mapping[str, str] | Any) -> Query:
    """A :class:`Query` from REST query parameters (a dict or aiohttp's
    MultiDict). Unknown parameters are ignored (transports add their own, such
    as ``export``)."""
    if not params and isinstance(params, Mapping):
        return Query()  # a get without parameters: nothing to parse
    flat: dict[str, Any] = {}
    deep_pairs: dict[str, list[tuple[list[str], str]]] = {}
    for key, value in _params(params):
        match = _KEY.fullmatch(key)
        if match is None:
            continue
        name, rest = match.group(1), match.group(2)
        if rest:
            parts = _PART.findall(rest)
            if len(parts) > _MAX_PARAM_DEPTH:
                raise InvalidQuery(f"{name}: nested too deeply")
            if parts == [""]:  # fields[]=a&fields[]=b
                flat.setdefault(name, [])
                if isinstance(flat[name], list):
                    flat[name].append(value)
                continue
            deep_pairs.setdefault(name, []).append((parts, value))
        elif name in flat and isinstance(flat[name], list):
            flat[name].append(value)
        else:
            flat[name] = value
    for name, pairs in deep_pairs.items():
        if name in flat:
            raise InvalidQuery(f"{name} is given in two forms")
        flat[name] = _nest(pairs, name)
    return query_from_mapping(flat)


def query_from_mapping(data: Mapping[str, Any], *, prefix: str = "") -> Query:
    """A :class:`Query` from a mapping of parameters (REST names, values as
    strings or already-decoded JSON). ``deep`` entries use the ``_``-prefixed
    Directus names (``_filter``, ``_sort``, ``_limit`` ...)."""

    def get(name: str) -> Any:
        return data.get(prefix + name)

    fields_raw = get("fields")
    if isinstance(fields_raw, list) and all(isinstance(v, str) for v in fields_raw):
        fields_raw = ",".join(fields_raw)
    fields = _split_list(fields_raw, "fields") if fields_raw is not None else None
    filter_raw = _json_value(get("filter"), "filter")
    if filter_raw is not None and not isinstance(filter_raw, dict):
        raise InvalidQuery("filter must be a JSON object")
    search = get("search")
    if search is not None and not isinstance(search, str):
        raise InvalidQuery("search must be a string")
    meta_names = set(_split_list(get("meta"), "meta"))
    if "*" in meta_names:
        meta_names = set(META)
    unknown = meta_names - META
    if unknown:
        raise InvalidQuery(f"Unknown meta {sorted(unknown)[0]!r}; use total_count, filter_count or *")
    aggregate = _aggregate(_json_value(get("aggregate"), "aggregate"))
    deep = _deep(_json_value(get("deep"), "deep"))
    return Query(
        fields=fields,
        filter=filter_raw or None,
        sort=_split_list(get("sort"), "sort"),
        limit=_int(get("limit"), "limit", minimum=-1),
        offset=_int(get("offset"), "offset", minimum=0),
        page=_int(get("page"), "page", minimum=1),
        search=search or None,
        meta=frozenset(meta_names),
        aggregate=aggregate,
        group_by=_split_list(get("groupBy") if get("groupBy") is not None else get("group_by"), "groupBy"),
        deep=deep,
    )


def _aggregate(raw: Any) -> dict[str, tuple[str, ...]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InvalidQuery("aggregate must be an object: aggregate[count]=*")
    out: dict[str, tuple[str, ...]] = {}
    for fn, fields in raw.items():
        if fn not in AGGREGATES:
            raise InvalidQuery(f"Unknown aggregate function {str(fn)[:40]!r}; use one of {', '.join(AGGREGATES)}")
        names = _split_list(fields, f"aggregate[{fn}]")
        if not names:
            raise InvalidQuery(f"aggregate[{fn}] names no field")
        out[fn] = names
    return out


def _deep(raw: Any, depth: int = 0) -> dict[str, Query]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InvalidQuery("deep must be an object keyed by relational field")
    if depth > 8:
        raise InvalidQuery("deep is nested too deeply")
    out: dict[str, Query] = {}
    for name, spec in raw.items():
        if not isinstance(spec, dict):
            raise InvalidQuery(f"deep[{str(name)[:40]}] must be an object")
        options = {k[1:]: v for k, v in spec.items() if k.startswith("_")}
        nested = {k: v for k, v in spec.items() if not k.startswith("_")}
        unknown = set(options) - {"filter", "sort", "limit", "offset", "page", "search", "fields"}
        if unknown:
            raise InvalidQuery(f"deep[{str(name)[:40]}]: unknown option _{sorted(unknown)[0][:40]}")
        sub = query_from_mapping(options)
        if nested:
            sub = Query(**{**sub.__dict__, "deep": _deep(nested, depth + 1)})
        out[name] = sub
    return out
