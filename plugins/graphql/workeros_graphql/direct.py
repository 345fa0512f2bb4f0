"""Running the plainest queries without tartiflette's field-by-field executor.

Most queries are a list or a by-id read with a selection of fields and nested
relations: the items service returns every row and field in one call per
relation level, and tartiflette then walks each field of each row through a
chain of awaited coercers — for a 20-row list of six fields, most of the
request's time. For such a query this module shapes the result from the rows
itself, coercing every value with the same scalar types of the same built
schema, so the response is the one tartiflette gives (a test runs a set of
queries both ways and compares).

A query takes this path only when tartiflette has parsed and validated it
against the role's schema and it is in the plain shape: one query operation,
no variables, no fragments, no directives, no ``__`` fields, and only list and
by-id root fields. Anything else — and any value that does not coerce, or a
``null`` in a non-null position, or an error from the items service — goes to
tartiflette, which reports it in the usual way. Data always comes from the
items service with the caller's accountability: this only replaces the walk
over rows already read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tartiflette.language.ast import FieldNode, OperationDefinitionNode

from .sdl import Built

#: A plan that says "not plain: use tartiflette".
NOT_PLAIN = None


class _Fallback(Exception):
    """This query is answered by tartiflette after all."""


@dataclass(frozen=True)
class Leaf:
    key: str  # alias or name
    name: str
    non_null: bool
    coerce: Callable[[Any], Any]


@dataclass(frozen=True)
class Branch:
    key: str
    name: str
    non_null: bool
    is_list: bool
    item_non_null: bool
    children: tuple[Any, ...]


@dataclass(frozen=True)
class Root:
    key: str
    field: FieldNode
    kind: str  # list, by_id
    branch: Branch


def _unwrap(schema: Any, graphql_type: Any) -> tuple[bool, bool, bool, Any]:
    """(non_null, is_list, item_non_null, named type) of a field's type."""
    non_null = is_list = item_non_null = False

    def inner(t: Any) -> Any:  # a wrapper holds its type by name
        return schema.find_type(t.gql_type) if isinstance(t.gql_type, str) else t.gql_type

    t = graphql_type
    if t.is_non_null_type:
        non_null, t = True, inner(t)
    if t.is_list_type:
        is_list, t = True, inner(t)
        if t.is_non_null_type:
            item_non_null, t = True, inner(t)
    if t.is_wrapping_type:  # deeper nesting than our schemas write
        raise _Fallback
    return non_null, is_list, item_non_null, t


def _children(schema: Any, type_name: str, selection_set: Any) -> tuple[Any, ...]:
    object_type = schema.find_type(type_name)
    out: list[Any] = []
    keys: set[str] = set()
    for selection in selection_set.selections:
        if not isinstance(selection, FieldNode) or selection.directives:
            raise _Fallback
        name = selection.name.value
        key = selection.alias.value if selection.alias is not None else name
        if name.startswith("__") or key in keys:
            raise _Fallback  # introspection, or one key selected twice (merged by tartiflette)
        keys.add(key)
        if selection.arguments and selection.selection_set is None:
            raise _Fallback
        non_null, is_list, item_non_null, named = _unwrap(schema, object_type.find_field(name).graphql_type)
        if selection.selection_set is None:
            if is_list or not hasattr(named, "coerce_output"):
                raise _Fallback
            out.append(Leaf(key, name, non_null, named.coerce_output))
        else:
            out.append(Branch(key, name, non_null, is_list, item_non_null,
                              _children(schema, named.name, selection.selection_set)))
    return tuple(out)


def plan(document: Any, operation_name: str | None, schema: Any, built: Built) -> tuple[Root, ...] | None:
    """The plain shape of a validated query, or ``None``."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(document.definitions) != len(operations) or len(operations) != 1:
        return NOT_PLAIN
    operation = operations[0]
    if operation_name is not None and (operation.name is None or operation.name.value != operation_name):
        return NOT_PLAIN
    if str(operation.operation_type) != "query" or operation.variable_definitions or operation.directives:
        return NOT_PLAIN
    roots = []
    try:
        query_type = schema.find_type(schema.query_operation_name)
        keys: set[str] = set()
        for selection in operation.selection_set.selections:
            if not isinstance(selection, FieldNode) or selection.directives or selection.selection_set is None:
                return NOT_PLAIN
            name = selection.name.value
            key = selection.alias.value if selection.alias is not None else name
            root = built.roots.get(f"Query.{name}")
            if root is None or root.kind not in ("list", "by_id") or key in keys:
                return NOT_PLAIN
            keys.add(key)
            non_null, is_list, item_non_null, named = _unwrap(schema, query_type.find_field(name).graphql_type)
            branch = Branch(key, name, non_null, is_list, item_non_null,
                            _children(schema, named.name, selection.selection_set))
            roots.append(Root(key, selection, root.kind, branch))
    except _Fallback:
        return NOT_PLAIN
    return tuple(roots)


def _shape(children: tuple[Any, ...], row: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for child in children:
        value = row.get(child.name)
        if value is None:
            if child.non_null:
                raise _Fallback
            out[child.key] = None
        elif type(child) is Leaf:
            out[child.key] = child.coerce(value)
        else:
            out[child.key] = _branch(child, value)
    return out


def _branch(branch: Branch, value: Any) -> Any:
    if branch.is_list:
        if not isinstance(value, list):
            raise _Fallback
        items = []
        for item in value:
            if item is None:
                if branch.item_non_null:
                    raise _Fallback
                items.append(None)
            elif isinstance(item, Mapping):
                items.append(_shape(branch.children, item))
            else:
                raise _Fallback
        return items
    if not isinstance(value, Mapping):
        raise _Fallback
    return _shape(branch.children, value)


async def run(roots: tuple[Root, ...], resolve: Callable[[Root], Any]) -> dict[str, Any] | None:
    """The response, or ``None`` when tartiflette should answer instead."""
    data: dict[str, Any] = {}
    try:
        for root in roots:
            value = await resolve(root)
            if value is None:
                if root.branch.non_null:
                    return None
                data[root.key] = None
            else:
                data[root.key] = _branch(root.branch, value)
    except _Fallback:
        return None
    except Exception:  # noqa: BLE001 - the usual path reports it, with its path and code
        return None
    return {"data": data}
