"""Schema operations inside one schema transaction: validate a payload against
the catalog as it is *now* (read under the lock, not from a cache), run the DDL,
write the catalog rows. :class:`Changes` is used by the schema service for single
operations and by snapshot apply and import for many, all-or-nothing.

Errors: 400 ``INVALID_PAYLOAD`` for a bad payload, 404 for a collection or field
named in the path that does not exist, 409 ``CONFLICT`` when the name is taken or
the existing data prevents the change (duplicates for a unique field, NULLs for a
required one, values without a related row for a relation).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from workeros.clock import now
from workeros.db.tables.access import permissions as t_permissions
from workeros.db.tables.schema import collections as t_collections
from workeros.db.tables.schema import fields as t_fields
from workeros.db.tables.schema import relations as t_relations
from workeros.errors import Conflict, InvalidPayload, NotFound, WorkerosError
from workeros.schema import ddl, identifiers
from workeros.schema.catalog import Catalog, RelationRow, load
from workeros.schema.field_types import TYPES, CoercionError, coerce
from workeros.schema.model import Collection, Field, Schema
from workeros.serialize import jsonable

if TYPE_CHECKING:
    from workeros.hookspecs.data import SystemCollection

log = logging.getLogger("workeros.schema")

ON_DELETE = ("set null", "cascade", "restrict")
PK_TYPES = ("integer", "uuid")
#: Decimals are REAL on SQLite (the driver's choice): 15 significant digits is
#: what a double holds exactly, so values round-trip and compare identically.
MAX_DECIMAL_PRECISION = 15
MAX_STRING_LENGTH = 65535
FIELD_KEYS = frozenset({"field", "type", "nullable", "default", "unique", "indexed", "options", "note", "meta"})
COLLECTION_KEYS = frozenset({"collection", "fields", "pk_type", "note", "meta", "table", "adopt"})
RELATION_KEYS = frozenset({"kind", "collection", "field", "related_collection", "related_field", "one_field",
                           "on_delete", "junction_collection", "meta"})
#: Type changes allowed on a column with data: each converts without loss of
#: meaning on both dialects (values that do not fit are refused, not mangled).
COMPATIBLE = ({"string", "text"}, {"integer", "bigint", "float", "decimal"})
_PARAM_TYPE = re.compile(r"^([a-z]+)\((\d+)\)$")




# -- payload parsing ---------------------------------------------------------------------

def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidPayload(f"{what} must be a JSON object")
    return dict(value)


def _unknown_keys(data: Mapping[str, Any], allowed: frozenset[str], what: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise InvalidPayload(f"unknown {'property' if len(unknown) == 1 else 'properties'} in {what}: "
                             + ", ".join(repr(k)[:60] for k in unknown[:5]))


def _bool(data: Mapping[str, Any], key: str, default: bool, what: str) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise InvalidPayload(f"{what}: {key!r} must be true or false")
    return value


def _note(data: Mapping[str, Any], what: str, default: Any = None) -> str | None:
    value = data.get("note", default)
    if value is not None and not isinstance(value, str):
        raise InvalidPayload(f"{what}: 'note' must be a string")
    return value


def _meta(data: Mapping[str, Any], what: str, default: Any = None) -> dict[str, Any] | None:
    value = data.get("meta", default)
    if value is not None and not isinstance(value, Mapping):
        raise InvalidPayload(f"{what}: 'meta' must be a JSON object")
    return jsonable(dict(value)) if value is not None else None


#: ``options.special``: values the write path fills itself, and the field types each fits.
SPECIAL_FIELDS: dict[str, frozenset[str]] = {
    "user_created": frozenset({"string", "uuid"}), "user_updated": frozenset({"string", "uuid"}),
    "date_created": frozenset({"datetime"}), "date_updated": frozenset({"datetime"}),
}


def parse_type(value: Any, options: Any, what: str, *, adopted: bool = False) -> tuple[str, dict[str, Any]]:
    """A field type and its options, normalised (explicit defaults) so that two
    equivalent definitions compare equal in snapshots. Fields of adopted tables
    describe columns that already exist: wider decimals and timestamps without
    time zone are accepted there. ``options.special`` (any type it fits) marks a
    field the write path fills: see :data:`SPECIAL_FIELDS`."""
    special = None
    if isinstance(options, Mapping) and "special" in options:  # "special": null unmarks
        options = dict(options)
        special = options.pop("special")
    type_, opts = _parse_type(value, options, what, adopted=adopted)
    if special is not None:
        if not isinstance(special, str) or special not in SPECIAL_FIELDS:
            raise InvalidPayload(f"{what}: options.special must be one of {', '.join(SPECIAL_FIELDS)}")
        if type_ not in SPECIAL_FIELDS[special]:
            raise InvalidPayload(f"{what}: a {special} field must be of type "
                                 f"{' or '.join(sorted(SPECIAL_FIELDS[special]))}")
        opts = {**opts, "special": special}
    return type_, opts


def _column_options(field: Field) -> dict[str, Any]:
    """The options that shape the column (``special`` only tells the write path)."""
    return {k: v for k, v in field.options.items() if k != "special"}


def _parse_type(value: Any, options: Any, what: str, *, adopted: bool = False) -> tuple[str, dict[str, Any]]:
    if not isinstance(value, str) or not value:
        raise InvalidPayload(f"{what}: 'type' must be one of {', '.join(TYPES)}")
    opts = _object(options, f"{what}: 'options'") if options is not None else {}
    match = _PARAM_TYPE.fullmatch(value)
    if match and match.group(1) in TYPES:
        value = match.group(1)
        opts.setdefault("length" if value == "string" else "dimensions", int(match.group(2)))
    if value == "alias":
        raise InvalidPayload(f"{what}: alias fields are created through relations (/api/relations)")
    if value not in TYPES:
        raise InvalidPayload(f"{what}: unknown type {value[:40]!r} (known: {', '.join(TYPES)})")
    if value == "string":
        _only(opts, {"length"}, what)
        length = opts.get("length", 255)
        if isinstance(length, bool) or not isinstance(length, int) or not 1 <= length <= MAX_STRING_LENGTH:
            raise InvalidPayload(f"{what}: string length must be an integer from 1 to {MAX_STRING_LENGTH}")
        return value, {"length": length}
    if value == "decimal":
        _only(opts, {"precision", "scale"}, what)
        precision, scale = opts.get("precision", 10), opts.get("scale", 5)
        for name, number in (("precision", precision), ("scale", scale)):
            if isinstance(number, bool) or not isinstance(number, int):
                raise InvalidPayload(f"{what}: decimal {name} must be an integer")
        if not 1 <= precision <= (1000 if adopted else MAX_DECIMAL_PRECISION):
            raise InvalidPayload(f"{what}: decimal precision must be from 1 to {MAX_DECIMAL_PRECISION}")
        if not 0 <= scale <= precision:
            raise InvalidPayload(f"{what}: decimal scale must be from 0 to the precision ({precision})")
        return value, {"precision": precision, "scale": scale}
    if value == "datetime" and adopted and opts.get("timezone") is False:
        _only(opts, {"timezone"}, what)
        return value, {"timezone": False}
    if value in _CORE_TYPES:
        _only(opts, set(), what)
        return value, {}
    # A type registered by a plugin (file, vector) validates its own options.
    check = TYPES[value].options
    if check is not None:
        try:
            opts = dict(check(opts))
        except CoercionError as exc:
            raise InvalidPayload(f"{what}: {exc}") from None
    return value, jsonable(opts)


_CORE_TYPES = frozenset({"text", "integer", "bigint", "float", "boolean", "json", "uuid", "datetime", "date", "time"})


def _only(opts: Mapping[str, Any], allowed: set[str], what: str) -> None:
    extra = sorted(set(opts) - allowed)
    if extra:
        raise InvalidPayload(f"{what}: unknown option(s) {', '.join(repr(k)[:40] for k in extra)}")


def parse_default(type_: str, options: Mapping[str, Any], value: Any, what: str) -> Any:
    """The default as stored in the catalog: the JSON form of the coerced value."""
    if value is None:
        return None
    try:
        return jsonable(coerce(type_, value, options))
    except CoercionError as exc:
        raise InvalidPayload(f"{what}: default does not fit type {type_}: {exc}") from None


def default_value(field: Field) -> Any:
    """The Python value of a field's default (for filling existing rows)."""
    return None if field.default is None else coerce(field.type, field.default, field.options)


