"""``POST /api/ai/query`` (DESIGN §6 "Natural-language query"): a prompt →
the model sees only what the caller may read and answers with a plan through a
tool constrained to it → the server checks the plan (names against the
caller's view, shape against the tool's schema, then the items service's own
reader — the filter language's one parser, the field, sort and aggregate
checks) before showing it → with ``run``, the items service runs it as the
caller."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jsonschema

from workeros.api import (
    Accountability,
    Forbidden,
    InvalidPayload,
    InvalidQuery,
    Services,
    activity,
    query_from_mapping,
)

from .model import Answer, Model
from .view import ViewCollection, describe, plan_schema, readable_view

TOOL = "query_plan"
SYSTEM = """You turn a question about the data of a workeros backend into a query plan.
Answer only by calling the tool {tool}. The plan reads one collection: choose it and its fields
only from this list (they are all you may use; nothing else exists for you):

{collections}

Filters use the filter language: {{"field": {{"_eq": value}}}}; operators _eq _neq _lt _lte _gt _gte
_in _nin _null _nnull _contains _ncontains _icontains _starts_with _istarts_with _ends_with _iends_with
_between _nbetween _empty _nempty; combine with {{"_and": [...]}} / {{"_or": [...]}}. Variables:
$CURRENT_USER, $NOW, $NOW(-7 days). Sort with field names, "-field" for descending. For counts, sums
and averages use aggregate ({{"count": ["*"]}}, {{"sum": ["price"]}}) with optional groupBy."""


def _names_in_filter(raw: Any, out: list[tuple[str, Any]]) -> None:
    if not isinstance(raw, Mapping):
        return
    for key, value in raw.items():
        if key in ("_and", "_or") and isinstance(value, list):
            for child in value:
                _names_in_filter(child, out)
        elif isinstance(key, str) and not key.startswith("_"):
            out.append((key, value))


def _refuse_unoffered(plan: Mapping[str, Any], c: ViewCollection) -> None:
    """Every name the plan uses must be one the model was offered: the
    caller's readable fields of the plan's collection (no relational paths)."""
    offered = set(c.names)
    named: list[str] = []
    for part in ("fields", "groupBy"):
        value = plan.get(part)
        if isinstance(value, list):
            named += [v for v in value if isinstance(v, str)]
    if isinstance(plan.get("sort"), list):
        named += [s[1:] if s.startswith("-") else s for s in plan["sort"] if isinstance(s, str)]
    if isinstance(plan.get("aggregate"), Mapping):
        for value in plan["aggregate"].values():
            if isinstance(value, list):
                named += [v for v in value if isinstance(v, str) and v != "*"]
    in_filter: list[tuple[str, Any]] = []
    _names_in_filter(plan.get("filter"), in_filter)
    named += [name for name, _ in in_filter]
    for name in named:
        if name not in offered:
            raise Forbidden(f"The plan names field {name[:80]!r} of {c.name!r}, which is not one you may read",
                            plan=dict(plan))
    for name, value in in_filter:
        if not isinstance(value, Mapping) or not all(isinstance(k, str) and k.startswith("_") for k in value):
            raise InvalidQuery(f"The plan's filter on {name[:80]!r} must be an object of operators", plan=dict(plan))


async def check_plan(services: Services, acc: Accountability, view: dict[str, ViewCollection],
                     answer: Mapping[str, Any], max_limit: int) -> tuple[dict[str, Any], Any]:
    """The plan of the model's answer, normalised, and its ``Query`` — or the
    refusal: 403 for a collection or field outside the caller's view, 400 for a
    plan the filter language or the items service does not accept."""
    plan = answer.get("plan")
    if not isinstance(plan, Mapping):
        raise InvalidQuery("The model's answer holds no plan")
    name = plan.get("collection")
    if not isinstance(name, str) or name not in view:
        raise Forbidden(f"The plan names a collection you may not read: {str(name)[:80]!r}", plan=dict(plan))
    c = view[name]
    _refuse_unoffered(plan, c)
    validator = jsonschema.Draft202012Validator(plan_schema({name: c}, max_limit))
    errors = sorted(validator.iter_errors({"plan": dict(plan), "explanation": ""}), key=lambda e: list(e.path))
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path)
        raise InvalidQuery(f"The plan does not fit its schema at {where}: {errors[0].message}"[:400], plan=dict(plan))
    normal: dict[str, Any] = {
        "collection": name,
        "filter": plan.get("filter") or None,
        "sort": list(plan.get("sort") or ()),
        "limit": int(plan.get("limit") or min(100, max_limit)),
        "fields": list(plan.get("fields") or c.names),
    }
    if plan.get("aggregate"):
        normal["aggregate"] = dict(plan["aggregate"])
    if plan.get("groupBy"):
        normal["groupBy"] = list(plan["groupBy"])
    query = query_from_mapping({k: v for k, v in normal.items() if k != "collection" and v is not None
                                and not (k == "fields" and "aggregate" in normal)})
    # The items service's own checks, without reading a row: its reader parses
    # the filter with the filter language's parser under the caller's rule, and
    # checks the fields, the sort and the aggregate as a REST call would.
    reader = await services.items.reader(acc)
    collection, rule = reader.collection(name)
    reader.where(collection, rule, query)
    reader.order(collection, rule, query.sort)
    if query.aggregate or query.group_by:
        for field in query.group_by:
            reader.field(collection, field, rule, "groupBy field")
        for names in query.aggregate.values():
            for field in names:
                if field != "*":
                    reader.field(collection, field, rule, "aggregated field")
    else:
        reader.node(collection, rule, query)
    return normal, query


async def record_usage(services: Services, acc: Accountability, action: str, answer: Answer | None,
                       collection: str | None, **meta: Any) -> None:
    """An activity row with the tokens the model took (also for a refused plan)."""
    async with services.db.transaction() as conn:
        await activity.record(conn, action=action, accountability=acc, collection=collection, meta={
            "model": answer.model if answer else None, "usage": answer.usage if answer else None, **meta})


async def ai_query(services: Services, model: Model, acc: Accountability, body: Mapping[str, Any],
                   max_limit: int) -> dict[str, Any]:
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise InvalidPayload('"prompt" is required: the question, in words', field="prompt")
    if len(prompt) > 4000:
        raise InvalidPayload('"prompt" is longer than 4000 characters', field="prompt")
    run = body.get("run", False)
    if not isinstance(run, bool):
        raise InvalidPayload('"run" must be true or false', field="run")
    only = body.get("collection")
    if only is not None and not isinstance(only, str):
        raise InvalidPayload('"collection" must be a collection name', field="collection")
    model.client()  # 503 before anything else when no key is configured
    view = await readable_view(services, acc)
    if only is not None:
        if only not in view:
            raise Forbidden()
        view = {only: view[only]}
    if not view:
        raise Forbidden("You may not read any collection, so there is nothing to ask about")
    tool = {"name": TOOL, "description": "The query plan answering the question, over the collections listed.",
            "input_schema": plan_schema(view, max_limit)}
    system = SYSTEM.format(tool=TOOL, collections=describe(view))
    answer = await model.ask(system=system, prompt=prompt, tool=tool)
    try:
        plan, query = await check_plan(services, acc, view, answer.input, max_limit)
    except (Forbidden, InvalidQuery) as exc:
        await record_usage(services, acc, "ai.query", answer, None, refused=exc.message, run=False)
        raise
    explanation = answer.input.get("explanation")
    out: dict[str, Any] = {"plan": plan, "explanation": explanation if isinstance(explanation, str) else "",
                           "read_only": True, "model": answer.model, "usage": answer.usage}
    if run:
        rows, _ = await services.items.query(acc, plan["collection"], query)
        out["rows"] = rows
    await record_usage(services, acc, "ai.query", answer, plan["collection"], run=run)
    return out
