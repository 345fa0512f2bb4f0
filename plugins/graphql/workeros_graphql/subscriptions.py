"""``<slug>_mutated``: the realtime hub's events, as the source stream of a
GraphQL subscription.

Each subscription is one hub subscription with the caller's
``Accountability``, so it sees exactly what the SSE and WebSocket transports
would: rows the role may read that match ``filter``, cut to the readable fields
the selection asks for, with visibility transitions as ``create``/``delete``
(DESIGN §4). tartiflette runs the selection set over each payload::

    {"<slug>_mutated": {"event": "create|update|delete", "key": <key>, "data": <row> | None}}

one payload per row of an event. ``data`` is ``None`` for a delete (the key is
all a delete tells). Events carry a collection's own fields, so ``data`` may
select scalar fields and, of a many-to-one relation, the related key only
(``author { id }``); anything else is refused when the subscription starts.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from tartiflette import Subscription
from tartiflette.language.ast import FieldNode, FragmentDefinitionNode, OperationDefinitionNode

from workeros.api import Forbidden, InvalidQuery, ServiceUnavailable, WorkerosError

from .resolve import selected_fields
from .sdl import Built

EVENTS = ("create", "update", "delete")


class Closed(Exception):
    """The hub ended the subscription; ``reason`` is ``shutdown``,
    ``forbidden: …`` (the caller's access changed), ``revoked: …`` or
    ``expired: …`` (the credential stopped working) or ``too slow: …``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    @property
    def shutdown(self) -> bool:
        return self.reason == "shutdown"

    def error(self) -> WorkerosError:
        kind, _, detail = self.reason.partition(": ")
        if kind in ("forbidden", "revoked", "expired"):
            return Forbidden(detail or None)
        return ServiceUnavailable(f"The subscription ended: {self.reason}")


def register(built: Built, schema_name: str) -> None:
    """Give every subscription field of ``built`` its source stream in the
    schema ``schema_name`` (before the engine of that schema is created)."""
    source = _source(built)
    for name, root in built.roots.items():
        if root.kind == "subscription":
            Subscription(name, schema_name=schema_name)(source)


def check_root(document: Any, operation_name: str | None, built: Built) -> None:
    """A valid subscription operation selects one of the role's ``<slug>_mutated``
    fields (not ``__typename``, which has no stream)."""
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    for operation in document.definitions:
        if not isinstance(operation, OperationDefinitionNode) or operation_name and (
                operation.name is None or operation.name.value != operation_name):
            continue
        for node in selected_fields(operation.selection_set, fragments):
            root = built.roots.get(f"Subscription.{node.name.value}")
            if root is None or root.kind != "subscription":
                raise InvalidQuery(f"A subscription selects one <collection>_mutated field, not {node.name.value!r}")
        return


def _source(built: Built) -> Callable[..., AsyncIterator[dict[str, Any]]]:
    async def mutated(parent: Any, args: dict[str, Any], ctx: dict[str, Any],
                      info: Any) -> AsyncIterator[dict[str, Any]]:
        root = built.roots[f"Subscription.{info.field_name}"]
        async for payload in stream(root.collection, info.field_name, args, ctx, info.field_nodes[0],
                                    info.fragments or {}):
            yield payload

    return mutated


async def stream(collection: str, field_name: str, args: Mapping[str, Any], ctx: Mapping[str, Any],
                 node: FieldNode, fragments: Mapping[str, Any]) -> AsyncIterator[dict[str, Any]]:
    """The payloads of one subscription. ``ctx["started"]``, a future, is set
    once the hub has registered it: events from then on are delivered."""
    services, acc = ctx["services"], ctx["acc"]
    hub = services.realtime
    if hub is None:
        raise ServiceUnavailable("Realtime is not available")
    c = services.schema.current().get(collection)
    if c is None:
        raise Forbidden()
    fields, m2o = data_fields(services.schema.current(), c, node, fragments)
    event = args.get("event")
    sub = await hub.subscribe(acc, collection, filter=args.get("filter") or None, fields=fields,
                              stream=ctx.get("stream"))
    try:
        started = ctx.get("started")
        if isinstance(started, asyncio.Future) and not started.done():
            started.set_result(None)
        pk = c.primary_key
        while True:
            message = await sub.queue.get()
            if message.event == "closed":
                raise Closed(message.reason or "closed")
            if message.event not in EVENTS or event is not None and message.event != event:
                continue  # a gap (resume only) or an event kind not asked for
            for row in message.data:
                data = None if message.event == "delete" else _shaped(row, m2o)
                yield {field_name: {"event": message.event, "key": row.get(pk), "data": data}}
    finally:
        hub.unsubscribe(sub)


def data_fields(schema: Any, c: Any, node: FieldNode,
                fragments: Mapping[str, Any]) -> tuple[list[str], dict[str, str]]:
    """The collection's fields the selection of ``data`` needs (the key at
    least), and the many-to-one fields selected, with the related key that
    stands for each."""
    fields: list[str] = [c.primary_key]
    m2o: dict[str, str] = {}
    for data in selected_fields(node.selection_set, fragments):
        if data.name.value != "data":
            continue
        for selection in selected_fields(data.selection_set, fragments):
            name = selection.name.value
            if name.startswith("__"):
                continue
            relation = c.relations.get(name)
            if relation is not None and selection.selection_set is not None:
                related_pk = schema.collections[relation.related].primary_key
                inner = {s.name.value for s in selected_fields(selection.selection_set, fragments)}
                if relation.kind != "m2o":
                    raise InvalidQuery(f"Subscription events carry only the fields of {c.name} itself: "
                                       f"{name!r} lists related items; query the item for them")
                if inner - {related_pk, "__typename"}:
                    raise InvalidQuery(f"Subscription events carry only the fields of {c.name} itself: "
                                       f"of {name!r}, select {related_pk!r} only; query the item for more")
                m2o[name] = related_pk
            fields.append(name)
    return list(dict.fromkeys(fields)), m2o


def _shaped(row: Mapping[str, Any], m2o: Mapping[str, str]) -> dict[str, Any]:
    """A row of an event as the selection reads it: a many-to-one key becomes
    the related object holding it. (Rows are shared by every subscriber of a
    group: copied, never changed.)"""
    if not m2o:
        return dict(row)
    out = dict(row)
    for name, related_pk in m2o.items():
        value = out.get(name)
        if value is not None:
            out[name] = {related_pk: value}
    return out