def _lift_options(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """A plugin type's options may also be sent beside ``type`` (``{"type":
    "vector", "dimensions": 384}``, as the contract writes them); they are
    moved into ``options``."""
    kind = TYPES.get(data["type"]) if isinstance(data.get("type"), str) else None
    lifted = [k for k in (kind.option_keys if kind is not None else ()) if k in data]
    if not lifted:
        return data
    out = dict(data)
    options = dict(_object(out.get("options") or {}, "field: 'options'"))
    for key in lifted:
        options.setdefault(key, out.pop(key))
    out["options"] = options
    return out


def field_from_payload(data: Any, collection: str, *, adopted: bool = False) -> Field:
    data = _lift_options(_object(data, "field"))
    _unknown_keys(data, FIELD_KEYS, "field")
    name = (identifiers.adopted_field_name if adopted else identifiers.field_name)(data.get("field"))
    what = f"field {collection}.{name}"
    type_, options = parse_type(data.get("type"), data.get("options"), what, adopted=adopted)
    return Field(
        name=name, type=type_, options=options,
        nullable=_bool(data, "nullable", True, what),
        default=parse_default(type_, options, data.get("default"), what),
        unique=_bool(data, "unique", False, what),
        indexed=_bool(data, "indexed", False, what),
        note=_note(data, what), meta=_meta(data, what),
    )


def _references(field: Field, target: Collection) -> bool:
    """Whether ``field``'s type is one that references ``target`` (a ``file``
    field holds a key of ``wos_files``)."""
    kind = TYPES.get(field.type)
    return kind is not None and kind.references == target.name


def _on_delete(value: Any, default: str) -> str:
    value = default if value is None else value
    if value not in ON_DELETE:
        raise InvalidPayload(f"on_delete must be one of: {', '.join(ON_DELETE)}")
    return value


# -- the operations ----------------------------------------------------------------------

class Changes:
    """Schema operations on one connection inside a schema transaction. After
    each operation :attr:`catalog` is re-read, so the next one validates against
    the result."""

    def __init__(self, conn: AsyncConnection, catalog: Catalog,
                 system: Sequence[SystemCollection] = ()) -> None:
        self.conn = conn
        self.catalog = catalog
        self.system = tuple(system)
        #: (collection, old name, new name) renames and dropped collections, for
        #: listeners that key data by collection name.
        self.renamed: dict[str, str] = {}
        self.dropped: list[str] = []

    @classmethod
    async def begin(cls, conn: AsyncConnection, system: Sequence[SystemCollection] = ()) -> Changes:
        return cls(conn, await load(conn, system), system)

    @property
    def schema(self) -> Schema:
        return self.catalog.schema

    async def refresh(self) -> None:
        self.catalog = await load(self.conn, self.system)

    # -- helpers -------------------------------------------------------------------------
    def collection(self, name: Any, *, in_payload: bool = False, what: str = "collection",
                   system_ok: bool = False) -> Collection:
        """A collection by name; a system collection only where ``system_ok``
        (the target of a relation), since the schema service never alters one."""
        found = self.schema.get(name) if isinstance(name, str) else None
        if found is None:
            shown = repr(name)[:80]
            if in_payload:
                raise InvalidPayload(f"{what} {shown} does not exist")
            raise NotFound(f"Collection {shown} does not exist")
        if found.system and not system_ok:
            raise InvalidPayload(f"{found.name!r} is a system collection: its plugin manages its fields")
        return found

    def field(self, collection: Collection, name: Any) -> Field:
        found = collection.fields.get(name) if isinstance(name, str) else None
        if found is None:
            raise NotFound(f"Field {collection.name}.{str(name)[:80]} does not exist")
        return found

    async def ddl(self, fn: Callable[..., Any], *args: Any, on_integrity: WorkerosError | None = None,
                  **kwargs: Any) -> Any:
        """Run a :mod:`workeros.schema.ddl` function; a constraint or data error caused by
        existing rows becomes ``on_integrity`` (never SQL in a response)."""
        try:
            return await self.conn.run_sync(lambda sync: fn(sync, *args, **kwargs))
        except sa.exc.DBAPIError as exc:
            state = _sqlstate(exc) or ""
            if state == "2BP01":
                raise Conflict("Other database objects outside the schema depend on this table") from None
            # asyncpg's errors reach SQLAlchemy as plain DBAPIError: the SQLSTATE
            # class (22 data exception, 23 integrity violation) tells them apart.
            data_error = isinstance(exc, (sa.exc.IntegrityError, sa.exc.DataError)) or state[:2] in ("22", "23")
            if on_integrity is None or not data_error:
                raise
            log.info("schema change refused by the database: %s", exc.orig)
            raise on_integrity from None

    async def check_foreign_keys(self, error: WorkerosError) -> None:
        if await self.conn.run_sync(ddl.foreign_key_violations):
            raise error

    async def _next_sort(self, collection: str) -> int:
        current = (await self.conn.execute(
            sa.select(sa.func.max(t_fields.c.sort)).where(t_fields.c.collection == collection))).scalar()
        return (current or 0) + 1

    async def _insert_field_row(self, collection: str, field: Field, *, alias: bool = False) -> None:
        await self.conn.execute(t_fields.insert().values(
            collection=collection, field=field.name, type="alias" if alias else field.type,
            options=dict(field.options) or None, nullable=field.nullable, default=field.default,
            unique=field.unique, indexed=field.indexed, alias=alias, sort=await self._next_sort(collection),
            note=field.note, meta=dict(field.meta) if field.meta is not None else None,
        ))

    async def _update_field_row(self, collection: str, name: str, **values: Any) -> None:
        await self.conn.execute(
            t_fields.update().where(t_fields.c.collection == collection, t_fields.c.field == name).values(**values))

    async def _delete_field_row(self, collection: str, name: str) -> None:
        await self.conn.execute(
            t_fields.delete().where(t_fields.c.collection == collection, t_fields.c.field == name))

    async def _update_relation_row(self, many_collection: str, many_field: str, **values: Any) -> None:
        await self.conn.execute(t_relations.update().where(
            t_relations.c.many_collection == many_collection, t_relations.c.many_field == many_field).values(**values))

    def _alias(self, name: str | None, note: str | None = None, meta: Any = None) -> Field:
        return Field(name=name or "", type="alias", note=note, meta=meta)

    # -- collections ---------------------------------------------------------------------
    async def create_collection(self, data: Any) -> str:
        data = _object(data, "collection")
        _unknown_keys(data, COLLECTION_KEYS, "collection")
        if data.get("table") is not None or data.get("adopt"):
            return await self.adopt_table(data)
        name = identifiers.collection_name(data.get("collection"))
        fields_data = data.get("fields", [])
        if not isinstance(fields_data, list):
            raise InvalidPayload("collection: 'fields' must be a list")
        pk_type = data.get("pk_type")
        fields: list[Field] = []
        for item in fields_data:
            if isinstance(item, Mapping) and item.get("field") == "id":
                pk_type = _pk_type_of(item, pk_type)
                continue
            fields.append(field_from_payload(item, name))
        pk = Field(name="id", type=_pk_type(pk_type), nullable=False, primary_key=True)
        await self.register_collection(name, pk, fields, note=_note(data, name), meta=_meta(data, name))
        await self._reference(name, fields)
        return name

    async def register_collection(self, name: str, pk: Field, fields: list[Field], *, note: str | None,
                                  meta: Any, table: str | None = None, adopted: bool = False,
                                  create: bool = True) -> None:
        """Create (or, with ``create=False``, only record) a collection's table."""
        if name in self.schema:
            raise Conflict(f"Collection {name!r} already exists")
        seen: set[str] = {pk.name}
        for field in fields:
            if field.name in seen:
                raise InvalidPayload(f"collection {name}: field {field.name!r} is given twice")
            seen.add(field.name)
        table = table or identifiers.table_name(name)
        if table in {c.table.name for c in self.schema.collections.values()}:
            raise Conflict(f"Table {table!r} already belongs to another collection")
        exists = await self.ddl(ddl.has_table, table)
        if create and exists:
            raise InvalidPayload(f"collection {name!r}: a table named {table!r} already exists in the database; "
                                 "adopt it instead")
        if create:
            await self.ddl(ddl.create_table, table, pk, [f for f in fields if not f.alias])
        stamp = now()
        await self.conn.execute(t_collections.insert().values(
            collection=name, table_name=table, primary_key=pk.name, pk_type=pk.type, adopted=adopted,
            note=note, meta=meta, created_at=stamp, updated_at=stamp,
        ))
        await self._insert_field_row(name, replace(pk, nullable=False, default=None, unique=False, indexed=False))
        for field in fields:
            await self._insert_field_row(name, field, alias=field.alias)
        await self.refresh()

    async def update_collection(self, name: str, data: Any) -> str:
        collection = self.collection(name)
        data = _object(data, "collection")
        _unknown_keys(data, frozenset({"collection", "note", "meta"}), "collection")
        values: dict[str, Any] = {}
        if "note" in data:
            values["note"] = _note(data, name)
        if "meta" in data:
            values["meta"] = _meta(data, name)
        if values:
            await self.conn.execute(t_collections.update().where(t_collections.c.collection == name)
                                    .values(updated_at=now(), **values))
        new = data.get("collection", name)
        if new != name:
            await self._rename_collection(collection, identifiers.collection_name(new))
            name = new
        await self.refresh()
        return name

    async def _rename_collection(self, collection: Collection, new: str) -> None:
        old = collection.name
        if new in self.schema:
            raise Conflict(f"Collection {new!r} already exists")
        table = collection.table.name
        if not collection.adopted:
            table = identifiers.table_name(new)
            if await self.ddl(ddl.has_table, table):
                raise InvalidPayload(f"collection {new!r}: a table named {table!r} already exists in the database")
            await self.ddl(ddl.rename_table, collection.table.name, table)
            for field in collection.scalar_fields():
                if ddl.index_kind(field):
                    await self.ddl(ddl.set_index, table, field.name, ddl.index_kind(field), force=True)
        c = t_collections.c
        await self.conn.execute(t_collections.update().where(c.collection == old)
                                .values(collection=new, table_name=table, updated_at=now()))
        await self.conn.execute(t_fields.update().where(t_fields.c.collection == old).values(collection=new))
        r = t_relations.c
        await self.conn.execute(t_relations.update().where(r.many_collection == old).values(many_collection=new))
        await self.conn.execute(t_relations.update().where(r.one_collection == old).values(one_collection=new))
        await self.conn.execute(t_permissions.update().where(t_permissions.c.collection == old)
                                .values(collection=new))
        self.renamed[old] = new

    async def delete_collection(self, name: str) -> None:
        collection = self.collection(name)
        for row in list(self.catalog.relations):
            if row.one_collection == name and row.many_collection != name:
                await self.drop_relation_row(row.many_collection, row.many_field)
        for row in list(self.catalog.relations):
            if row.many_collection != name:
                continue
            if row.one_field and row.one_collection != name:
                await self._delete_field_row(row.one_collection, row.one_field)
            await self.conn.execute(t_relations.delete().where(
                t_relations.c.many_collection == name, t_relations.c.many_field == row.many_field))
        if not collection.adopted:
            await self.ddl(ddl.drop_table, collection.table.name)
        await self.conn.execute(t_fields.delete().where(t_fields.c.collection == name))
        await self.conn.execute(t_collections.delete().where(t_collections.c.collection == name))
        await self.conn.execute(t_permissions.delete().where(t_permissions.c.collection == name))
        self.dropped.append(name)
        await self.refresh()
        await self.check_foreign_keys(Conflict(f"Rows outside the schema still reference collection {name!r}"))

    # -- fields --------------------------------------------------------------------------
    async def create_field(self, collection_name: str, data: Any) -> str:
        collection = self.collection(collection_name)
        field = field_from_payload(data, collection.name)
        await self.add_field(collection, field)
        await self._reference(collection.name, [field])
        return field.name

    async def _reference(self, collection: str, fields: Sequence[Field]) -> None:
        """Fields of a type that references a collection (``file`` →
        ``wos_files``) are many-to-ones to it: add their relations."""
        for field in fields:
            kind = TYPES.get(field.type)
            if kind is None or kind.references is None:
                continue
            target = self.collection(kind.references, in_payload=True, what="referenced collection",
                                     system_ok=True)
            await self.add_relation_row(RelationRow(collection, field.name, target.name, None, None,
                                                    "set null" if field.nullable else "restrict"))

    async def add_field(self, collection: Collection, field: Field) -> None:
        if field.name in collection.fields:
            raise Conflict(f"Field {collection.name}.{field.name} already exists")
        table = collection.table.name
        fill = default_value(field)
        if not field.nullable and fill is None and await self.ddl(ddl.has_rows, table):
            raise Conflict(f"Field {collection.name}.{field.name} is required but the collection has rows: "
                           "give it a default")
        await self.ddl(ddl.add_column, table, field, fill=fill,
                       on_integrity=Conflict(f"Field {collection.name}.{field.name} is unique but existing rows "
                                             "would share its default"))
        await self._insert_field_row(collection.name, field)
        await self.refresh()

    async def update_field(self, collection_name: str, name: str, data: Any) -> str:
        collection = self.collection(collection_name)
        field = self.field(collection, name)
        data = _object(data, "field")
        _unknown_keys(data, FIELD_KEYS, "field")
        what = f"field {collection.name}.{name}"
        fixed = {"note", "meta", "field"} if field.alias else {"note", "meta"}
        if field.primary_key or field.alias:
            changed = sorted(k for k in data if k not in fixed and data[k] != _current(field, k))
            if changed:
                kind = "the primary key" if field.primary_key else "an alias field"
                raise InvalidPayload(f"{what} is {kind}: {', '.join(changed)} cannot change")
        values: dict[str, Any] = {}
        if "note" in data:
            values["note"] = _note(data, what)
        if "meta" in data:
            values["meta"] = _meta(data, what)
        if not field.alias and not field.primary_key:
            after = await self._alter_column(collection, field, data, what)
            values.update(type=after.type, options=dict(after.options) or None, nullable=after.nullable,
                          default=after.default, unique=after.unique, indexed=after.indexed)
        if values:
            await self._update_field_row(collection.name, name, **values)
        new = data.get("field", name)
        if new != name:
            if field.primary_key:
                raise InvalidPayload(f"{what} is the primary key: it cannot be renamed")
            await self._rename_field(collection, field, identifiers.field_name(new))
            name = new
        await self.refresh()
        return name

    async def _alter_column(self, collection: Collection, field: Field, data: Mapping[str, Any], what: str) -> Field:
        table = collection.table.name
        type_, options = field.type, dict(field.options)
        if "type" in data or "options" in data:
            new_type = data.get("type", field.type)
            # A new type starts from its own default options unless given some.
            options_in = data.get("options", field.options if new_type == field.type else None)
            if new_type == field.type and isinstance(options_in, Mapping) and "special" in options_in:
                # marking (or unmarking, with null) a special field keeps the column's own options
                options_in = {**field.options, **options_in}
            type_, options = parse_type(new_type, options_in, what, adopted=collection.adopted)
        default = data["default"] if "default" in data else field.default
        after = replace(
            field, type=type_, options=options,
            nullable=_bool(data, "nullable", field.nullable, what),
            default=parse_default(type_, options, default, what),
            unique=_bool(data, "unique", field.unique, what),
            indexed=_bool(data, "indexed", field.indexed, what),
        )
        column_changes = (after.type, _column_options(after)) != (field.type, _column_options(field))
        if column_changes:
            if self.catalog.relation_row(collection.name, field.name) is not None:
                raise InvalidPayload(f"{what} holds a relation: its type follows the related primary key")
            if after.type != field.type and not any({after.type, field.type} <= group for group in COMPATIBLE):
                raise InvalidPayload(f"{what}: cannot change type {field.type} to {after.type}; add a new field "
                                     "and copy the data instead")
        if field.nullable and not after.nullable and await self.ddl(ddl.has_rows, table, field.name):
            raise Conflict(f"{what} cannot become required: some rows have no value")
        if column_changes and not await self.ddl(ddl.values_fit, table, field, after):
            raise Conflict(f"{what}: existing values do not fit the new type")
        await self.ddl(ddl.alter_column, table, field, after,
                       on_integrity=Conflict(f"{what}: existing values do not fit the new type"))
        if ddl.index_kind(after) != ddl.index_kind(field):
            if after.unique and not field.unique and await self.ddl(ddl.has_duplicates, table, field.name):
                raise Conflict(f"{what} cannot become unique: some rows share a value")
            await self.ddl(ddl.set_index, table, field.name, ddl.index_kind(after),
                           on_integrity=Conflict(f"{what} cannot become unique: some rows share a value"))
        return after

    async def order_fields(self, collection_name: str, order: list[str]) -> None:
        """Put the fields named in ``order`` first, in that order (the rest keep
        their relative order after them)."""
        collection = self.collection(collection_name)
        names = [n for n in order if n in collection.fields]
        names += [n for n in collection.fields if n not in names]
        if names == list(collection.fields):
            return
        for position, name in enumerate(names, start=1):
            await self._update_field_row(collection.name, name, sort=position)
        await self.refresh()

    async def _rename_field(self, collection: Collection, field: Field, new: str) -> None:
        name, old = collection.name, field.name
        if new in collection.fields:
            raise Conflict(f"Field {name}.{new} already exists")
        r = t_relations.c
        if field.alias:
            await self.conn.execute(t_relations.update().where(r.one_collection == name, r.one_field == old)
                                    .values(one_field=new))
        else:
            await self.ddl(ddl.rename_column, collection.table.name, old, new, field)
            await self.conn.execute(t_relations.update().where(r.many_collection == name, r.many_field == old)
                                    .values(many_field=new))
            await self.conn.execute(t_relations.update().where(r.many_collection == name, r.junction_field == old)
                                    .values(junction_field=new))
        await self._update_field_row(name, old, field=new)

    async def delete_field(self, collection_name: str, name: str) -> None:
        collection = self.collection(collection_name)
        field = self.field(collection, name)
        if field.primary_key:
            raise InvalidPayload(f"field {collection.name}.{name} is the primary key and cannot be deleted")
        if field.alias:
            owner = self.catalog.alias_owner(collection.name, name)
            if owner is not None:
                await self._update_relation_row(owner.many_collection, owner.many_field, one_field=None)
        else:
            if self.catalog.relation_row(collection.name, name) is not None:
                await self.drop_relation_row(collection.name, name)
            await self.ddl(ddl.drop_column, collection.table.name, name)
        await self._delete_field_row(collection.name, name)
        await self.refresh()

    # -- relations -----------------------------------------------------------------------
    async def create_relation(self, data: Any) -> tuple[str, str]:
        """m2o (default), o2m or m2m; returns the (collection, field) created."""
        data = _object(data, "relation")
        _unknown_keys(data, RELATION_KEYS, "relation")
        kind = data.get("kind", "m2o")
        if kind == "m2m":
            return await self._create_m2m(data)
        if kind == "o2m":
            if data.get("one_field") is not None:
                raise InvalidPayload("relation: an o2m takes 'related_field' (the foreign key), not 'one_field'")
            alias = identifiers.field_name(data.get("field"))
            m2o = {"collection": data.get("related_collection"), "field": data.get("related_field"),
                   "related_collection": data.get("collection"), "one_field": alias,
                   "on_delete": data.get("on_delete"), "meta": data.get("meta")}
            await self._create_m2o(m2o)
            return (self.collection(data.get("collection"), in_payload=True).name, alias)
        if kind != "m2o":
            raise InvalidPayload("relation: 'kind' must be m2o, o2m or m2m")
        if data.get("related_field") is not None or data.get("junction_collection") is not None:
            raise InvalidPayload("relation: an m2o takes 'collection', 'field', 'related_collection' "
                                 "and optionally 'one_field' and 'on_delete'")
        return await self._create_m2o(data)

    async def _create_m2o(self, data: Mapping[str, Any]) -> tuple[str, str]:
        many = self.collection(data.get("collection"), in_payload=True)
        one = self.collection(data.get("related_collection"), in_payload=True, what="related_collection",
                              system_ok=True)
        name = identifiers.field_name(data.get("field"))
        on_delete = _on_delete(data.get("on_delete"), "set null")
        one_field = data.get("one_field")
        if one_field is not None:
            one_field = identifiers.field_name(one_field)
            if one_field in one.fields or (one.name == many.name and one_field == name):
                raise Conflict(f"Field {one.name}.{one_field} already exists")
        row = RelationRow(many.name, name, one.name, one_field, None, on_delete,
                          _meta(data, f"relation {many.name}.{name}"))
        await self.add_relation_row(row, create_field=True)
        return (many.name, name)

    async def add_relation_row(self, row: RelationRow, *, create_field: bool = False,
                               alias: Field | None = None) -> None:
        """A foreign key ``many.field -> one.pk`` with its catalog row and, if
        ``row.one_field``, the reverse alias on ``one``."""
        many = self.collection(row.many_collection, in_payload=True)
        one = self.collection(row.one_collection, in_payload=True, what="related_collection", system_ok=True)
        what = f"relation {many.name}.{row.many_field}"
        if one.system and row.one_field:
            raise InvalidPayload(f"{what}: {one.name!r} is a system collection; a reverse field on it cannot be "
                                 "created")
        if self.catalog.relation_row(many.name, row.many_field) is not None:
            raise Conflict(f"Field {many.name}.{row.many_field} already holds a relation")
        pk = one.pk_field
        existing = many.fields.get(row.many_field)
        if existing is None:
            if not create_field:
                raise InvalidPayload(f"{what}: field {row.many_field!r} does not exist")
            existing = Field(name=row.many_field, type=pk.type, options=pk.options, nullable=True, indexed=True)
            await self.add_field(many, existing)
            many = self.collection(many.name)
        elif existing.alias or existing.primary_key:
            raise InvalidPayload(f"{what}: field {row.many_field!r} is "
                                 f"{'an alias' if existing.alias else 'the primary key'}")
        elif (existing.type, dict(existing.options)) != (pk.type, dict(pk.options)) and not _references(existing, one):
            raise InvalidPayload(f"{what}: field {row.many_field!r} is {existing.type} but the primary key of "
                                 f"{one.name} is {pk.type}")
        if row.on_delete == "set null" and not existing.nullable:
            raise InvalidPayload(f"{what}: on_delete 'set null' needs a nullable field")
        mismatch = Conflict(f"{what}: some values of {many.name}.{row.many_field} match no row of {one.name}")
        await self.ddl(ddl.add_foreign_key, many.table.name, row.many_field, one.table.name, pk.name, row.on_delete,
                       on_integrity=mismatch)
        await self.check_foreign_keys(mismatch)
        await self.conn.execute(t_relations.insert().values(
            kind="m2m" if row.junction_field else "m2o", many_collection=row.many_collection,
            many_field=row.many_field, one_collection=row.one_collection, one_field=row.one_field,
            junction_field=row.junction_field, on_delete=row.on_delete,
            meta=dict(row.meta) if row.meta is not None else None,
        ))
        if row.one_field:
            await self._insert_field_row(one.name, alias or self._alias(row.one_field), alias=True)
        await self.refresh()

    async def _create_m2m(self, data: Mapping[str, Any]) -> tuple[str, str]:
        a = self.collection(data.get("collection"), in_payload=True)
        b = self.collection(data.get("related_collection"), in_payload=True, what="related_collection",
                            system_ok=True)
        if data.get("related_field") is not None:
            raise InvalidPayload("relation: an m2m takes 'one_field' (the alias on the related collection), "
                                 "not 'related_field'")
        alias_a = identifiers.field_name(data.get("field"))
        if alias_a in a.fields:
            raise Conflict(f"Field {a.name}.{alias_a} already exists")
        alias_b = data.get("one_field")
        if alias_b is None and a.name != b.name and a.name not in b.fields and not b.system:
            alias_b = a.name
        if alias_b is not None:
            alias_b = identifiers.field_name(alias_b)
            if alias_b in b.fields or (a.name == b.name and alias_b == alias_a):
                raise Conflict(f"Field {b.name}.{alias_b} already exists")
        b_name = b.name.removeprefix(identifiers.SYSTEM_PREFIX) if b.system else b.name
        junction = data.get("junction_collection") or f"{a.name}_{b_name}"
        junction = identifiers.collection_name(junction)
        if junction in self.schema:
            raise Conflict(f"Collection {junction!r} already exists: name the junction with "
                           "'junction_collection'")
        on_delete = _on_delete(data.get("on_delete"), "cascade")
        field_a = identifiers.field_name(f"{a.name}_id"[:identifiers.MAX_IDENTIFIER])
        field_b = identifiers.field_name((f"{b_name}_id" if a.name != b.name else f"related_{b.name}_id")
                                         [:identifiers.MAX_IDENTIFIER])
        if field_a == field_b:
            raise InvalidPayload("relation: the junction's two key fields would have the same name")
        nullable = on_delete == "set null"
        keys = [Field(name=field_a, type=a.pk_field.type, options=a.pk_field.options, nullable=nullable, indexed=True),
                Field(name=field_b, type=b.pk_field.type, options=b.pk_field.options, nullable=nullable, indexed=True)]
        pk = Field(name="id", type="integer", nullable=False, primary_key=True)
        await self.register_collection(junction, pk, keys, note=None, meta={"junction": True})
        meta = _meta(data, f"relation {a.name}.{alias_a}")
        await self.add_relation_row(RelationRow(junction, field_a, a.name, alias_a, field_b, on_delete, meta))
        await self.add_relation_row(RelationRow(junction, field_b, b.name, alias_b, field_a, on_delete, meta))
        return (a.name, alias_a)

    async def update_relation(self, collection_name: str, name: str, data: Any) -> None:
        """Change ``on_delete`` (and ``meta``) of a relation, through its m2o field
        or its alias."""
        collection = self.collection(collection_name)
        self.field(collection, name)
        data = _object(data, "relation")
        _unknown_keys(data, frozenset({"on_delete", "meta"}), "relation")
        rows = self._rows_for(collection, name)
        for row in rows:
            values: dict[str, Any] = {}
            if "meta" in data:
                values["meta"] = _meta(data, f"relation {collection.name}.{name}")
            if "on_delete" in data:
                on_delete = _on_delete(data["on_delete"], row.on_delete)
                if on_delete != row.on_delete:
                    await self.set_on_delete(row, on_delete)
            if values:
                await self._update_relation_row(row.many_collection, row.many_field, **values)
        await self.refresh()

    def _rows_for(self, collection: Collection, name: str) -> list[RelationRow]:
        relation = collection.relations.get(name)
        if relation is None:
            raise NotFound(f"Field {collection.name}.{name} holds no relation")
        if relation.kind == "m2o":
            row = self.catalog.relation_row(collection.name, name)
            return [row] if row else []
        owner = self.catalog.alias_owner(collection.name, name)
        rows = [owner] if owner else []
        if relation.kind == "m2m" and owner is not None and owner.junction_field:
            sibling = self.catalog.relation_row(owner.many_collection, owner.junction_field)
            rows += [sibling] if sibling else []
        return rows

    async def set_on_delete(self, row: RelationRow, on_delete: str) -> None:
        many = self.collection(row.many_collection)
        one = self.collection(row.one_collection, system_ok=True)
        if on_delete == "set null" and not many.fields[row.many_field].nullable:
            raise InvalidPayload(f"relation {many.name}.{row.many_field}: on_delete 'set null' needs a "
                                 "nullable field")
        await self.ddl(ddl.drop_foreign_key, many.table.name, row.many_field)
        await self.ddl(ddl.add_foreign_key, many.table.name, row.many_field, one.table.name, one.primary_key,
                       on_delete)
        await self._update_relation_row(row.many_collection, row.many_field, on_delete=on_delete)

    async def delete_relation(self, collection_name: str, name: str) -> None:
        """Remove the relation held by ``collection.name``: an m2o keeps its
        column as a plain field; an o2m alias disappears; an m2m removes its
        junction collection (the links) and both aliases."""
        collection = self.collection(collection_name)
        self.field(collection, name)
        relation = collection.relations.get(name)
        if relation is None:
            raise NotFound(f"Field {collection.name}.{name} holds no relation")
        if relation.kind == "m2o":
            await self.drop_relation_row(collection.name, name)
        elif relation.kind == "o2m":
            await self.delete_field(collection.name, name)
        else:
            await self.delete_collection(relation.junction or "")
        await self.refresh()

    async def drop_relation_row(self, many_collection: str, many_field: str) -> None:
        """Drop one foreign key with its catalog row and the aliases that need it."""
        row = self.catalog.relation_row(many_collection, many_field)
        if row is None:
            return
        many = self.collection(many_collection)
        await self.ddl(ddl.drop_foreign_key, many.table.name, many_field)
        await self.conn.execute(t_relations.delete().where(
            t_relations.c.many_collection == many_collection, t_relations.c.many_field == many_field))
        if row.one_field:
            await self._delete_field_row(row.one_collection, row.one_field)
        if row.junction_field:
            sibling = self.catalog.relation_row(many_collection, row.junction_field)
            if sibling is not None:
                if sibling.one_field:
                    await self._delete_field_row(sibling.one_collection, sibling.one_field)
                await self._update_relation_row(many_collection, sibling.many_field, one_field=None,
                                                junction_field=None)
        await self.refresh()

    # -- adoption ------------------------------------------------------------------------
    async def adopt_table(self, data: Mapping[str, Any]) -> str:
        """Register an existing table as a collection, without DDL: its columns
        are introspected, its single-column foreign keys to other collections
        become m2o relations. Columns of types workeros does not know are left
        out (listed in ``self.skipped``)."""
        table = data.get("table") if data.get("table") is not None else data.get("collection")
        if not isinstance(table, str) or not _TABLE.fullmatch(table):
            raise InvalidPayload("collection: 'table' must name an existing table (letters, digits, underscores)")
        if table.lower().startswith(identifiers.SYSTEM_PREFIX):
            raise InvalidPayload(f"table {table!r} is a system table and cannot be adopted")
        if set(data) - {"collection", "table", "adopt", "note", "meta"}:
            raise InvalidPayload("collection: adopting a table takes 'collection', 'table', 'note' and 'meta'")
        name = identifiers.collection_name(data.get("collection") or table)
        if not await self.ddl(ddl.has_table, table):
            raise InvalidPayload(f"table {table!r} does not exist")
        desc = await self.ddl(ddl.describe_table, table)
        if len(desc["primary_key"]) != 1:
            raise InvalidPayload(f"table {table!r} needs a single-column primary key to be adopted")
        pk_name = desc["primary_key"][0]
        fields: list[Field] = []
        pk: Field | None = None
        self.skipped: list[str] = []
        for column in desc["columns"]:
            mapped = _map_column(column, self.conn.dialect.name)
            if mapped is None or not identifiers.valid(column["name"]) \
                    or column["name"].startswith(identifiers.SYSTEM_PREFIX):
                if column["name"] == pk_name:
                    raise InvalidPayload(f"table {table!r}: primary key column {column['name']!r} has an "
                                         "unsupported type or name")
                self.skipped.append(column["name"])
                continue
            type_, options = mapped
            if column["name"] == pk_name:
                pk = Field(name=pk_name, type=type_, options=options, nullable=False, primary_key=True)
                continue
            fields.append(Field(name=column["name"], type=type_, options=options,
                                nullable=bool(column.get("nullable", True)),
                                unique=column["name"] in desc["unique"],
                                indexed=column["name"] in desc["indexed"]))
        assert pk is not None
        await self.register_collection(name, pk, fields, note=_note(data, name), meta=_meta(data, name),
                                       table=table, adopted=True, create=False)
        await self._adopt_foreign_keys(name)
        return name

    async def _adopt_foreign_keys(self, name: str) -> None:
        """Register foreign keys between adopted tables and collections as m2o
        relations (both directions: from the new table, and from other adopted
        tables to it)."""
        by_table = {c.table.name: c for c in self.schema.collections.values()}
        sources = [c for c in self.schema.collections.values() if c.adopted]
        for source in sources:
            for fk in await self.ddl(lambda sync, t=source.table.name: sa.inspect(sync).get_foreign_keys(t)):
                target = by_table.get(fk["referred_table"])
                columns = fk["constrained_columns"]
                if target is None or len(columns) != 1 or fk["referred_columns"] != [target.primary_key]:
                    continue
                if name not in (source.name, target.name) or columns[0] not in source.fields:
                    continue
                if self.catalog.relation_row(source.name, columns[0]) is not None:
                    continue
                ondelete = (fk.get("options") or {}).get("ondelete", "") or ""
                on_delete = {"CASCADE": "cascade", "SET NULL": "set null"}.get(ondelete.upper(), "restrict")
                await self.conn.execute(t_relations.insert().values(
                    kind="m2o", many_collection=source.name, many_field=columns[0], one_collection=target.name,
                    on_delete=on_delete))
        await self.refresh()


_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def _map_column(column: Mapping[str, Any], dialect: str) -> tuple[str, dict[str, Any]] | None:
    """An introspected column's field type, or None if workeros has none for it."""
    t = column["type"]
    if isinstance(t, sa.Boolean):
        return "boolean", {}
    if isinstance(t, sa.BigInteger):
        return "bigint", {}
    if isinstance(t, sa.Integer):
        return "integer", {}
    if isinstance(t, sa.Float):
        return "float", {}
    if isinstance(t, sa.Numeric):
        return "decimal", {"precision": t.precision or MAX_DECIMAL_PRECISION, "scale": t.scale or 0}
    if isinstance(t, sa.Uuid):
        return "uuid", {}
    if isinstance(t, sa.JSON):
        return "json", {}
    if isinstance(t, sa.Text):
        return "text", {}
    if isinstance(t, sa.String):
        return ("string", {"length": t.length}) if t.length else ("text", {})
    if isinstance(t, sa.DateTime):
        return ("datetime", {"timezone": False}) if dialect == "postgresql" and not t.timezone else ("datetime", {})
    if isinstance(t, sa.Date):
        return "date", {}
    if isinstance(t, sa.Time):
        return "time", {}
    return None


def _pk_type(value: Any) -> str:
    value = "integer" if value is None else value
    if value not in PK_TYPES:
        raise InvalidPayload(f"collection: primary key type must be one of {', '.join(PK_TYPES)}")
    return value


def _pk_type_of(item: Mapping[str, Any], pk_type: Any) -> str:
    extra = set(item) - {"field", "type", "primary_key", "nullable"}
    if extra:
        raise InvalidPayload("collection: the 'id' field is the primary key; it takes only 'type' "
                             f"({' or '.join(PK_TYPES)})")
    type_ = _pk_type(item.get("type", pk_type))
    if pk_type is not None and pk_type != type_:
        raise InvalidPayload("collection: 'pk_type' and the type of field 'id' disagree")
    return type_


def _current(field: Field, key: str) -> Any:
    return {"field": field.name, "type": field.type, "nullable": field.nullable, "default": field.default,
            "unique": field.unique, "indexed": field.indexed, "options": dict(field.options),
            "note": field.note, "meta": field.meta}.get(key)


def _sqlstate(exc: sa.exc.DBAPIError) -> str | None:
    orig = exc.orig
    return getattr(orig, "sqlstate", None) or getattr(getattr(orig, "__cause__", None), "sqlstate", None)
