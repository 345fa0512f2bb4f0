"""``/api/items/{collection}`` and ``/api/import/{collection}``: items over HTTP.

Handlers parse the request and call the items service with the caller's
``Accountability``; the service enforces every rule. ``GET`` with
``?export=csv|json`` streams the whole result of the query (permission-checked
before the first byte) instead of one page.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson
from aiohttp import web

from workeros.api import (
    Forbidden,
    InvalidPayload,
    InvalidQuery,
    PayloadTooLarge,
    Query,
    UnsupportedMediaType,
    accountability,
    dumps,
    no_content,
    ok,
    parse_query,
    query_from_mapping,
    read_json,
    services,
)

routes = web.RouteTableDef()

EXPORT_FORMATS = ("csv", "json")


def _items(request: web.Request) -> Any:
    return services(request).items


def _writable(request: web.Request) -> str:
    """The collection of a write: system collections with an API of their own
    (``wos_users`` → ``/api/users``) are not written through ``/api/items``."""
    name = request.match_info["collection"]
    c = services(request).schema.current().get(name)
    if c is not None and not c.items_api:
        raise Forbidden(f"{name!r} is written through its own endpoints")
    return name


def _write_query(request: web.Request) -> Query | None:
    """Writes return the written items; ``fields`` (and ``deep``) shape them."""
    if not request.query:
        return None
    return parse_query(request.query)


@routes.get("/items/{collection}")
async def list_items(request: web.Request) -> web.StreamResponse:
    query = parse_query(request.query)
    export = request.query.get("export")
    if export is not None:
        return await _export(request, query, export)
    rows, meta = await _items(request).query(accountability(request), request.match_info["collection"], query)
    return ok(rows, meta=meta if query.meta else None)


@routes.post("/items/{collection}")
async def create_items(request: web.Request) -> web.Response:
    data = await read_json(request)
    if not isinstance(data, (dict, list)):
        raise InvalidPayload("Expected an item object or an array of items")
    created = await _items(request).create(accountability(request), _writable(request), data,
                                           _write_query(request))
    return ok(created)


@routes.route("SEARCH", "/items/{collection}")
async def search_items(request: web.Request) -> web.Response:
    """``SEARCH`` with ``{"query": {filter, fields, sort, limit, ...}}``: the
    query of ``GET`` in the body (as Directus's SDK sends it with ``withSearch``),
    for queries too long for a URL."""
    body = await read_json(request)
    query = body.get("query") if isinstance(body, dict) else None
    if not isinstance(query, dict):
        raise InvalidPayload('Expected {"query": {...}}')
    parsed = query_from_mapping(query)
    rows, meta = await _items(request).query(accountability(request), request.match_info["collection"], parsed)
    return ok(rows, meta=meta if parsed.meta else None)


@routes.patch("/items/{collection}")
async def update_items(request: web.Request) -> web.Response:
    """``{keys: [...], data: {...}}``, ``{query: {filter}, data}`` for every
    item matching a filter, or an array of items each carrying its key (each
    updated with its own fields; one transaction)."""
    body = await read_json(request)
    acc, collection, query = accountability(request), _writable(request), _write_query(request)
    if isinstance(body, list):
        return ok(await _items(request).update_batch(acc, collection, body, query))
    if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        raise InvalidPayload('Expected {"keys": [...], "data": {...}}, {"query": {"filter": ...}, "data": {...}} '
                             "or an array of items with their keys")
    if "keys" in body:
        if not isinstance(body["keys"], list):
            raise InvalidPayload("keys must be an array")
        rows = await _items(request).update_many(acc, collection, body["keys"], body["data"], query)
    elif isinstance(body.get("query"), dict) and body["query"].get("filter"):
        rows = await _items(request).update_by_filter(acc, collection, body["query"]["filter"], body["data"], query)
    else:
        raise InvalidPayload('Give "keys" or "query.filter" to say which items to update')
    return ok(rows)


@routes.delete("/items/{collection}")
async def delete_items(request: web.Request) -> web.Response:
    """``[keys]``, ``{keys: [...]}`` or ``{query: {filter}}`` (every item
    matching the filter that the caller may delete)."""
    body = await read_json(request)
    acc, collection = accountability(request), _writable(request)
    if isinstance(body, dict) and "keys" not in body and "query" in body:
        query = body["query"]
        if not isinstance(query, dict) or not isinstance(query.get("filter"), dict) or not query["filter"]:
            raise InvalidPayload('Expected {"query": {"filter": {...}}} with a non-empty filter')
        await _items(request).delete_by_filter(acc, collection, query["filter"])
        return no_content()
    keys = body.get("keys") if isinstance(body, dict) else body
    if not isinstance(keys, list):
        raise InvalidPayload('Expected an array of keys, {"keys": [...]} or {"query": {"filter": {...}}}')
    await _items(request).delete_many(acc, collection, keys)
    return no_content()


@routes.get("/items/{collection}/{key}")
async def get_item(request: web.Request) -> web.Response:
    m = request.match_info
    query = parse_query(request.query)
    return ok(await _items(request).get(accountability(request), m["collection"], m["key"], query))


@routes.patch("/items/{collection}/{key}")
async def update_item(request: web.Request) -> web.Response:
    m = request.match_info
    data = await read_json(request)
    if not isinstance(data, dict):
        raise InvalidPayload("Expected an object of fields to set")
    return ok(await _items(request).update(accountability(request), _writable(request), m["key"], data,
                                           _write_query(request)))


@routes.delete("/items/{collection}/{key}")
async def delete_item(request: web.Request) -> web.Response:
    m = request.match_info
    await _items(request).delete(accountability(request), _writable(request), m["key"])
    return no_content()


# -- export ------------------------------------------------------------------------------

def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return dumps(value).decode()
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


async def _export(request: web.Request, query: Query, fmt: str) -> web.StreamResponse:
    if fmt not in EXPORT_FORMATS:
        raise InvalidQuery(f"export must be one of {', '.join(EXPORT_FORMATS)}")
    collection = request.match_info["collection"]
    columns, batches = await _items(request).export(accountability(request), collection, query)
    response = web.StreamResponse(headers={
        "Content-Type": "text/csv; charset=utf-8" if fmt == "csv" else "application/json",
        "Content-Disposition": f'attachment; filename="{collection}.{fmt}"',
    })
    await response.prepare(request)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        async for batch in batches:
            for row in batch:
                writer.writerow([_cell(row.get(c)) for c in columns])
            await response.write(buffer.getvalue().encode())
            buffer.seek(0)
            buffer.truncate()
        if buffer.tell():
            await response.write(buffer.getvalue().encode())
    else:
        await response.write(b"[")
        first = True
        async for batch in batches:
            if not batch:
                continue
            chunk = b",".join(dumps(row) for row in batch)
            await response.write(chunk if first else b"," + chunk)
            first = False
        await response.write(b"]")
    await response.write_eof()
    return response


# -- import ------------------------------------------------------------------------------

def _csv_items(text: str, request: web.Request, collection: str) -> tuple[list[dict[str, Any]], list[str]]:
    """CSV rows as items, and the columns left out. Empty cells are left out
    (the field's default applies); ``json`` fields are parsed from their cell;
    a many-to-one cell holding the related item as JSON (an export with
    ``fields=author.*``) gives its key. One-to-many and many-to-many columns are
    left out: they are derived from the other side's foreign key or the junction
    collection, which are imported on their own — so a CSV export imports back."""
    schema = services(request).schema.current()
    c = schema.get(collection)
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        return [], []
    except csv.Error as exc:
        raise InvalidPayload(f"CSV header is malformed: {exc}") from None
    header = [h.strip() for h in header]
    if not all(header):
        raise InvalidPayload("CSV header has an empty column name")
    ignored = [h for h in header if c is not None and h in c.relations and c.relations[h].kind != "m2o"]
    items = []
    try:
        for number, cells in enumerate(reader, start=1):
            if not cells:
                continue
            if len(cells) != len(header):
                raise InvalidPayload(f"CSV row {number} has {len(cells)} cells; the header has {len(header)}")
            item: dict[str, Any] = {}
            for name, cell in zip(header, cells, strict=True):
                if cell == "" or name in ignored:
                    continue
                f = c.fields.get(name) if c is not None else None
                relation = c.relations.get(name) if c is not None else None
                if f is not None and f.type == "json":
                    item[name] = _json_cell(cell, number, name)
                elif relation is not None and cell.lstrip().startswith("{"):
                    related = schema.get(relation.related)
                    value = _json_cell(cell, number, name)
                    pk = related.pk_field.name if related is not None else "id"
                    if not isinstance(value, dict) or value.get(pk) is None:
                        raise InvalidPayload(f"CSV row {number}: field {name!r} needs the related item's {pk!r}",
                                             field=name)
                    item[name] = value[pk]
                else:
                    item[name] = cell
            items.append(item)
    except csv.Error as exc:
        raise InvalidPayload(f"CSV is malformed: {exc}") from None
    return items, ignored


def _json_cell(cell: str, number: int, name: str) -> Any:
    try:
        return orjson.loads(cell)
    except orjson.JSONDecodeError:
        raise InvalidPayload(f"CSV row {number}: field {name!r} is not valid JSON", field=name) from None


@routes.post("/import/{collection}")
async def import_items(request: web.Request) -> web.Response:
    """Create every item of a CSV (header row of field names) or JSON (array of
    objects) body in one transaction; an error names the row and nothing is
    written."""
    collection = _writable(request)
    acc = accountability(request)
    items_service = _items(request)
    # Permission first: a caller who may not create here learns nothing from the body.
    await items_service.rule(acc, collection, "create")
    ctype = request.content_type
    ignored: list[str] = []
    if ctype in ("text/csv", "application/csv"):
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise PayloadTooLarge() from None
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise InvalidPayload("CSV must be UTF-8") from None
        items, ignored = _csv_items(text, request, collection)
    elif ctype in ("application/json", "") or ctype.endswith("+json"):
        items = await read_json(request)
        if not isinstance(items, list):
            raise InvalidPayload("Expected a JSON array of items")
    else:
        raise UnsupportedMediaType(f"Import takes text/csv or application/json, not {ctype}")
    count = await items_service.import_items(acc, collection, items)
    return ok({"created": count}, meta={"ignored_columns": ignored} if ignored else None)
