"""Resolving GraphQL through the items service, one query per request level.

A root field (``posts``, ``posts_by_id``, ``posts_aggregated``, a mutation) is
turned, with its whole selection set, into one items-service call: selected
fields become ``fields`` (relational ones as dot paths) and the arguments of
nested relations become ``deep`` queries — so the items service loads each
relation level with one batched query, never a query per row. Every other field
is read from the rows that call returned.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from tartiflette.language.ast import (
    BooleanValueNode,
    EnumValueNode,
    FieldNode,
    FloatValueNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    NullValueNode,
    ObjectValueNode,
    StringValueNode,
    VariableNode,
)
from tartiflette.resolver.default import default_field_resolver

from workeros.api import InvalidPayload, InvalidQuery, Query, WorkerosError, await_me_maybe, schema_race

from .sdl import Built, RootField

log = logging.getLogger("workeros.graphql")

LIST_ARGS = ("filter", "sort", "limit", "offset", "page", "search")


def value_from_ast(node: Any, variables: Mapping[str, Any]) -> Any:
    if isinstance(node, VariableNode):
        return variables.get(node.name.value)
    if isinstance(node, IntValueNode):
        return int(node.value)
    if isinstance(node, FloatValueNode):
        return float(node.value)
    if isinstance(node, BooleanValueNode):
        return node.value if isinstance(node.value, bool) else str(node.value).lower() == "true"
    if isinstance(node, NullValueNode):
        return None
    if isinstance(node, (StringValueNode, EnumValueNode)):
        return node.value
    if isinstance(node, ListValueNode):
        return [value_from_ast(v, variables) for v in node.values]
    if isinstance(node, ObjectValueNode):
        return {f.name.value: value_from_ast(f.value, variables) for f in node.fields}
    return None


def selected_fields(selection_set: Any, fragments: Mapping[str, Any],
                    _spreading: tuple[str, ...] = ()) -> list[FieldNode]:
    """The field nodes of a selection set, fragments expanded. A fragment that
    spreads itself (directly or through others) is the caller's error."""
    out: list[FieldNode] = []
    if selection_set is None:
        return out
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            out.append(selection)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name in _spreading:
                raise InvalidQuery(f"Fragment {name[:80]!r} spreads itself")
            fragment = fragments.get(name)
            if fragment is not None:
                out.extend(selected_fields(fragment.selection_set, fragments, (*_spreading, name)))
        elif isinstance(selection, InlineFragmentNode):
            out.extend(selected_fields(selection.selection_set, fragments, _spreading))
    return out


def _arguments(node: FieldNode, variables: Mapping[str, Any]) -> dict[str, Any]:
    return {a.name.value: value_from_ast(a.value, variables) for a in (node.arguments or [])}


def _list_query(args: Mapping[str, Any], fields: tuple[str, ...] | None = None,
                deep: Mapping[str, Query] | None = None) -> Query:
    sort = args.get("sort")
    return Query(
        fields=fields,
        filter=args.get("filter") or None,
        sort=tuple(sort) if isinstance(sort, list) else ((sort,) if isinstance(sort, str) else ()),
        limit=args.get("limit"),
        offset=args.get("offset"),
        page=args.get("page"),
        search=args.get("search"),
        deep=deep or {},
    )


class Translation:
    """Selection set of a collection → items ``fields`` and ``deep``."""

    def __init__(self, schema: Any, fragments: Mapping[str, Any], variables: Mapping[str, Any]) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables

    def collect(self, collection: str, selection_set: Any, prefix: str = "",
                depth: int = 0) -> tuple[list[str], dict[str, Query]]:
        c = self.schema.collections[collection]
        fields: list[str] = []
        deep: dict[str, Query] = {}
        seen_args: dict[str, dict[str, Any]] = {}
        for node in selected_fields(selection_set, self.fragments):
            name = node.name.value
            if name.startswith("_"):
                continue  # introspection, and the row fields plugins add (collection fields start with a letter)
            relation = c.relations.get(name)
            if relation is not None and node.selection_set is not None:
                args = _arguments(node, self.variables)
                if name in seen_args and seen_args[name] != args:
                    raise InvalidQuery(f"{name!r} is selected twice with different arguments; select it once")
                seen_args[name] = args
                sub_fields, sub_deep = self.collect(relation.related, node.selection_set, "", depth + 1)
                if not sub_fields:
                    sub_fields = [self.schema.collections[relation.related].primary_key]
                fields.extend(f"{prefix}{name}.{f}" for f in sub_fields)
                if relation.kind != "m2o" and any(k in args for k in LIST_ARGS) or sub_deep:
                    deep[name] = _list_query(args, None, sub_deep)
                continue
            fields.append(prefix + name)
        return list(dict.fromkeys(fields)), deep


