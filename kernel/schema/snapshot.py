"""Schema snapshots: a portable YAML/JSON document of collections, fields and
relations, the plan (diff) that turns one instance's schema into it, and apply.

The document is built from the catalog, never from database introspection, so
it carries nothing dialect-specific: a snapshot taken on SQLite and applied on
PostgreSQL (or back) yields the same document again. It is deterministic
(collections and relations sorted, fields in their order), so two snapshots can
be compared as text::

    format: workeros-schema
    version: 1
    collections:
      - collection: posts
        primary_key: id
        pk_type: integer
        adopted: false
        table: null            # only adopted collections name their table
        note: null
        meta: null
        fields:
          - {field: id, type: integer, nullable: false, ...}
          - {field: title, type: string, options: {length: 255}, ...}
          - {field: comments, type: alias, note: null, meta: null}
    relations:
      - {collection: comments, field: post, related_collection: posts,
         one_field: comments, junction_field: null, on_delete: cascade, meta: null}

Other services add *named sections* (roles, permissions, ...) with
:func:`register_section`; a document with a section no installed service knows is
refused rather than half-applied.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import yaml
from sqlalchemy.ext.asyncio import AsyncConnection

from workeros.errors import InvalidPayload
from workeros.schema import ddl, identifiers
from workeros.schema.catalog import Catalog, RelationRow
from workeros.schema.changes import (
    PK_TYPES,
    Changes,
    _meta,
    _note,
    _on_delete,
    field_from_payload,
    parse_type,
)
from workeros.schema.model import Collection, Field, Schema
from workeros.serialize import jsonable

if TYPE_CHECKING:
    from workeros.services import Services

FORMAT = "workeros-schema"
VERSION = 1
CORE_KEYS = ("format", "version", "collections", "relations")
FIELD_ATTRS = ("type", "options", "nullable", "default", "unique", "indexed", "note", "meta")


class SnapshotSection(Protocol):
    """A named part of the snapshot owned by another service (roles,
    permissions). Its operations run in the same transaction as the schema's,
    after them."""

    name: str

    async def export(self, conn: AsyncConnection) -> Any:
        """The section's JSON-ready content."""

    async def plan(self, conn: AsyncConnection, wanted: Any) -> list[dict[str, Any]]:
        """Operations (JSON objects with an ``op`` key) that make the instance
        match ``wanted``; validate ``wanted`` here (raise InvalidPayload)."""

    async def apply(self, conn: AsyncConnection, op: dict[str, Any]) -> None:
        """Run one operation from :meth:`plan`."""


def optional_sections(services: Services | None) -> list[str]:
    """Sections a snapshot carries only when asked (``include``)."""
    return sorted(n for n, s in sections(services).items() if getattr(s, "optional", False))


def register_section(services: Services, section: SnapshotSection) -> None:
    """Add a named section to snapshots of this instance."""
    sections = services.extra.setdefault("snapshot_sections", {})
    if section.name in CORE_KEYS or section.name in sections:
        raise ValueError(f"snapshot section {section.name!r} is already registered")
    sections[section.name] = section


def sections(services: Services | None) -> dict[str, SnapshotSection]:
    if services is None:
        return {}
    return dict(services.extra.get("snapshot_sections", {}))


# -- taking a snapshot ---------------------------------------------------------------------

def field_doc(f: Field) -> dict[str, Any]:
    if f.alias:
        return {"field": f.name, "type": "alias", "note": f.note, "meta": f.meta}
    return {"field": f.name, "type": f.type, "options": dict(f.options), "nullable": f.nullable,
            "default": f.default, "unique": f.unique, "indexed": f.indexed, "note": f.note, "meta": f.meta}


def collection_doc(c: Collection) -> dict[str, Any]:
    return {
        "collection": c.name,
        "primary_key": c.primary_key,
        "pk_type": c.pk_field.type,
        "adopted": c.adopted,
        "table": c.table.name if c.adopted else None,
        "note": c.note,
        "meta": c.meta,
        "fields": [field_doc(f) for f in c.fields.values()],
    }


def relation_doc(row: RelationRow) -> dict[str, Any]:
    return {"collection": row.many_collection, "field": row.many_field, "related_collection": row.one_collection,
            "one_field": row.one_field, "junction_field": row.junction_field, "on_delete": row.on_delete,
            "meta": row.meta}


