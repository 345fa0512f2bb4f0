"""The schema catalog: the ``wos_collections``, ``wos_fields`` and
``wos_relations`` rows, read into the immutable :class:`workeros.schema.model.Schema`
that every service uses.

Relations are stored as Directus stores them: one row per foreign key
(``many_collection.many_field`` holds a key of ``one_collection``), with
``one_field`` naming the reverse alias on the one side and, for the two halves of
a many-to-many junction, ``junction_field`` naming the sibling foreign key. The
model's per-collection :class:`~workeros.schema.model.Relation` entries (m2o, o2m, m2m)
are derived from those rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from workeros.db.tables.schema import collections as t_collections
from workeros.db.tables.schema import fields as t_fields
from workeros.db.tables.schema import relations as t_relations
from workeros.db.tables.schema import settings as t_settings
from workeros.schema.field_types import TYPES, UTCDateTime, UUIDString
from workeros.schema.model import Collection, Field, Relation, Schema

if TYPE_CHECKING:
    from workeros.hookspecs.data import SystemCollection

VERSION_KEY = "schema_version"


@dataclass(frozen=True)
class RelationRow:
    """One ``wos_relations`` row: ``many_collection.many_field`` is a foreign key
    to ``one_collection``'s primary key."""

    many_collection: str
    many_field: str
    one_collection: str
    one_field: str | None = None
    junction_field: str | None = None
    on_delete: str = "set null"
    meta: Mapping[str, Any] | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.many_collection, self.many_field)


@dataclass(frozen=True)
class Catalog:
    """The schema plus the relation rows it was derived from."""

    schema: Schema
    relations: tuple[RelationRow, ...]

    def relation_row(self, collection: str, field: str) -> RelationRow | None:
        for row in self.relations:
            if row.many_collection == collection and row.many_field == field:
                return row
        return None

    def rows_touching(self, collection: str) -> list[RelationRow]:
        return [r for r in self.relations if collection in (r.many_collection, r.one_collection)]

    def alias_owner(self, collection: str, field: str) -> RelationRow | None:
        """The relation row whose reverse alias is ``collection.field``."""
        for row in self.relations:
            if row.one_collection == collection and row.one_field == field:
                return row
        return None


class NaiveUTCDateTime(UTCDateTime):
    """A ``timestamp without time zone`` column of an adopted table: values are
    written as naive UTC and read back aware, like every other datetime."""

    impl = sa.DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: sa.Dialect) -> Any:
        value = super().process_bind_param(value, dialect)
        return value.replace(tzinfo=None) if value is not None and value.tzinfo else value


def column_type(field: Field) -> sa.types.TypeEngine:
    """The SQLAlchemy type of a field's column."""
    if field.type == "datetime" and field.options.get("timezone") is False:
        return NaiveUTCDateTime()
    return TYPES[field.type].sql(field.options)


def pk_column(field: Field, *, autoincrement: bool) -> sa.Column:
    type_: sa.types.TypeEngine = UUIDString() if field.type == "uuid" else column_type(field)
    return sa.Column(field.name, type_, primary_key=True, autoincrement=autoincrement)


def _field_from_row(row: Mapping[str, Any], primary_key: str) -> Field:
    return Field(
        name=row["field"],
        type="alias" if row["alias"] else row["type"],
        nullable=bool(row["nullable"]),
        default=row["default"],
        unique=bool(row["unique"]),
        indexed=bool(row["indexed"]),
        primary_key=row["field"] == primary_key,
        options=dict(row["options"] or {}),
        note=row["note"],
        meta=row["meta"],
    )


