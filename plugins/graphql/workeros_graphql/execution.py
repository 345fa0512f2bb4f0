"""One GraphQL operation, whatever carries it (an HTTP request, a
``graphql-transport-ws`` socket): parsed and validated by the role's engine,
checked against the limits, then run.

Request-level problems (no query, a syntax error, a limit exceeded,
introspection not allowed) raise the contract's typed errors; validation and
execution errors come back in the result, beside ``data``, with
``extensions.code``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tartiflette.language.ast import FieldNode, FragmentDefinitionNode, OperationDefinitionNode

from workeros.api import READ_ONLY, Accountability, Forbidden, InvalidQuery

from . import direct
from .engines import Engines, Entry
from .keys import ENGINES, SETTINGS_KEY  # noqa: F401 (re-exported)
from .resolve import _arguments, selected_fields


def check_limits(document: Any, operation_name: str | None, settings: Any, entry: Entry) -> str:
    """Depth, alias and cost limits and the introspection switch; returns the
    operation's type (query, mutation, subscription)."""
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name:
        operations = [o for o in operations if o.name is not None and o.name.value == operation_name]
    if not operations:
        raise InvalidQuery("No operation to run" + (f" named {operation_name!r}" if operation_name else ""))
    operation = operations[0]
    counts = {"fields": 0, "aliases": 0, "introspection": False}
    max_depth = int(settings["graphql.max_depth"])

    def walk(selection_set: Any, depth: int, path: tuple[str, ...]) -> None:
        if depth > max_depth:
            raise InvalidQuery(f"The query is nested deeper than {max_depth} levels")
        for node in selected_fields(selection_set, fragments):
            counts["fields"] += 1
            if counts["fields"] > int(settings["graphql.max_cost"]):
                raise InvalidQuery(f"The query selects more than {settings['graphql.max_cost']} fields")
            if node.alias is not None:
                counts["aliases"] += 1
            if node.name.value in ("__schema", "__type"):
                counts["introspection"] = True
                continue  # bounded by the schema's size; its nesting is the standard query's
            if isinstance(node, FieldNode) and node.selection_set is not None:
                walk(node.selection_set, depth + 1, (*path, node.name.value))

    walk(operation.selection_set, 1, ())
    if counts["aliases"] > int(settings["graphql.max_aliases"]):
        raise InvalidQuery(f"The query uses more than {settings['graphql.max_aliases']} aliases")
    if counts["introspection"]:
        allowed_roles = settings["graphql.introspection_roles"]
        if not settings["graphql.introspection"] or (
                allowed_roles is not None and not entry.admin and not entry.role_names & set(allowed_roles)):
            raise Forbidden("Introspection is not allowed for this role")
    return str(operation.operation_type)


@dataclass
class Operation:
    """A request checked and ready to run."""

    entry: Entry
    query: str
    variables: dict[str, Any] | None
    operation_name: str | None
    #: The validated document; ``None`` when validation failed (running it
    #: reports the validation errors).
    document: Any
    #: query, mutation or subscription
    kind: str


async def prepare(engines: Engines, settings: Any, acc: Accountability, query: Any, variables: Any,
                  operation_name: Any) -> Operation:
    from tartiflette.language.parsers.libgraphqlparser import parse_to_document

    if not isinstance(query, str) or not query.strip():
        raise InvalidQuery("query is required")
    if variables is not None and not isinstance(variables, dict):
        raise InvalidQuery("variables must be an object")
    if operation_name is not None and not isinstance(operation_name, str):
        raise InvalidQuery("operationName must be a string")
    entry = await engines.get(acc)
    # The engine's own parse cache: the document checked here is the one it runs.
    document, _ = entry.engine._cached_parse_and_validate_query(query, entry.engine._schema)
    checked = document
    if checked is None:  # not valid: parsed again for the limits, or a syntax error (400)
        try:
            checked = parse_to_document(query, entry.engine._schema)
        except Exception as exc:  # noqa: BLE001 - any parse failure is the caller's
            message = getattr(exc, "message", None) or "The query could not be parsed"
            raise InvalidQuery(str(message)[:300]) from None
    kind = check_limits(checked, operation_name, settings, entry)
    if kind == "mutation" and acc.mcp_read_only:
        raise Forbidden(READ_ONLY)
    return Operation(entry, query, variables, operation_name, document, kind)


async def run(operation: Operation, settings: Any, context: dict[str, Any]) -> dict[str, Any]:
    """The result of a query or mutation: ``{"data", "errors"?}``."""
    entry = operation.entry
    result = None
    if operation.document is not None and settings["graphql.direct"]:
        result = await _direct(entry, operation.document, operation.query, operation.operation_name, context)
    if result is None:
        result = await entry.engine.execute(operation.query, operation_name=operation.operation_name,
                                            variables=operation.variables, context=context)
    return result


async def _direct(entry: Entry, document: Any, query: str, operation_name: str | None,
                  context: dict[str, Any]) -> dict[str, Any] | None:
    """The response of a plain query, shaped without tartiflette's executor
    (see direct.py), or ``None``."""
    key = (query, operation_name)
    if key in entry.plans:
        roots = entry.plans[key]
    else:
        roots = direct.plan(document, operation_name, entry.engine._schema, entry.built)
        if len(entry.plans) >= 256:
            entry.plans.clear()
        entry.plans[key] = roots
    if roots is None:
        return None

    async def resolve(root: direct.Root) -> Any:
        args = _arguments(root.field, {})
        if root.kind == "by_id":
            args["id"] = str(args["id"])  # as the ID type coerces it
        return await entry.resolver.root(entry.built.roots[f"Query.{root.field.name.value}"], root.field, args,
                                         context, {}, {})

    return await direct.run(roots, resolve)
