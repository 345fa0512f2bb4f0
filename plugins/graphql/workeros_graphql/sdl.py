"""The GraphQL schema of one role, written as SDL from the live metadata and the
role's rules: only what the role may read appears (types, fields, relations,
filter inputs), and only the mutations it may run.

Naming. Collection slugs are lowercase (``[a-z][a-z0-9_]*``), so every type
this module adds starts with an uppercase letter or carries an uppercase
suffix (``posts_Filter``, ``posts_Aggregated``, ``StringFilterOperators``) and
can never collide with a collection's type. Root fields are ``<slug>``,
``<slug>_by_id``, ``<slug>_aggregated`` and the mutations; when one of those
equals another collection's own query field (a collection named
``posts_by_id``), the collection keeps the name and the derived field gets
trailing underscores until it is unique — processed in name order, so the
result is the same on every build. Subscription fields, ``<slug>_mutated``,
live in their own root type and are unique by construction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from workeros.api import TYPES, Collection, Schema

SCALAR_OF = {
    "string": "String", "text": "String", "uuid": "String", "date": "String", "time": "String",
    "datetime": "String", "decimal": "String", "integer": "Int", "bigint": "BigInt", "float": "Float",
    "boolean": "Boolean", "json": "JSON",
    # A plugin type the schema knows by name: vectors travel as JSON arrays.
    "vector": "JSON",
}

COMPARE = ("_eq", "_neq", "_lt", "_lte", "_gt", "_gte")
TEXT = ("_contains", "_ncontains", "_icontains", "_starts_with", "_istarts_with", "_ends_with", "_iends_with")
FLAGS = ("_null", "_nnull", "_empty", "_nempty")


def _operators(scalar: str) -> str:
    lines = [f"  {op}: {scalar}" for op in COMPARE]
    lines += [f"  {op}: [{scalar}]" for op in ("_in", "_nin", "_between", "_nbetween")]
    if scalar == "String":
        lines += [f"  {op}: String" for op in TEXT]
    lines += [f"  {op}: Boolean" for op in FLAGS]
    return f"input {scalar}FilterOperators {{\n" + "\n".join(lines) + "\n}"


COMMON = "\n\n".join([
    "scalar JSON",
    "scalar BigInt",
    *(_operators(s) for s in ("String", "Int", "BigInt", "Float", "Boolean", "JSON")),
    "type DeleteOne {\n  id: ID\n}",
    "type DeleteMany {\n  ids: [ID]\n}",
])

#: What ``<slug>_mutated`` reports and filters on: the event as the subscriber
#: sees it (an update that moves a row out of view is a delete).
EVENTS = "enum EventEnum {\n  create\n  update\n  delete\n}"


@dataclass
class RoleRules:
    """What a role may do, per collection: the field allowlist of each action
    (``None`` = every field; a collection missing from a mapping = no access)."""

    read: Mapping[str, frozenset[str] | None]
    create: Mapping[str, frozenset[str] | None] = field(default_factory=dict)
    update: Mapping[str, frozenset[str] | None] = field(default_factory=dict)
    delete: Mapping[str, frozenset[str] | None] = field(default_factory=dict)


@dataclass
class RootField:
    """What a root field does: ``kind`` is list, by_id, aggregated, create_one,
    create_many, update_one, update_many, delete_one, delete_many, or
    subscription (``<slug>_mutated``)."""

    kind: str
    collection: str
    #: for kind ``extension``: the ``GraphQLQuery`` a plugin registered
    extension: Any = None


@dataclass
class Built:
    sdl: str
    roots: dict[str, RootField]  # "Query.<name>" / "Mutation.<name>" / "Subscription.<name>" -> what it does
    #: type name -> collection, for object types of collections
    types: dict[str, str]


def _allowed(fields: frozenset[str] | None, name: str) -> bool:
    return fields is None or name in fields


def build_sdl(schema: Schema, rules: RoleRules, *, subscriptions: bool = True,
              extensions: Sequence[Any] = ()) -> Built:
    """The role's SDL; ``subscriptions`` adds the ``Subscription`` type (off on a
    runtime that cannot hold streams)."""
    readable = {name: schema.collections[name] for name in sorted(rules.read) if name in schema.collections}
    out: list[str] = [COMMON]
    roots: dict[str, RootField] = {}
    query_fields: list[str] = []
    mutation_fields: list[str] = []
    taken = set(readable)

    def unique(name: str) -> str:
        while name in taken:
            name += "_"
        taken.add(name)
        return name

    def readable_fields(c: Collection) -> list[Any]:
        allowed = rules.read[c.name]
        return [f for f in c.fields.values() if _allowed(allowed, f.name)]

    def list_args(slug: str) -> str:
        return f"filter: {slug}_Filter, sort: [String], limit: Int, offset: Int, page: Int, search: String"

    applicable = {slug: [e for e in extensions if e.applies(c, rules.read[slug])] for slug, c in readable.items()}
    for slug, c in readable.items():
        # the object type
        lines = [f"  {name}: {sdl}" for e in applicable[slug] for name, sdl in e.row_fields.items()]
        for f in readable_fields(c):
            relation = c.relations.get(f.name)
            if relation is not None and relation.related in readable:
                if relation.kind == "m2o":
                    lines.append(f"  {f.name}: {relation.related}")
                else:
                    lines.append(f"  {f.name}({list_args(relation.related)}): [{relation.related}!]")
                continue
            if f.alias:
                continue  # a relation into a collection the role cannot read
            scalar = SCALAR_OF.get(f.type, "String")
            lines.append(f"  {f.name}: {scalar}{'!' if f.primary_key else ''}")
        out.append(f"type {slug} {{\n" + "\n".join(lines) + "\n}")

        # its filter input
        flines = [f"  _and: [{slug}_Filter]", f"  _or: [{slug}_Filter]"]
        for f in readable_fields(c):
            relation = c.relations.get(f.name)
            if relation is not None and relation.related in readable:
                if relation.kind == "m2o":
                    flines.append(f"  {f.name}: {relation.related}_Filter")
                else:
                    flines.append(f"  {f.name}: {relation.related}_ManyFilter")
                continue
            if f.alias:
                continue
            flines.append(f"  {f.name}: {SCALAR_OF.get(f.type, 'String')}FilterOperators")
        out.append(f"input {slug}_Filter {{\n" + "\n".join(flines) + "\n}")
        out.append(f"input {slug}_ManyFilter {{\n  _some: {slug}_Filter\n  _none: {slug}_Filter\n}}")

        # aggregates
        scalars = [f for f in readable_fields(c) if not f.alias]
        numeric = [f for f in scalars if f.type in TYPES and TYPES[f.type].numeric]
        ordered = [f for f in scalars if f.type in TYPES and TYPES[f.type].ordered]
        agg = ["  group: JSON", "  countAll: Int"]
        agg.append(f"  count: {slug}_AggregatedCount")
        agg.append(f"  countDistinct: {slug}_AggregatedCount")
        out.append(f"type {slug}_AggregatedCount {{\n" + "\n".join(f"  {f.name}: Int" for f in scalars) + "\n}")
        if numeric:
            agg += [f"  sum: {slug}_AggregatedSum", f"  avg: {slug}_AggregatedAvg"]
            out.append(f"type {slug}_AggregatedSum {{\n" + "\n".join(
                f"  {f.name}: {SCALAR_OF.get(f.type, 'String')}" for f in numeric) + "\n}")
            out.append(f"type {slug}_AggregatedAvg {{\n" + "\n".join(
                f"  {f.name}: {'String' if f.type == 'decimal' else 'Float'}" for f in numeric) + "\n}")
        if ordered:
            agg += [f"  min: {slug}_AggregatedValues", f"  max: {slug}_AggregatedValues"]
            out.append(f"type {slug}_AggregatedValues {{\n" + "\n".join(
                f"  {f.name}: {SCALAR_OF.get(f.type, 'String')}" for f in ordered) + "\n}")
        out.append(f"type {slug}_Aggregated {{\n" + "\n".join(agg) + "\n}")

        query_fields.append(f"  {slug}({list_args(slug)}): [{slug}!]!")
        roots[f"Query.{slug}"] = RootField("list", slug)

    for slug in readable:
        name = unique(f"{slug}_by_id")
        query_fields.append(f"  {name}(id: ID!): {slug}")
        roots[f"Query.{name}"] = RootField("by_id", slug)
        name = unique(f"{slug}_aggregated")
        query_fields.append(f"  {name}(groupBy: [String], filter: {slug}_Filter, limit: Int, offset: Int, page: Int, "
                            f"search: String): [{slug}_Aggregated!]!")
        roots[f"Query.{name}"] = RootField("aggregated", slug)
        for extension in applicable[slug]:  # fields plugins add (workeros_register_graphql_queries)
            name = unique(f"{slug}_{extension.suffix}")
            arguments = extension.arguments(slug, readable[slug])
            query_fields.append(f"  {name}{f'({arguments})' if arguments else ''}: [{slug}!]!")
            roots[f"Query.{name}"] = RootField("extension", slug, extension)

    # mutations: inputs carry the writable scalar fields (m2o as the related key)
    def input_type(slug: str, suffix: str, allowed: frozenset[str] | None, c: Collection) -> str:
        lines = []
        for f in c.fields.values():
            if f.alias or not _allowed(allowed, f.name):
                continue
            if f.primary_key and suffix == "UpdateInput":
                continue
            lines.append(f"  {f.name}: {SCALAR_OF.get(f.type, 'String')}")
        if not lines:
            lines.append("  _: Boolean")  # an input type needs a field; this one is refused if sent
        out.append(f"input {slug}_{suffix} {{\n" + "\n".join(lines) + "\n}")
        return f"{slug}_{suffix}"

    mutation_slugs = sorted(set(rules.create) | set(rules.update) | set(rules.delete))
    for slug in mutation_slugs:
        c = schema.collections.get(slug)
        if c is None or not c.items_api:
            continue  # system collections with their own API are written there
        one = slug if slug in readable else "Boolean"
        many = f"[{slug}!]!" if slug in readable else "Boolean"
        if slug in rules.create:
            t = input_type(slug, "CreateInput", rules.create[slug], c)
            for kind, name, sig in (("create_one", f"create_{slug}_item", f"(data: {t}!): {one}"),
                                    ("create_many", f"create_{slug}_items", f"(data: [{t}!]!): {many}")):
                name = unique(name)
                mutation_fields.append(f"  {name}{sig}")
                roots[f"Mutation.{name}"] = RootField(kind, slug)
        if slug in rules.update:
            t = input_type(slug, "UpdateInput", rules.update[slug], c)
            for kind, name, sig in (("update_one", f"update_{slug}_item", f"(id: ID!, data: {t}!): {one}"),
                                    ("update_many", f"update_{slug}_items", f"(ids: [ID!]!, data: {t}!): {many}")):
                name = unique(name)
                mutation_fields.append(f"  {name}{sig}")
                roots[f"Mutation.{name}"] = RootField(kind, slug)
        if slug in rules.delete:
            for kind, name, sig in (("delete_one", f"delete_{slug}_item", "(id: ID!): DeleteOne"),
                                    ("delete_many", f"delete_{slug}_items", "(ids: [ID!]!): DeleteMany")):
                name = unique(name)
                mutation_fields.append(f"  {name}{sig}")
                roots[f"Mutation.{name}"] = RootField(kind, slug)

    # subscriptions: one per readable collection, fed by the realtime hub
    subscription_fields: list[str] = []
    if subscriptions and readable:
        out.append(EVENTS)
        for slug in readable:
            out.append(f"type {slug}_Mutated {{\n  key: ID!\n  event: EventEnum!\n  data: {slug}\n}}")
            name = f"{slug}_mutated"
            subscription_fields.append(f"  {name}(event: EventEnum, filter: {slug}_Filter): {slug}_Mutated!")
            roots[f"Subscription.{name}"] = RootField("subscription", slug)

    if not query_fields:
        query_fields.append("  _empty: Boolean")  # a schema needs a query type with a field
    out.append("type Query {\n" + "\n".join(query_fields) + "\n}")
    if mutation_fields:
        out.append("type Mutation {\n" + "\n".join(mutation_fields) + "\n}")
    if subscription_fields:
        out.append("type Subscription {\n" + "\n".join(subscription_fields) + "\n}")
    return Built(sdl="\n\n".join(out), roots=roots, types={slug: slug for slug in readable})