def document(schema: Schema, relations: tuple[RelationRow, ...]) -> dict[str, Any]:
    return jsonable({
        "format": FORMAT,
        "version": VERSION,
        "collections": [collection_doc(c) for _, c in sorted(schema.collections.items()) if not c.system],
        "relations": [relation_doc(r) for r in sorted(relations, key=lambda r: r.key)],
    })


async def take(conn: AsyncConnection, schema: Schema, catalog: Catalog, services: Services | None,
               include: Iterable[str] = ()) -> dict[str, Any]:
    """The document. A section marked ``optional`` (``access``: roles and
    permissions) is in it only when named in ``include``."""
    doc = document(schema, catalog.relations)
    unknown = sorted(set(include) - set(sections(services)))
    if unknown:
        raise InvalidPayload(f"snapshot section {unknown[0]!r} is not supported by this instance")
    for name, section in sorted(sections(services).items()):
        if getattr(section, "optional", False) and name not in include:
            continue
        doc[name] = jsonable(await section.export(conn))
    return doc


def dump_yaml(doc: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(doc), sort_keys=False, allow_unicode=True, default_flow_style=False)


# -- reading a snapshot --------------------------------------------------------------------

@dataclass
class WantedCollection:
    name: str
    pk: Field
    fields: list[Field]  # without the primary key; aliases included (type "alias")
    adopted: bool = False
    table: str | None = None
    note: str | None = None
    meta: Any = None


@dataclass
class Wanted:
    collections: dict[str, WantedCollection]
    relations: dict[tuple[str, str], RelationRow]
    sections: dict[str, Any] = field(default_factory=dict)