def build_schema(
    version: int,
    collection_rows: Iterable[Mapping[str, Any]],
    field_rows: Iterable[Mapping[str, Any]],
    relation_rows: Iterable[RelationRow],
    system: Sequence[SystemCollection] = (),
) -> Catalog:
    """Build the immutable schema from catalog rows and the system collections
    plugins describe (no database access)."""
    metadata = sa.MetaData()
    collection_rows = sorted(collection_rows, key=lambda r: r["collection"])
    by_collection: dict[str, list[Mapping[str, Any]]] = {}
    for row in sorted(field_rows, key=lambda r: (r["collection"], r["sort"] if r["sort"] is not None else 0, r["id"])):
        by_collection.setdefault(row["collection"], []).append(row)
    relation_rows = tuple(sorted(relation_rows, key=lambda r: r.key))
    info: dict[str, Mapping[str, Any]] = {r["collection"]: r for r in collection_rows}
    fields_of: dict[str, dict[str, Field]] = {}
    for name, crow in info.items():
        pk = crow["primary_key"]
        fields_of[name] = {f.name: f for f in (_field_from_row(r, pk) for r in by_collection.get(name, []))}
    system_rows: list[RelationRow] = []
    for sc in system:
        pk = next((f.name for f in sc.fields if f.primary_key), "id")
        info[sc.name] = {"collection": sc.name, "table_name": sc.table_name, "primary_key": pk, "adopted": False,
                         "note": sc.note, "meta": None, "system": True, "items_api": sc.items_api}
        fields_of[sc.name] = {f.name: f for f in sc.fields}
        system_rows += [RelationRow(many_collection=sc.name, many_field=r.field, one_collection=r.related,
                                    on_delete=r.on_delete) for r in sc.relations]
    all_rows = relation_rows + tuple(sorted(system_rows, key=lambda r: r.key))
    fks = {r.key: r for r in all_rows}

    relations: dict[str, dict[str, Relation]] = {name: {} for name in info}
    for row in all_rows:
        one_pk = info[row.one_collection]["primary_key"] if row.one_collection in info else "id"
        relations.setdefault(row.many_collection, {})[row.many_field] = Relation(
            kind="m2o", collection=row.many_collection, field=row.many_field, related=row.one_collection,
            related_field=one_pk, on_delete=row.on_delete,  # type: ignore[arg-type]
        )
        if not row.one_field:
            continue
        sibling = fks.get((row.many_collection, row.junction_field)) if row.junction_field else None
        if sibling is not None:
            relations.setdefault(row.one_collection, {})[row.one_field] = Relation(
                kind="m2m", collection=row.one_collection, field=row.one_field, related=sibling.one_collection,
                junction=row.many_collection, junction_field=row.many_field,
                junction_related_field=sibling.many_field, on_delete=row.on_delete,  # type: ignore[arg-type]
            )
        else:
            relations.setdefault(row.one_collection, {})[row.one_field] = Relation(
                kind="o2m", collection=row.one_collection, field=row.one_field, related=row.many_collection,
                related_field=row.many_field, on_delete=row.on_delete,  # type: ignore[arg-type]
            )

    collections: dict[str, Collection] = {}
    for name, crow in info.items():
        pk = crow["primary_key"]
        fields = fields_of[name]
        columns: list[sa.Column] = []
        for field in fields.values():
            if field.alias:
                continue
            if field.primary_key:
                columns.append(pk_column(field, autoincrement=field.type in ("integer", "bigint")))
                continue
            args: list[Any] = []
            fk = fks.get((name, field.name))
            if fk is not None and fk.one_collection in info:
                target = info[fk.one_collection]
                args.append(sa.ForeignKey(f"{target['table_name']}.{target['primary_key']}",
                                          ondelete=fk.on_delete.upper()))
            columns.append(sa.Column(field.name, column_type(field), *args, nullable=field.nullable))
        table = sa.Table(crow["table_name"], metadata, *columns)
        collections[name] = Collection(
            name=name, table=table, fields=fields, relations=relations.get(name, {}), primary_key=pk,
            adopted=bool(crow["adopted"]), note=crow["note"], meta=crow["meta"],
            system=bool(crow.get("system")), items_api=bool(crow.get("items_api", True)),
        )
    return Catalog(Schema(version=version, collections=collections, metadata=metadata), relation_rows)


async def read_version(conn: AsyncConnection) -> int:
    value = (await conn.execute(sa.select(t_settings.c.value).where(t_settings.c.key == VERSION_KEY))).scalar()
    return int(value or 0)


async def bump_version(conn: AsyncConnection) -> int:
    """Increment the schema version inside the caller's transaction."""
    version = await read_version(conn) + 1
    now = dt.datetime.now(dt.UTC)
    updated = await conn.execute(
        t_settings.update().where(t_settings.c.key == VERSION_KEY).values(value=version, updated_at=now)
    )
    if updated.rowcount == 0:
        await conn.execute(t_settings.insert().values(key=VERSION_KEY, value=version, updated_at=now))
    return version


async def load(conn: AsyncConnection, system: Sequence[SystemCollection] = ()) -> Catalog:
    """Read the whole catalog (three small queries) and build the schema, with
    the system collections ``system`` merged in."""
    version = await read_version(conn)
    collection_rows = (await conn.execute(sa.select(t_collections))).mappings().all()
    field_rows = (await conn.execute(sa.select(t_fields))).mappings().all()
    relation_rows = [
        RelationRow(
            many_collection=r["many_collection"], many_field=r["many_field"], one_collection=r["one_collection"],
            one_field=r["one_field"], junction_field=r["junction_field"], on_delete=r["on_delete"], meta=r["meta"],
        )
        for r in (await conn.execute(sa.select(t_relations))).mappings().all()
    ]
    return build_schema(version, collection_rows, field_rows, relation_rows, system)
