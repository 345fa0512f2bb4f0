"""Item lifecycle: filter hooks before a write, action hooks after it.

Every write of user data — REST, GraphQL, a restore, a flow step, a function's
``ctx.db``, an MCP tool — goes through the items service, which calls these
hooks with one :class:`ItemMutation` per call (one collection, one action, one
or many items). The two kinds follow Directus's extension model:

- **filter** hooks run inside the write's transaction, *before* the rows change:
  ``workeros_items_before_create|update|delete``. They may change
  ``mutation.payloads`` in place (the caller's permissions, presets and
  validation are checked afterwards, on what the hooks leave) or raise a
  :class:`workeros.errors.WorkerosError` to refuse the whole call, which rolls
  back and answers with that error;
- ``workeros_items_committing`` runs inside the transaction *after* the rows
  changed, with the rows before and after: write rows of your own on
  ``mutation.connection`` (a transactional outbox) and they commit or roll back
  with the change; raising refuses the change as above;
- **action** hooks ``workeros_items_after_create|update|delete`` run after the
  commit, in background tasks: they never delay the response and their errors
  are logged, not returned. They never run for a write that rolled back.

Implementations may be async (return an awaitable); the kernel awaits filter
hooks in plugin order (pluggy's: ``tryfirst`` first, then the most recently
registered). The kernel skips all of this when no plugin implements the hooks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import hookspec

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from workeros.accountability import Accountability
    from workeros.services import Services


@dataclass
class ItemMutation:
    """One write call as the lifecycle hooks see it.

    ``collection``, ``action`` (``create``, ``update``, ``delete``) and the
    caller's ``accountability``. ``payloads``: the items as sent (create: one
    dict per item; update: one dict applied to every key; delete: empty) —
    filter hooks may edit them. ``keys``: primary keys (known after the write for
    creates; for updates and deletes, the rows the call changes). ``before`` and
    ``after``: the full rows (JSON-ready, every column) before and after the
    change, where they exist (``before`` from the update/delete filter hooks on,
    ``after`` from ``committing`` on). ``connection``: the open transaction, for
    filter hooks and ``committing`` only (``None`` in action hooks). ``meta``:
    what the caller attached (a restore says where from).
    """

    collection: str
    action: str
    accountability: Accountability
    services: Services
    payloads: list[dict[str, Any]] = field(default_factory=list)
    keys: list[Any] = field(default_factory=list)
    before: list[dict[str, Any]] | None = None
    after: list[dict[str, Any]] | None = None
    connection: AsyncConnection | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@hookspec
def workeros_items_before_create(mutation: ItemMutation) -> None:
    """Filter items about to be created.

    Called inside the write transaction, before the caller's permissions,
    presets and validation are applied and before any row is inserted.
    ``mutation.payloads`` holds one dict per item; change them in place to
    alter what is created. Raise a ``WorkerosError`` (``InvalidPayload``,
    ``Forbidden``…) to refuse the call: nothing is written and the caller gets
    that error.

    :param mutation: the call; ``connection`` is the open transaction.
    :return: nothing (an awaitable is awaited). Not firstresult.

    .. versionadded:: 0.2

    Example::

        @hookimpl
        def workeros_items_before_create(mutation):
            if mutation.collection == "posts":
                for item in mutation.payloads:
                    item.setdefault("slug", slugify(item.get("title", "")))
    """


@hookspec
def workeros_items_before_update(mutation: ItemMutation) -> None:
    """Filter an update about to be applied.

    Called inside the write transaction once the rows to change are known and
    locked (``mutation.keys``, ``mutation.before``), before the payload is
    checked against the caller's permissions and written. ``mutation.payloads``
    holds one dict, applied to every key; change it in place, or raise a
    ``WorkerosError`` to refuse the call.

    :param mutation: the call; ``connection`` is the open transaction.
    :return: nothing (an awaitable is awaited). Not firstresult.

    .. versionadded:: 0.2

    Example::

        @hookimpl
        def workeros_items_before_update(mutation):
            if mutation.collection == "orders" and any(r["status"] == "shipped" for r in mutation.before):
                raise InvalidPayload("Shipped orders cannot change")
    """


@hookspec
def workeros_items_before_delete(mutation: ItemMutation) -> None:
    """Filter a delete about to happen.

    Called inside the write transaction once the rows to delete are known
    (``mutation.keys``, ``mutation.before``), before they are deleted. Raise a
    ``WorkerosError`` to refuse the call.

    :param mutation: the call; ``connection`` is the open transaction.
    :return: nothing (an awaitable is awaited). Not firstresult.

    .. versionadded:: 0.2

    Example::

        @hookimpl
        def workeros_items_before_delete(mutation):
            if mutation.collection == "invoices":
                raise Forbidden("Invoices are never deleted")
    """


@hookspec
def workeros_items_committing(mutation: ItemMutation) -> None:
    """A change is written and about to commit.

    Called inside the write transaction after every row of the call changed
    and its activity and revision rows were written, with ``keys``, ``before``
    and ``after`` filled in. Rows written on ``mutation.connection`` commit or
    roll back with the change — the place for a transactional outbox (webhook
    deliveries) or an index kept in step (vectors). Raising a ``WorkerosError``
    rolls the change back and answers with that error.

    :param mutation: the call; ``connection`` is the open transaction.
    :return: nothing (an awaitable is awaited). Not firstresult.

    .. versionadded:: 0.2

    Example::

        @hookimpl
        def workeros_items_committing(mutation):
            return mutation.connection.execute(outbox.insert(), [
                {"event": f"items.{mutation.action}", "key": str(k)} for k in mutation.keys])
    """


@hookspec
def workeros_items_after_create(mutation: ItemMutation) -> None:
    """Items were created and committed.

    Called after the commit, in a background task: the API response does not
    wait for it and an error is logged, never returned. ``mutation.after``
    holds the created rows; ``connection`` is ``None``.

    :param mutation: the call.
    :return: nothing (an awaitable is awaited in the background). Not
        firstresult.

    .. versionadded:: 0.2

    Example::

        @hookimpl
        def workeros_items_after_create(mutation):
            if mutation.collection == "signups":
                return notify_sales(mutation.after)
    """


@hookspec
def workeros_items_after_update(mutation: ItemMutation) -> None:
    """Items were updated and committed.

    Called after the commit, in a background task (see
    :func:`workeros_items_after_create`), with ``before`` and ``after``.

    :param mutation: the call.
    :return: nothing (an awaitable is awaited in the background). Not
        firstresult.

    .. versionadded:: 0.2

    Example::

        @hookimpl
        def workeros_items_after_update(mutation):
            log.info("%s changed %s", mutation.accountability.user, mutation.keys)
    """


@hookspec
def workeros_items_after_delete(mutation: ItemMutation) -> None:
    """Items were deleted and committed.

    Called after the commit, in a background task (see
    :func:`workeros_items_after_create`), with ``before`` holding the deleted
    rows.

    :param mutation: the call.
    :return: nothing (an awaitable is awaited in the background). Not
        firstresult.

    .. versionadded:: 0.2

    Example::

        @hookimpl
        def workeros_items_after_delete(mutation):
            return search_index.remove(mutation.collection, mutation.keys)
    """