class Resolver:
    """The engine's default resolver: root fields call the items service; any
    other field is read from its parent row."""

    def __init__(self, built: Built) -> None:
        self.built = built

    async def __call__(self, parent: Any, args: dict[str, Any], ctx: dict[str, Any], info: Any) -> Any:
        if type(parent) is dict:  # a field of a row already loaded: most calls
            return parent.get(info.field_name)
        root = self.built.roots.get(f"{info.parent_type.name}.{info.field_name}")
        if root is None:
            if isinstance(parent, Mapping):
                return parent.get(info.field_name)
            return await default_field_resolver(parent, args, ctx, info)  # introspection objects
        return await self.root(root, info.field_nodes[0], args, ctx, info.fragments or {}, info.variable_values or {})

    async def root(self, root: RootField, node: FieldNode, args: Mapping[str, Any], ctx: Mapping[str, Any],
                   fragments: Mapping[str, Any], variables: Mapping[str, Any]) -> Any:
        """A root field, with its whole selection, in one items-service call."""
        services, acc = ctx["services"], ctx["acc"]
        schema = services.schema.current()
        translation = Translation(schema, fragments, variables)
        items = services.items
        slug = root.collection
        readable = slug in self.built.types

        def query_for(base: Mapping[str, Any]) -> Query:
            if not readable:
                return Query(fields=())
            fields, deep = translation.collect(slug, node.selection_set)
            return _list_query(base, tuple(fields) or (schema.collections[slug].primary_key,), deep)

        kind = root.kind
        if kind == "list":
            rows, _ = await items.query(acc, slug, query_for(args))
            return rows
        if kind == "by_id":
            q = query_for({})
            return await _none_if_missing(items.get(acc, slug, args["id"], q))
        if kind == "aggregated":
            return await self._aggregated(items, acc, slug, args, node, translation)
        if kind == "extension":
            fields, _ = translation.collect(slug, node.selection_set)
            fields = fields or [schema.collections[slug].primary_key]
            return await await_me_maybe(root.extension.resolve(services, acc, slug, dict(args), tuple(fields)))
        data = args.get("data")
        if isinstance(data, Mapping) and "_" in data or isinstance(data, list) and any("_" in d for d in data):
            raise InvalidPayload("No writable fields")
        if kind in ("create_one", "create_many"):
            result = await items.create(acc, slug, data, query_for({}))
            return result if readable else True
        if kind == "update_one":
            result = await items.update(acc, slug, args["id"], data, query_for({}))
            return result if readable else True
        if kind == "update_many":
            result = await items.update_many(acc, slug, list(args["ids"]), data, query_for({}))
            return result if readable else True
        if kind == "delete_one":
            await items.delete(acc, slug, args["id"])
            return {"id": args["id"]}
        if kind == "delete_many":
            await items.delete_many(acc, slug, list(args["ids"]))
            return {"ids": list(args["ids"])}
        raise InvalidQuery(f"Unknown field {node.name.value!r}")

    async def _aggregated(self, items: Any, acc: Any, slug: str, args: Mapping[str, Any], node: FieldNode,
                          translation: Translation) -> list[dict[str, Any]]:
        aggregate: dict[str, list[str]] = {}
        for sel in selected_fields(node.selection_set, translation.fragments):
            name = sel.name.value
            if name == "countAll":
                aggregate.setdefault("count", []).append("*")
            elif name in ("count", "countDistinct", "sum", "avg", "min", "max"):
                for inner in selected_fields(sel.selection_set, translation.fragments):
                    if not inner.name.value.startswith("__"):
                        aggregate.setdefault(name, []).append(inner.name.value)
        if not aggregate:
            aggregate["count"] = ["*"]
        group_by = tuple(args.get("groupBy") or ())
        base = _list_query(args)
        query = Query(filter=base.filter, limit=base.limit, offset=base.offset, page=base.page, search=base.search,
                      aggregate={k: tuple(dict.fromkeys(v)) for k, v in aggregate.items()}, group_by=group_by)
        rows, _ = await items.query(acc, slug, query)
        out = []
        for row in rows:
            item: dict[str, Any] = {"group": {g: row.get(g) for g in group_by}}
            count = row.get("count")
            if isinstance(count, int):
                item["countAll"] = count
            elif isinstance(count, Mapping):
                count = dict(count)
                item["countAll"] = count.pop("*", None)
                item["count"] = count
            for fn in ("countDistinct", "sum", "avg", "min", "max"):
                if fn in row:
                    item[fn] = row[fn]
            out.append(item)
        return out


async def _none_if_missing(call: Any) -> Any:
    from workeros.api import NotFound

    try:
        return await call
    except NotFound:
        return None


async def error_coercer(exception: Exception, error: dict[str, Any]) -> dict[str, Any]:
    """Errors carry the contract's codes and never internals."""
    original = getattr(exception, "original_error", None)
    if isinstance(original, WorkerosError) or isinstance(exception, WorkerosError):
        source = original if isinstance(original, WorkerosError) else exception
        body = source.to_error()  # type: ignore[union-attr]
        error["message"] = body["message"]
        error["extensions"] = {"code": body["extensions"]["code"]}
        return error
    if original is not None and schema_race(original):
        return {"message": "The schema changed while the request ran; retry", "path": error.get("path"),
                "locations": error.get("locations"), "extensions": {"code": "SERVICE_UNAVAILABLE"}}
    if original is not None and not _is_graphql_error(original):
        log.error("GraphQL resolver failed", exc_info=original)
        return {"message": "Internal error", "path": error.get("path"), "locations": error.get("locations"),
                "extensions": {"code": "INTERNAL"}}
    error["extensions"] = {"code": "INVALID_QUERY"}
    return error


def _is_graphql_error(exc: BaseException) -> bool:
    from tartiflette.types.exceptions.tartiflette import TartifletteError

    return isinstance(exc, TartifletteError)
