"""The schema service: collections, fields and relations, and the cached
immutable :class:`~workeros.schema.model.Schema` every other service reads.

Reads: :meth:`SchemaService.current` returns the cached schema (no database
access). Writes (admin only) run in one schema transaction: a per-process lock
plus the dialect's database-wide lock (PostgreSQL advisory lock, SQLite
``BEGIN IMMEDIATE``), the catalog re-read under that lock, DDL and catalog rows
together, the schema version bumped, an activity row written. After the commit
this instance installs the new schema before returning, and publishes the new
version on the ``schema`` channel so every other instance reloads once (one
catalog read per change, never per request).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from workeros.accountability import Accountability
from workeros.bus.events import SCHEMA
from workeros.db import activity
from workeros.errors import Forbidden, NotFound
from workeros.schema.catalog import Catalog, bump_version, load
from workeros.schema.changes import Changes
from workeros.schema.model import Collection, Field, Relation, Schema

if TYPE_CHECKING:
    from workeros.services import Services

log = logging.getLogger("workeros.schema")
T = TypeVar("T")


# -- descriptions (the JSON shapes of /api/collections, /api/fields, /api/relations) ----

def describe_relation(relation: Relation) -> dict[str, Any]:
    return {
        "collection": relation.collection,
        "field": relation.field,
        "kind": relation.kind,
        "related_collection": relation.related,
        "related_field": relation.related_field,
        "junction_collection": relation.junction,
        "junction_field": relation.junction_field,
        "junction_related_field": relation.junction_related_field,
        "on_delete": relation.on_delete,
    }


def describe_field(collection: Collection, field: Field) -> dict[str, Any]:
    relation = collection.relations.get(field.name)
    return {
        "collection": collection.name,
        "field": field.name,
        "type": field.type,
        "nullable": field.nullable,
        "default": field.default,
        "unique": field.unique,
        "indexed": field.indexed,
        "primary_key": field.primary_key,
        "options": dict(field.options),
        "note": field.note,
        "meta": field.meta,
        "relation": describe_relation(relation) if relation is not None else None,
    }


def _shown(collection: Collection, allowed: frozenset[str] | None) -> list[Field]:
    """The fields of ``collection`` a caller allowed ``allowed`` sees (the primary key always)."""
    return [f for f in collection.fields.values()
            if allowed is None or f.name in allowed or f.name == collection.primary_key]


def describe_collection(collection: Collection, allowed: frozenset[str] | None = None) -> dict[str, Any]:
    return {
        "collection": collection.name,
        "table": collection.table.name,
        "primary_key": collection.primary_key,
        "pk_type": collection.pk_field.type,
        "adopted": collection.adopted,
        "system": collection.system,
        "note": collection.note,
        "meta": collection.meta,
        "fields": [describe_field(collection, f) for f in _shown(collection, allowed)],
    }


class SchemaService:
    config_keys = ()

    def __init__(self, services: Services) -> None:
        self.services = services
        self._catalog: Catalog = Catalog(Schema(version=0, collections={}), ())
        self._lock = asyncio.Lock()
        self._installed = asyncio.Condition()
        self._unsubscribe: Callable[[], None] | None = None

    @classmethod
    async def open(cls, services: Services) -> SchemaService:
        service = cls(services)
        # Listen before the first read: a change another instance commits after
        # that read then always reaches this one (and one it already read is
        # skipped by version). The other way round, a change committed between
        # the read and the subscription was lost to an instance still starting.
        service._unsubscribe = services.events.subscribe(SCHEMA, service._on_message)
        await service.reload()
        return service

    async def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    # -- the cache -----------------------------------------------------------------------
    def current(self) -> Schema:
        """The schema as of the last change this instance has seen. Cheap: call
        it on every request, and keep the result for the whole request."""
        return self._catalog.schema

    @property
    def catalog(self) -> Catalog:
        return self._catalog

    async def reload(self) -> Schema:
        """Re-read the catalog (after a change on another instance)."""
        async with self.services.db.read() as conn:
            catalog = await load(conn, self.services.system_collections)
        await self._install(catalog)
        return self.current()

    async def _install(self, catalog: Catalog) -> None:
        async with self._installed:
            if catalog.schema.version < self._catalog.schema.version:
                return  # a slower reload finished after a newer one
            changed = catalog.schema.version != self._catalog.schema.version
            self._catalog = catalog
            if changed:
                self.services.db.schema_changed()
            self._installed.notify_all()

    async def _on_message(self, message: Mapping[str, Any]) -> None:
        version = message.get("version")
        if isinstance(version, int) and version <= self.current().version:
            return  # this instance made the change, or already reloaded past it
        await self.reload()

    async def wait_for_version(self, version: int, timeout: float = 10.0) -> Schema:
        """Wait until this instance has installed schema ``version`` or later."""
        async with self._installed:
            await asyncio.wait_for(self._installed.wait_for(lambda: self.current().version >= version), timeout)
        return self.current()

    # -- reads ---------------------------------------------------------------------------
    async def usable(self, acc: Accountability) -> dict[str, frozenset[str] | None]:
        """Collection -> fields ``acc`` may use (``None``: all), for every collection
        on which it holds any permission (all of them for an admin). The schema
        endpoints show a caller nothing else (as OpenAPI and GraphQL)."""
        if acc.admin:
            return dict.fromkeys(self.current().collections)
        permissions = self.services.permissions
        if permissions is None:
            return {}
        return await permissions.usable_fields(acc)

    async def readable(self, acc: Accountability) -> set[str] | None:
        """Collections ``acc`` may use: ``None`` means all (admin)."""
        if acc.admin:
            return None
        return set(await self.usable(acc))

    async def _visible(self, acc: Accountability, name: str) -> tuple[Collection, frozenset[str] | None]:
        """A collection the caller may use, and the fields it may see there: 403
        whether or not it exists for a caller who may not use it (DESIGN §4), 404
        only for admins."""
        usable = await self.usable(acc)
        if not acc.admin and name not in usable:
            raise Forbidden()
        collection = self.current().get(name)
        if collection is None:
            if not acc.admin:
                raise Forbidden()
            raise NotFound(f"Collection {name[:80]!r} does not exist")
        return collection, usable.get(name)

    async def list_collections(self, acc: Accountability, *, system: bool = False) -> list[dict[str, Any]]:
        """The collections the caller may use, each with the fields it may use;
        system collections (``wos_*``) only when asked for."""
        usable = await self.usable(acc)
        return [describe_collection(c, usable[name]) for name, c in sorted(self.current().collections.items())
                if name in usable and (system or not c.system)]

    async def get_collection(self, acc: Accountability, name: str) -> dict[str, Any]:
        return describe_collection(*await self._visible(acc, name))

    async def list_fields(self, acc: Accountability, collection: str | None = None, *,
                          system: bool = False) -> list[dict[str, Any]]:
        if collection is not None:
            c, allowed = await self._visible(acc, collection)
            return [describe_field(c, f) for f in _shown(c, allowed)]
        usable = await self.usable(acc)
        return [describe_field(c, f) for name, c in sorted(self.current().collections.items())
                if name in usable and (system or not c.system) for f in _shown(c, usable[name])]

    async def get_field(self, acc: Accountability, collection: str, field: str) -> dict[str, Any]:
        c, allowed = await self._visible(acc, collection)
        if field not in c.fields:
            raise NotFound(f"Field {collection}.{field[:80]} does not exist")
        if field not in {f.name for f in _shown(c, allowed)}:
            raise Forbidden()
        return describe_field(c, c.fields[field])

    async def list_relations(self, acc: Accountability, collection: str | None = None) -> list[dict[str, Any]]:
        usable = await self.usable(acc)
        if collection is not None:
            await self._visible(acc, collection)
        out = []
        for name, c in sorted(self.current().collections.items()):
            if collection is not None and name != collection:
                continue
            for relation in c.relations.values():
                if self._relation_visible(relation, c, usable):
                    out.append(describe_relation(relation))
        return out

    @staticmethod
    def _relation_visible(relation: Relation, c: Collection, usable: Mapping[str, frozenset[str] | None]) -> bool:
        seen = {relation.collection, relation.related, relation.junction} - {None}
        return seen <= set(usable) and relation.field in {f.name for f in _shown(c, usable[c.name])}

    async def get_relation(self, acc: Accountability, collection: str, field: str) -> dict[str, Any]:
        c, _ = await self._visible(acc, collection)
        relation = c.relations.get(field)
        if relation is None:
            raise NotFound(f"Field {collection}.{field[:80]} holds no relation")
        if not self._relation_visible(relation, c, await self.usable(acc)):
            raise Forbidden()
        return describe_relation(relation)

    # -- writes --------------------------------------------------------------------------
    async def change(self, acc: Accountability, work: Callable[[Changes], Awaitable[T]], *, action: str,
                     collection: str | None = None, meta: Mapping[str, Any] | None = None) -> T:
        """Run ``work`` in one schema transaction (admin only) and install the
        result; the building block of every write, and of snapshot apply and
        import (which run many operations in one call)."""
        if not acc.admin:
            raise Forbidden()
        async with self._lock:
            async with self.services.db.schema_transaction() as conn:
                changes = await Changes.begin(conn, self.services.system_collections)
                result = await work(changes)
                version = await bump_version(conn)
                await activity.record(conn, action=f"schema.{action}", accountability=acc,
                                      collection=collection, meta=meta)
                catalog = await load(conn, self.services.system_collections)
            await self._install(catalog)
        message: dict[str, Any] = {"version": version}
        if changes.renamed:
            message["renamed"] = changes.renamed
        if changes.dropped:
            message["dropped"] = changes.dropped
        await self.services.events.publish(SCHEMA, message)
        log.info("schema %s (%s) -> version %s", action, collection or "-", version)
        return result

    async def create_collection(self, acc: Accountability, data: Any) -> dict[str, Any]:
        """``{collection, fields: [{field, type, ...}], pk_type?, note?, meta?}``;
        with ``table`` (or ``adopt: true``) an existing table is adopted instead."""
        name = data.get("collection") if isinstance(data, Mapping) else None
        action = "adopt_table" if isinstance(data, Mapping) and (data.get("table") or data.get("adopt")) \
            else "create_collection"
        created = await self.change(acc, lambda c: c.create_collection(data), action=action,
                                    collection=name if isinstance(name, str) else None)
        return describe_collection(self.current().collections[created])

    async def adopt_table(self, acc: Accountability, table: str, collection: str | None = None, *,
                          note: str | None = None, meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Register the existing ``table`` as ``collection`` (default: the table
        name) without DDL."""
        data = {"table": table, "collection": collection, "note": note, "meta": meta}
        return await self.create_collection(acc, {k: v for k, v in data.items() if v is not None})

    async def update_collection(self, acc: Accountability, name: str, data: Any) -> dict[str, Any]:
        """``{collection?: new name, note?, meta?}``. A rename moves the table
        (``c_<new>``), the API path and the collection's permissions."""
        new = await self.change(acc, lambda c: c.update_collection(name, data), action="update_collection",
                                collection=name)
        return describe_collection(self.current().collections[new])

    async def delete_collection(self, acc: Accountability, name: str) -> None:
        """Drop the table (adopted tables are kept: only the registration goes)
        with its fields, relations and permissions."""
        await self.change(acc, lambda c: c.delete_collection(name), action="delete_collection", collection=name)

    async def create_field(self, acc: Accountability, collection: str, data: Any) -> dict[str, Any]:
        name = await self.change(acc, lambda c: c.create_field(collection, data), action="create_field",
                                 collection=collection)
        c = self.current().collections[collection]
        return describe_field(c, c.fields[name])

    async def update_field(self, acc: Accountability, collection: str, field: str, data: Any) -> dict[str, Any]:
        name = await self.change(acc, lambda c: c.update_field(collection, field, data), action="update_field",
                                 collection=collection, meta={"field": field})
        c = self.current().collections[collection]
        return describe_field(c, c.fields[name])

    async def delete_field(self, acc: Accountability, collection: str, field: str) -> None:
        await self.change(acc, lambda c: c.delete_field(collection, field), action="delete_field",
                          collection=collection, meta={"field": field})

    async def create_relation(self, acc: Accountability, data: Any) -> dict[str, Any]:
        """m2o ``{collection, field, related_collection, one_field?, on_delete?}``
        (creates the field if absent), o2m ``{kind: "o2m", collection, field,
        related_collection, related_field}``, m2m ``{kind: "m2m", collection,
        field, related_collection, one_field?, junction_collection?, on_delete?}``.
        Returns the relation seen from ``collection.field``."""
        collection, field = await self.change(acc, lambda c: c.create_relation(data), action="create_relation",
                                              collection=data.get("collection") if isinstance(data, Mapping)
                                              and isinstance(data.get("collection"), str) else None)
        return describe_relation(self.current().collections[collection].relations[field])

    async def update_relation(self, acc: Accountability, collection: str, field: str, data: Any) -> dict[str, Any]:
        await self.change(acc, lambda c: c.update_relation(collection, field, data), action="update_relation",
                          collection=collection, meta={"field": field})
        return describe_relation(self.current().collections[collection].relations[field])

    async def delete_relation(self, acc: Accountability, collection: str, field: str) -> None:
        await self.change(acc, lambda c: c.delete_relation(collection, field), action="delete_relation",
                          collection=collection, meta={"field": field})

    # -- snapshots -----------------------------------------------------------------------
    async def snapshot(self, acc: Accountability, include: Iterable[str] = ()) -> dict[str, Any]:
        """The portable schema document (see :mod:`workeros.schema.snapshot`);
        ``include`` names optional sections to add (``access``)."""
        from workeros.schema import snapshot

        if not acc.admin:
            raise Forbidden()
        async with self.services.db.read() as conn:
            return await snapshot.take(conn, self.current(), self._catalog, self.services, include)

    async def diff(self, acc: Accountability, document: Any) -> list[dict[str, Any]]:
        """The operations :meth:`apply_snapshot` would run, in order."""
        from workeros.schema import snapshot

        if not acc.admin:
            raise Forbidden()
        wanted = snapshot.parse(document, self.services)
        async with self.services.db.read() as conn:
            return await snapshot.plan(conn, Catalog(self.current(), self._catalog.relations), wanted,
                                       self.services)

    async def apply_snapshot(self, acc: Accountability, document: Any) -> list[dict[str, Any]]:
        """Make this instance's schema equal to ``document``, all or nothing.
        Returns the operations run (none if it already was)."""
        from workeros.schema import snapshot

        if not acc.admin:
            raise Forbidden()
        wanted = snapshot.parse(document, self.services)

        async def work(changes: Changes) -> list[dict[str, Any]]:
            return await snapshot.apply(changes, wanted, self.services)

        return await self.change(acc, work, action="apply_snapshot")