def load_text(text: str | bytes) -> Any:
    """A snapshot from YAML or JSON text (JSON is YAML)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" (line {where.line + 1})" if where is not None else ""
        raise InvalidPayload(f"snapshot is not valid YAML or JSON{at}") from None


def parse(doc: Any, services: Services | None = None) -> Wanted:
    """Validate a snapshot document; 400 naming the first problem."""
    if isinstance(doc, (str, bytes)):
        doc = load_text(doc)
    if not isinstance(doc, Mapping):
        raise InvalidPayload("snapshot must be an object with 'collections' and 'relations'")
    if doc.get("format", FORMAT) != FORMAT:
        raise InvalidPayload(f"snapshot format must be {FORMAT!r}")
    if doc.get("version", VERSION) != VERSION:
        raise InvalidPayload(f"snapshot version {doc.get('version')!r} is not supported (this instance reads "
                             f"version {VERSION})")
    known = sections(services)
    unknown = sorted(set(doc) - set(CORE_KEYS) - set(known))
    if unknown:
        raise InvalidPayload(f"snapshot section {unknown[0]!r} is not supported by this instance")
    collections: dict[str, WantedCollection] = {}
    items = doc.get("collections") or []
    if not isinstance(items, list):
        raise InvalidPayload("snapshot: 'collections' must be a list")
    for item in items:
        wanted = _parse_collection(item)
        if wanted.name in collections:
            raise InvalidPayload(f"snapshot: collection {wanted.name!r} appears twice")
        collections[wanted.name] = wanted
    relations: dict[tuple[str, str], RelationRow] = {}
    items = doc.get("relations") or []
    if not isinstance(items, list):
        raise InvalidPayload("snapshot: 'relations' must be a list")
    # Relations may point at system collections (a file field at wos_files);
    # those are the instance's, never the snapshot's.
    system = frozenset(n for n, c in services.schema.current().collections.items() if c.system) \
        if services is not None else frozenset()
    for item in items:
        row = _parse_relation(item, collections, system)
        if row.key in relations:
            raise InvalidPayload(f"snapshot: relation {row.key[0]}.{row.key[1]} appears twice")
        relations[row.key] = row
    _check_aliases(collections, relations)
    return Wanted(collections, relations, {name: doc[name] for name in known if name in doc})


def _parse_collection(item: Any) -> WantedCollection:
    if not isinstance(item, Mapping):
        raise InvalidPayload("snapshot: each collection must be an object")
    extra = set(item) - {"collection", "primary_key", "pk_type", "adopted", "table", "note", "meta", "fields"}
    if extra:
        raise InvalidPayload(f"snapshot: unknown collection property {sorted(extra)[0]!r}")
    name = identifiers.collection_name(item.get("collection"))
    adopted = item.get("adopted", False)
    if not isinstance(adopted, bool):
        raise InvalidPayload(f"snapshot: collection {name}: 'adopted' must be true or false")
    table = item.get("table")
    if adopted and not isinstance(table, str):
        raise InvalidPayload(f"snapshot: adopted collection {name} must name its 'table'")
    if table is not None and not adopted:
        raise InvalidPayload(f"snapshot: collection {name}: only adopted collections name a 'table'")
    pk_name = item.get("primary_key", "id")
    if not adopted and pk_name != "id":
        raise InvalidPayload(f"snapshot: collection {name}: the primary key is 'id'")
    fields_data = item.get("fields") or []
    if not isinstance(fields_data, list):
        raise InvalidPayload(f"snapshot: collection {name}: 'fields' must be a list")
    pk: Field | None = None
    fields: list[Field] = []
    for f in fields_data:
        if not isinstance(f, Mapping):
            raise InvalidPayload(f"snapshot: collection {name}: each field must be an object")
        if f.get("field") == pk_name:
            type_, options = parse_type(f.get("type", item.get("pk_type")), f.get("options"), f"field {name}.{pk_name}",
                                        adopted=adopted)
            if not adopted and type_ not in PK_TYPES:
                raise InvalidPayload(f"snapshot: collection {name}: primary key type must be one of "
                                     f"{', '.join(PK_TYPES)}")
            pk = Field(name=pk_name, type=type_, options=options, nullable=False, primary_key=True,
                       note=_note(f, name), meta=_meta(f, name))
        elif f.get("type") == "alias":
            extra = set(f) - {"field", "type", "note", "meta"}
            if extra:
                raise InvalidPayload(f"snapshot: alias field {name}.{f.get('field')} takes only note and meta")
            alias_name = (identifiers.adopted_field_name if adopted else identifiers.field_name)(f.get("field"))
            fields.append(Field(name=alias_name, type="alias", note=_note(f, name), meta=_meta(f, name)))
        else:
            fields.append(field_from_payload(f, name, adopted=adopted))
    if pk is None:
        pk = Field(name=pk_name, type=item.get("pk_type") or "integer", nullable=False, primary_key=True)
        if pk.type not in PK_TYPES:
            raise InvalidPayload(f"snapshot: collection {name}: unknown primary key type")
    if item.get("pk_type") not in (None, pk.type):
        raise InvalidPayload(f"snapshot: collection {name}: 'pk_type' disagrees with field {pk_name!r}")
    names = [f.name for f in fields]
    if len(set(names)) != len(names) or pk_name in names:
        raise InvalidPayload(f"snapshot: collection {name} lists a field twice")
    return WantedCollection(name=name, pk=pk, fields=fields, adopted=adopted, table=table,
                            note=_note(item, name), meta=_meta(item, name))


def _parse_relation(item: Any, collections: Mapping[str, WantedCollection],
                    system: frozenset[str] = frozenset()) -> RelationRow:
    if not isinstance(item, Mapping):
        raise InvalidPayload("snapshot: each relation must be an object")
    extra = set(item) - {"collection", "field", "related_collection", "one_field", "junction_field", "on_delete",
                         "meta"}
    if extra:
        raise InvalidPayload(f"snapshot: unknown relation property {sorted(extra)[0]!r}")
    many, one = item.get("collection"), item.get("related_collection")
    if many not in collections or (one not in collections and one not in system):
        raise InvalidPayload(f"snapshot: relation {str(many)[:64]}.{str(item.get('field'))[:64]} names a "
                             "collection the snapshot does not define")
    if one in system and item.get("one_field") is not None:
        raise InvalidPayload(f"snapshot: relation {many}.{str(item.get('field'))[:64]}: system collection "
                             f"{one} has no alias fields")
    field_name = item.get("field")
    many_fields = {f.name: f for f in collections[many].fields}
    if field_name not in many_fields or many_fields[field_name].alias:
        raise InvalidPayload(f"snapshot: relation {many}.{str(field_name)[:64]}: the field is not defined")
    return RelationRow(
        many_collection=many, many_field=field_name, one_collection=one, one_field=item.get("one_field"),
        junction_field=item.get("junction_field"), on_delete=_on_delete(item.get("on_delete"), "set null"),
        meta=_meta(item, f"relation {many}.{field_name}"),
    )


def _check_aliases(collections: Mapping[str, WantedCollection], relations: Mapping[tuple[str, str], RelationRow]) -> None:
    owners = {(r.one_collection, r.one_field) for r in relations.values() if r.one_field}
    for c in collections.values():
        for f in c.fields:
            if f.alias and (c.name, f.name) not in owners:
                raise InvalidPayload(f"snapshot: alias field {c.name}.{f.name} belongs to no relation")
    for r in relations.values():
        if r.one_field and not any(f.name == r.one_field and f.alias for f in collections[r.one_collection].fields):
            raise InvalidPayload(f"snapshot: relation {r.many_collection}.{r.many_field} names alias "
                                 f"{r.one_collection}.{r.one_field}, which the collection does not list")
        if r.junction_field and (r.many_collection, r.junction_field) not in relations:
            raise InvalidPayload(f"snapshot: relation {r.many_collection}.{r.many_field} names junction field "
                                 f"{r.junction_field!r}, which holds no relation")


# -- planning ------------------------------------------------------------------------------

def _field_attrs(f: Field) -> dict[str, Any]:
    return {k: v for k, v in field_doc(f).items() if k != "field"}


def _op(op: str, collection: str, field: str | None = None, data: Any = None) -> dict[str, Any]:
    out: dict[str, Any] = {"op": op, "collection": collection}
    if field is not None:
        out["field"] = field
    if data is not None:
        out["data"] = data
    return out


def plan_schema(catalog: Catalog, wanted: Wanted) -> list[dict[str, Any]]:
    """The schema operations, in the order they can run: removals (relations,
    fields, collections), then additions and changes (collections, fields,
    relations), then alias details and field order."""
    schema = catalog.schema
    current_rows = {r.key: r for r in catalog.relations}
    gone = [n for n, c in schema.collections.items() if n not in wanted.collections and not c.system]
    ops: list[dict[str, Any]] = []
    replaced: set[tuple[str, str]] = set()

    for key, row in current_rows.items():
        want = wanted.relations.get(key)
        if want is None or (want.one_collection, want.one_field, want.junction_field) != \
                (row.one_collection, row.one_field, row.junction_field):
            replaced.add(key)
    # Dropping one half of a junction clears its sibling: replace both.
    for key in list(replaced):
        junction_field = current_rows[key].junction_field
        if junction_field and (key[0], junction_field) in current_rows:
            replaced.add((key[0], junction_field))
    for key in sorted(replaced):
        row = current_rows[key]
        if row.many_collection not in gone:
            ops.append(_op("delete_relation", row.many_collection, row.many_field))

    for name, c in sorted(schema.collections.items()):
        w = wanted.collections.get(name)
        if w is None:
            continue
        if (c.pk_field.type, c.primary_key) != (w.pk.type, w.pk.name) or c.adopted != w.adopted \
                or (w.adopted and c.table.name != w.table):
            raise InvalidPayload(f"collection {name}: its primary key or table differs from the snapshot; "
                                 "it cannot be changed in place")
        wanted_names = {f.name for f in w.fields if not f.alias}
        for f in c.fields.values():
            if not f.alias and not f.primary_key and f.name not in wanted_names:
                ops.append(_op("delete_field", name, f.name))
    for name in sorted(gone):
        ops.append(_op("delete_collection", name))

    for name, w in sorted(wanted.collections.items()):
        c = schema.get(name)
        if c is None:
            ops.append(_op("create_collection", name, data={
                "primary_key": w.pk.name, "pk_type": w.pk.type, "adopted": w.adopted, "table": w.table,
                "note": w.note, "meta": w.meta,
                "fields": [field_doc(f) for f in [w.pk, *w.fields] if not f.alias]}))
            continue
        if (c.note, c.meta) != (w.note, w.meta):
            ops.append(_op("update_collection", name, data={"note": w.note, "meta": w.meta}))
        pk_changes = {k: v for k, v in (("note", w.pk.note), ("meta", w.pk.meta))
                      if v != getattr(c.pk_field, k)}
        if pk_changes:
            ops.append(_op("update_field", name, c.primary_key, pk_changes))
        for f in w.fields:
            if f.alias:
                continue
            have = c.fields.get(f.name)
            if have is None or have.alias:
                ops.append(_op("create_field", name, f.name, field_doc(f)))
                continue
            before, after = _field_attrs(have), _field_attrs(f)
            changes = {k: after[k] for k in after if after[k] != before.get(k)}
            if changes:
                ops.append(_op("update_field", name, f.name, changes))

    for key, row in sorted(wanted.relations.items()):
        have = current_rows.get(key)
        if have is None or key in replaced or have.many_collection in gone:
            ops.append(_op("create_relation", row.many_collection, row.many_field, relation_doc(row)))
            continue
        changes = {k: v for k, v in (("on_delete", row.on_delete), ("meta", row.meta))
                   if v != getattr(have, k)}
        if changes:
            ops.append(_op("update_relation", row.many_collection, row.many_field, changes))

    recreated = {(r.one_collection, r.one_field) for key, r in wanted.relations.items()
                 if r.one_field and (key in replaced or key not in current_rows or r.many_collection in gone)}
    for name, w in sorted(wanted.collections.items()):
        c = schema.get(name)
        if c is None:
            continue
        for f in w.fields:
            have = c.fields.get(f.name)
            if f.alias and (name, f.name) not in recreated and have is not None \
                    and (have.note, have.meta) != (f.note, f.meta):
                ops.append(_op("update_field", name, f.name, {"note": f.note, "meta": f.meta}))
        order = [w.pk.name, *(f.name for f in w.fields)]
        common = [n for n in c.fields if n in order]
        if common != [n for n in order if n in c.fields]:
            ops.append(_op("order_fields", name, data=order))
    return ops


async def plan(conn: AsyncConnection, catalog: Catalog, wanted: Wanted, services: Services | None) -> list[dict[str, Any]]:
    ops = plan_schema(catalog, wanted)
    for name, section in sorted(sections(services).items()):
        if name in wanted.sections:
            ops += [{**op, "section": name} for op in await section.plan(conn, wanted.sections[name])]
    return ops


# -- applying ------------------------------------------------------------------------------

async def apply(changes: Changes, wanted: Wanted, services: Services | None) -> list[dict[str, Any]]:
    """Plan against the catalog as read under the schema lock, then run every
    operation on the same transaction (the caller commits or rolls back)."""
    ops = plan_schema(changes.catalog, wanted)
    for op in ops:
        await run(changes, op, wanted)
    # Aliases are appended when their relation is created; put every field back
    # where the document has it (a no-op where it already is).
    for name, w in wanted.collections.items():
        await changes.order_fields(name, [w.pk.name, *(f.name for f in w.fields)])
    known = sections(services)
    section_ops: list[dict[str, Any]] = []
    for name, section in sorted(known.items()):
        if name in wanted.sections:
            for op in await section.plan(changes.conn, wanted.sections[name]):
                await section.apply(changes.conn, op)
                section_ops.append({**op, "section": name})
    return ops + section_ops


async def run(changes: Changes, op: Mapping[str, Any], wanted: Wanted) -> None:
    kind, name, field_name, data = op["op"], op["collection"], op.get("field"), op.get("data")
    if kind == "delete_relation":
        await changes.drop_relation_row(name, field_name)
    elif kind == "delete_field":
        await changes.delete_field(name, field_name)
    elif kind == "delete_collection":
        await changes.delete_collection(name)
    elif kind == "create_collection":
        w = wanted.collections[name]
        scalar = [f for f in w.fields if not f.alias]
        exists = w.adopted and await changes.ddl(ddl.has_table, w.table)
        await changes.register_collection(name, w.pk, scalar, note=w.note, meta=w.meta, table=w.table,
                                          adopted=w.adopted, create=not exists)
    elif kind == "update_collection":
        await changes.update_collection(name, data)
    elif kind == "create_field":
        w = wanted.collections[name]
        f = next(f for f in w.fields if f.name == field_name)
        await changes.add_field(changes.collection(name), f)
    elif kind == "update_field":
        await changes.update_field(name, field_name, data)
    elif kind == "create_relation":
        row = wanted.relations[(name, field_name)]
        alias = None
        if row.one_field:
            w = wanted.collections[row.one_collection]
            alias = next(f for f in w.fields if f.name == row.one_field)
        await changes.add_relation_row(row, alias=alias)
    elif kind == "update_relation":
        row = changes.catalog.relation_row(name, field_name)
        assert row is not None
        if "on_delete" in data and data["on_delete"] != row.on_delete:
            await changes.set_on_delete(row, data["on_delete"])
        if "meta" in data:
            await changes._update_relation_row(name, field_name, meta=data["meta"])
        await changes.refresh()
    elif kind == "order_fields":
        await changes.order_fields(name, data)
    else:  # pragma: no cover - plans only contain the kinds above
        raise InvalidPayload(f"unknown operation {kind!r}")
