"""``POST /api/ai/import-csv``: CSV columns mapped to a collection's fields
by the model (only the fields the caller may create are offered), shown for
review, then — with ``run: true`` and the mapping reviewed — imported through
the items service as the caller, in batches inside one transaction (all rows
or none), reporting progress after each batch."""

from __future__ import annotations

import csv
import io
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import jsonschema

from workeros.api import (
    Accountability,
    Forbidden,
    InvalidPayload,
    InvalidQuery,
    Services,
    loads,
)

from .model import Answer, Model
from .query import record_usage
from .view import ViewCollection, readable_view

TOOL = "map_columns"
SAMPLE_ROWS = 3
PREVIEW_ROWS = 5
SYSTEM = """You map the columns of a CSV file onto the fields of the collection {collection}. Answer only by
calling the tool {tool}: for each column, the field it fills, or null when no field fits. Map two
columns to one field never. The fields:
{fields}"""

Progress = Callable[[int, int], Awaitable[None]]


def parse_csv(text: str, max_rows: int) -> tuple[list[str], list[list[str]]]:
    try:
        rows = [r for r in csv.reader(io.StringIO(text)) if r]
    except csv.Error as exc:
        raise InvalidPayload(f"CSV is malformed: {exc}", field="csv") from None
    if not rows:
        raise InvalidPayload("The CSV has no header row", field="csv")
    header = [h.strip() for h in rows[0]]
    if not all(header) or len(set(header)) != len(header):
        raise InvalidPayload("The CSV header has an empty or repeated column name", field="csv")
    body = rows[1:]
    if len(body) > max_rows:
        raise InvalidPayload(f"At most {max_rows} rows per import (items.max_batch)", field="csv")
    for number, cells in enumerate(body, start=1):
        if len(cells) != len(header):
            raise InvalidPayload(f"CSV row {number} has {len(cells)} cells; the header has {len(header)}",
                                 field="csv")
    return header, body


def check_mapping(mapping: Any, header: list[str], c: ViewCollection) -> dict[str, str | None]:
    """Every column mapped to a field the caller may create, or to null; no
    field filled twice."""
    if not isinstance(mapping, Mapping):
        raise InvalidPayload('"mapping" must be an object: {column: field or null}', field="mapping")
    out: dict[str, str | None] = {}
    offered = set(c.names)
    for column in header:
        field = mapping.get(column)
        if field is not None and (not isinstance(field, str) or field not in offered):
            raise Forbidden(f"Column {column[:80]!r} is mapped to {str(field)[:80]!r}, which is not a field you may "
                            f"create in {c.name!r}")
        out[column] = field
    unknown = [k for k in mapping if k not in header]
    if unknown:
        raise InvalidPayload(f"The mapping names a column the CSV does not have: {str(unknown[0])[:80]!r}",
                             field="mapping")
    targets = [f for f in out.values() if f is not None]
    if len(set(targets)) != len(targets):
        raise InvalidPayload("The mapping fills one field from two columns", field="mapping")
    if not targets:
        raise InvalidPayload("The mapping fills no field", field="mapping")
    return out


def items_of(header: list[str], body: list[list[str]], mapping: dict[str, str | None],
             c: ViewCollection) -> list[dict[str, Any]]:
    """The rows as items: empty cells left out (the field's default applies),
    ``json`` cells parsed; the write path coerces the rest."""
    types = {f.name: f.type for f in c.fields}
    items = []
    for number, cells in enumerate(body, start=1):
        item: dict[str, Any] = {}
        for column, cell in zip(header, cells, strict=True):
            field = mapping[column]
            if field is None or cell == "":
                continue
            if types[field] == "json":
                try:
                    item[field] = loads(cell)
                except ValueError:
                    raise InvalidPayload(f"CSV row {number}: column {column!r} is not valid JSON",
                                         field=column) from None
            else:
                item[field] = cell
        items.append(item)
    return items


async def map_columns(model: Model, c: ViewCollection, header: list[str], body: list[list[str]]) -> Answer:
    schema = {"type": "object", "properties": {
        "mapping": {"type": "object", "properties": {col: {"enum": [*c.names, None]} for col in header},
                    "required": header, "additionalProperties": False},
        "explanation": {"type": "string"}}, "required": ["mapping", "explanation"], "additionalProperties": False}
    tool = {"name": TOOL, "description": "Which field each CSV column fills.", "input_schema": schema}
    fields = "\n".join(f"- {f.name} ({f.type}){': ' + f.note if f.note else ''}" for f in c.fields)
    sample = "\n".join(",".join(cells) for cells in [header, *body[:SAMPLE_ROWS]])
    answer = await model.ask(system=SYSTEM.format(collection=c.name, tool=TOOL, fields=fields),
                             prompt=f"The CSV's header and first rows:\n{sample}", tool=tool)
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(answer.input))
    if errors:
        raise InvalidQuery(f"The model's mapping does not fit its schema: {errors[0].message}"[:400])
    return answer


async def import_csv(services: Services, model: Model, acc: Accountability, body: Mapping[str, Any], *,
                     batch: int, progress: Progress | None = None) -> dict[str, Any]:
    name = body.get("collection")
    text = body.get("csv")
    if not isinstance(name, str) or not name:
        raise InvalidPayload('"collection" is required', field="collection")
    if not isinstance(text, str):
        raise InvalidPayload('"csv" is required: the file\'s text', field="csv")
    run = body.get("run", False)
    if not isinstance(run, bool):
        raise InvalidPayload('"run" must be true or false', field="run")
    if body.get("mapping") is None:
        model.client()  # 503 when the model would be needed and no key is configured
    await services.items.rule(acc, name, "create")  # 403 as REST when the caller may not create there
    view = await readable_view(services, acc, "create")
    if name not in view:
        raise Forbidden()
    c = view[name]
    header, rows = parse_csv(text, services.items.max_batch)
    answer: Answer | None = None
    if body.get("mapping") is not None:
        mapping = check_mapping(body["mapping"], header, c)  # the reviewed mapping: no model call
        explanation = ""
    else:
        if run:
            raise InvalidPayload('Review the mapping first: "run": true needs the "mapping" to use', field="mapping")
        answer = await map_columns(model, c, header, rows)
        await record_usage(services, acc, "ai.import_csv", answer, name, rows=len(rows))
        mapping = check_mapping(answer.input["mapping"], header, c)
        explanation = answer.input.get("explanation") or ""
    items = items_of(header, rows, mapping, c)
    out: dict[str, Any] = {"collection": name, "mapping": mapping, "explanation": explanation,
                           "columns": header, "rows": len(items), "preview": items[:PREVIEW_ROWS]}
    if answer is not None:
        out.update(model=answer.model, usage=answer.usage)
    if not run:
        return out
    done = 0
    collection = services.items.collection(name)
    async with services.items.writing(collection) as w:
        for start in range(0, len(items), batch):
            chunk = items[start:start + batch]
            await w.create(acc, collection, chunk, label="row")
            done += len(chunk)
            if progress is not None:
                await progress(done, len(items))
    out["imported"] = done
    return out
