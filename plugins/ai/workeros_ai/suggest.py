"""``POST /api/ai/suggest-schema``: a description in words → a proposed
collection, exactly the body ``POST /api/collections`` takes. Nothing is
created here: applying the proposal is a separate, explicit call
(``POST /api/collections`` or the MCP tool ``schema_create_collection``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import jsonschema

from workeros.api import TYPES, Accountability, Forbidden, InvalidPayload, InvalidQuery, Services

from .model import Model
from .query import record_usage

TOOL = "propose_collection"
NAME = r"^[a-z][a-z0-9_]{0,62}$"
#: Types a proposal may use: the scalar types every install has (files and
#: vectors need their plugins and options the model cannot know).
PLAIN_TYPES = ("string", "text", "integer", "bigint", "float", "decimal", "boolean", "json", "uuid", "datetime",
               "date", "time")
SYSTEM = """You design collections (tables) for a workeros backend. Answer only by calling the tool {tool}
with one collection: a lower-case snake_case name, and its fields (lower-case snake_case; the primary
key "id" is added for you, do not list it). Field types: {types}. Mark fields required only when the
description says so. Collections that already exist (do not propose these names): {existing}."""


def proposal_schema() -> dict[str, Any]:
    types = [t for t in PLAIN_TYPES if t in TYPES]
    field = {"type": "object", "properties": {
        "field": {"type": "string", "pattern": NAME},
        "type": {"enum": types},
        "nullable": {"type": "boolean"},
        "unique": {"type": "boolean"},
        "note": {"type": "string", "maxLength": 500},
    }, "required": ["field", "type"], "additionalProperties": False}
    return {"type": "object", "properties": {
        "collection": {"type": "string", "pattern": NAME},
        "note": {"type": "string", "maxLength": 500},
        "fields": {"type": "array", "items": field, "minItems": 1, "maxItems": 100},
        "explanation": {"type": "string"},
    }, "required": ["collection", "fields", "explanation"], "additionalProperties": False}


async def suggest_schema(services: Services, model: Model, acc: Accountability,
                         body: Mapping[str, Any]) -> dict[str, Any]:
    if not acc.admin:
        raise Forbidden("Only admins change the schema, so only admins are proposed collections")
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip() or len(prompt) > 4000:
        raise InvalidPayload('"prompt" is required (at most 4000 characters): what the collection holds',
                             field="prompt")
    model.client()
    existing = sorted(c["collection"] for c in await services.schema.list_collections(acc))
    schema = proposal_schema()
    tool = {"name": TOOL, "description": "The proposed collection and its fields.", "input_schema": schema}
    system = SYSTEM.format(tool=TOOL, types=", ".join(schema["properties"]["fields"]["items"]["properties"]
                                                      ["type"]["enum"]), existing=", ".join(existing) or "none")
    answer = await model.ask(system=system, prompt=prompt, tool=tool)
    await record_usage(services, acc, "ai.suggest_schema", answer, None)
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(answer.input), key=lambda e: list(e.path))
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path) or "(proposal)"
        raise InvalidQuery(f"The proposal does not fit its schema at {where}: {errors[0].message}"[:400])
    proposal = answer.input
    fields = [dict(f) for f in proposal["fields"] if f["field"] != "id"]
    names = [f["field"] for f in fields]
    if len(set(names)) != len(names):
        raise InvalidQuery("The proposal names a field twice")
    collection: dict[str, Any] = {"collection": proposal["collection"], "fields": fields}
    if proposal.get("note"):
        collection["note"] = proposal["note"]
    return {"collection": collection, "explanation": proposal.get("explanation", ""),
            "exists": proposal["collection"] in existing or bool(re.match(r"^wos_", proposal["collection"])),
            "apply": {"method": "POST", "path": "/api/collections", "body": collection},
            "model": answer.model, "usage": answer.usage}
