"""What the model is shown: the collections and fields the caller may read —
and nothing else, not even names — and the JSON Schema of a query plan over
them (collection and field enums, the filter language per collection)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workeros.api import Accountability, Services

#: The filter language's operators (DESIGN §4), each with the JSON Schema of its value.
ANY: dict[str, Any] = {}
LIST = {"type": "array"}
PAIR = {"type": "array", "minItems": 2, "maxItems": 2}
FLAG = {"type": "boolean"}
TEXT = {"type": "string"}
OPERATORS: dict[str, dict[str, Any]] = {
    "_eq": ANY, "_neq": ANY, "_lt": ANY, "_lte": ANY, "_gt": ANY, "_gte": ANY,
    "_in": LIST, "_nin": LIST, "_between": PAIR, "_nbetween": PAIR,
    "_null": FLAG, "_nnull": FLAG, "_empty": FLAG, "_nempty": FLAG,
    "_contains": TEXT, "_ncontains": TEXT, "_icontains": TEXT, "_starts_with": TEXT, "_istarts_with": TEXT,
    "_ends_with": TEXT, "_iends_with": TEXT,
}
AGGREGATES = ("count", "countDistinct", "sum", "avg", "min", "max")
#: Field types a plan cannot use (vectors are searched through the vectors API).
UNUSABLE_TYPES = frozenset({"vector"})


@dataclass(frozen=True)
class ViewField:
    name: str
    type: str
    note: str | None = None


@dataclass(frozen=True)
class ViewCollection:
    name: str
    primary_key: str
    fields: tuple[ViewField, ...]
    note: str | None = None

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]


async def readable_view(services: Services, acc: Accountability, action: str = "read") -> dict[str, ViewCollection]:
    """The user collections ``acc`` may ``action`` (read, or create for an
    import), each with the fields its rule allows. Starts from the schema
    service's per-role view (the collections the caller may use at all) and
    keeps what the ``action`` rule grants; relational aliases and relations are
    left out, so no other collection is named."""
    schema = services.schema.current()
    usable = await services.schema.usable(acc)
    out: dict[str, ViewCollection] = {}
    for name in sorted(usable):
        c = schema.collections.get(name)
        if c is None or c.system:
            continue
        rule = await services.permissions.rule(acc, name, action)
        if rule is None:
            continue
        allowed = rule.fields
        fields = tuple(
            ViewField(f.name, f.type, f.note or None) for f in c.fields.values()
            if not f.alias and f.type not in UNUSABLE_TYPES and (allowed is None or f.name in allowed)
            and not (action == "create" and f.primary_key and f.type == "integer"))
        if fields:
            out[name] = ViewCollection(name, c.primary_key, fields, c.note or None)
    return out


def describe(view: dict[str, ViewCollection]) -> str:
    """The view as text for the model's instructions."""
    lines = []
    for c in view.values():
        note = f" — {c.note}" if c.note else ""
        lines.append(f"- {c.name}{note}")
        for f in c.fields:
            lines.append(f"  - {f.name} ({f.type}){': ' + f.note if f.note else ''}")
    return "\n".join(lines)


def _filter_def(c: ViewCollection) -> dict[str, Any]:
    ref = {"$ref": f"#/$defs/filter_{c.name}"}
    properties: dict[str, Any] = {
        f.name: {"type": "object", "properties": OPERATORS, "additionalProperties": False, "minProperties": 1}
        for f in c.fields}
    properties["_and"] = {"type": "array", "items": ref}
    properties["_or"] = {"type": "array", "items": ref}
    return {"type": "object", "properties": properties, "additionalProperties": False,
            "description": f'Filter on {c.name}: {{"field": {{"_operator": value}}}}, combined with _and/_or'}


def plan_variant(c: ViewCollection, max_limit: int) -> dict[str, Any]:
    names = c.names
    return {
        "type": "object",
        "properties": {
            "collection": {"const": c.name},
            "filter": {"$ref": f"#/$defs/filter_{c.name}"},
            "fields": {"type": "array", "items": {"enum": names}, "minItems": 1, "uniqueItems": True},
            "sort": {"type": "array", "items": {"enum": names + [f"-{n}" for n in names]}},
            "limit": {"type": "integer", "minimum": 1, "maximum": max_limit},
            "aggregate": {"type": "object", "additionalProperties": False, "properties": {
                fn: {"type": "array", "minItems": 1, "items": {"enum": (["*"] if fn == "count" else []) + names}}
                for fn in AGGREGATES}},
            "groupBy": {"type": "array", "items": {"enum": names}},
        },
        "required": ["collection"],
        "additionalProperties": False,
    }


def plan_schema(view: dict[str, ViewCollection], max_limit: int) -> dict[str, Any]:
    """The input schema of the plan tool: the plan is one of the readable
    collections with its own fields and filter."""
    variants = [plan_variant(c, max_limit) for c in view.values()]
    return {
        "type": "object",
        "properties": {
            "plan": variants[0] if len(variants) == 1 else {"anyOf": variants},
            "explanation": {"type": "string", "description": "One or two sentences on what the plan reads"},
        },
        "required": ["plan", "explanation"],
        "additionalProperties": False,
        "$defs": {f"filter_{c.name}": _filter_def(c) for c in view.values()},
    }
