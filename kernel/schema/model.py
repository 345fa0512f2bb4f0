"""The in-memory schema: what every service and transport reads to know which
collections, fields and relations exist. Immutable; the schema service builds a
new :class:`Schema` (with a higher ``version``) after every change.

A collection's physical table is an ``sa.Table`` on the schema's own
``MetaData``, so SQL built from it quotes every identifier through SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa

RelationKind = Literal["m2o", "o2m", "m2m"]
OnDelete = Literal["set null", "cascade", "restrict"]


@dataclass(frozen=True)
class Field:
    """A field of a collection.

    ``type`` is a name from :data:`workeros.schema.field_types.TYPES`, or ``"alias"`` for a
    field with no column (the o2m and m2m sides of relations). ``options`` holds
    type parameters (``length``, ``precision``, ``scale``, ``dimensions``).
    """

    name: str
    type: str
    nullable: bool = True
    default: Any = None
    unique: bool = False
    indexed: bool = False
    primary_key: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)
    note: str | None = None
    meta: Mapping[str, Any] | None = None

    @property
    def alias(self) -> bool:
        return self.type == "alias"


@dataclass(frozen=True)
class Relation:
    """A relational field of ``collection``, seen from that collection.

    ``m2o``: the column ``field`` of ``collection`` holds a key of ``related``.
    ``o2m``: the alias ``field`` lists rows of ``related`` whose column
    ``related_field`` holds this row's key.
    ``m2m``: the alias ``field`` lists rows of ``related`` linked through rows of
    ``junction``, whose column ``junction_field`` points here and
    ``junction_related_field`` points there.
    """

    kind: RelationKind
    collection: str
    field: str
    related: str
    related_field: str | None = None
    junction: str | None = None
    junction_field: str | None = None
    junction_related_field: str | None = None
    on_delete: OnDelete = "set null"


@dataclass(frozen=True)
class Collection:
    name: str
    table: sa.Table
    fields: Mapping[str, Field]
    relations: Mapping[str, Relation] = field(default_factory=dict)
    primary_key: str = "id"
    adopted: bool = False
    note: str | None = None
    meta: Mapping[str, Any] | None = None
    #: A ``wos_*`` table a plugin or the kernel owns (see
    #: :class:`workeros.hookspecs.data.SystemCollection`): never altered by the
    #: schema service, never in snapshots or exports.
    system: bool = False
    #: Whether the generic items API (REST ``/api/items``, GraphQL mutations) may
    #: write it; reads follow the permissions either way.
    items_api: bool = True

    @property
    def pk_field(self) -> Field:
        return self.fields[self.primary_key]

    @property
    def pk_column(self) -> sa.Column:
        return self.table.c[self.primary_key]

    def column(self, name: str) -> sa.Column:
        return self.table.c[name]

    def scalar_fields(self) -> list[Field]:
        """Fields with a column, in declaration order."""
        return [f for f in self.fields.values() if not f.alias]


@dataclass(frozen=True)
class Schema:
    version: int
    collections: Mapping[str, Collection]
    metadata: sa.MetaData = field(default_factory=sa.MetaData, compare=False)

    def get(self, name: str) -> Collection | None:
        return self.collections.get(name)

    def __contains__(self, name: str) -> bool:
        return name in self.collections


EMPTY_SCHEMA = Schema(version=0, collections={})
