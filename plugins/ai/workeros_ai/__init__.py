"""AI for workeros (DESIGN §6 "Natural-language query"), through the Anthropic
Messages API (the ``anthropic`` SDK):

- ``POST /api/ai/query {prompt, collection?, run}`` — a query plan over the
  collections and fields the caller may read (the model sees nothing else),
  checked by the server before it is shown, run as the caller with ``run``;
- ``POST /api/ai/suggest-schema {prompt}`` — a proposed collection (admins),
  applied by a separate ``POST /api/collections``;
- ``POST /api/ai/import-csv {collection, csv, mapping?, run}`` — CSV columns
  mapped to fields, shown, then imported with progress;
- the MCP tools ``ai_query``, ``ai_suggest_schema`` and ``ai_import_csv``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from workeros.api import (
    Services,
    accountability,
    changes_nothing,
    dumps,
    ok,
    read_object,
    services,
    setting_or,
)
from workeros.hookspecs import hookimpl
from workeros.hookspecs.admin import AdminPage
from workeros.hookspecs.lifecycle import ConfigKey, ServiceEntry
from workeros.hookspecs.mcp import McpTool, ToolContext

from .csv_import import import_csv
from .model import DEFAULT_MODEL, Model
from .query import ai_query
from .suggest import suggest_schema


class Ai:
    """``services.get("ai")``: the configured model and the three operations."""

    def __init__(self, svc: Services) -> None:
        self.services = svc
        self.model = Model(svc.settings)
        self.max_limit = int(setting_or(svc.settings, "ai.max_limit", 1000))
        self.import_batch = max(1, int(setting_or(svc.settings, "ai.import_batch", 500)))

    async def query(self, acc: Any, body: Any) -> dict[str, Any]:
        return await ai_query(self.services, self.model, acc, body, self.max_limit)

    async def suggest_schema(self, acc: Any, body: Any) -> dict[str, Any]:
        return await suggest_schema(self.services, self.model, acc, body)

    async def import_csv(self, acc: Any, body: Any, progress: Any = None) -> dict[str, Any]:
        return await import_csv(self.services, self.model, acc, body, batch=self.import_batch, progress=progress)

    async def close(self) -> None:
        await self.model.close()


@hookimpl
def workeros_register_config_keys() -> list[ConfigKey]:
    return [
        ConfigKey("ai.api_key", "str", None, "Anthropic API key (else the ANTHROPIC_API_KEY environment variable); "
                  "without one the AI endpoints answer 503", secret=True),
        ConfigKey("ai.model", "str", DEFAULT_MODEL, "Model asked for query plans, schema proposals and CSV mappings"),
        ConfigKey("ai.base_url", "str", None, "Base URL of the Messages API (default: Anthropic's)"),
        ConfigKey("ai.max_tokens", "int", 2048, "Largest answer asked of the model, in tokens"),
        ConfigKey("ai.timeout", "float", 60.0, "Seconds to wait for the model's answer"),
        ConfigKey("ai.max_retries", "int", 2, "Retries of a failed call to the model (rate limits, 5xx)"),
        ConfigKey("ai.max_limit", "int", 1000, "Largest 'limit' a query plan may have"),
        ConfigKey("ai.import_batch", "int", 500, "Rows written per batch (one progress step) by a CSV import"),
    ]


@hookimpl
def workeros_register_services() -> list[ServiceEntry]:
    return [ServiceEntry("ai", Ai)]


def _ai(request: web.Request) -> Ai:
    return services(request).get("ai")


@changes_nothing  # plans only read; a read-only key may ask
async def query_route(request: web.Request) -> web.Response:
    return ok(await _ai(request).query(accountability(request), await read_object(request)))


@changes_nothing  # a proposal creates nothing
async def suggest_route(request: web.Request) -> web.Response:
    return ok(await _ai(request).suggest_schema(accountability(request), await read_object(request)))


async def import_route(request: web.Request) -> web.StreamResponse:
    """JSON by default; with ``Accept: application/x-ndjson`` a line
    ``{"progress": {"done", "total"}}`` after each batch, then ``{"data": …}``
    (or ``{"errors": …}`` when the import failed and nothing was written)."""
    acc, body = accountability(request), await read_object(request)
    if "application/x-ndjson" not in request.headers.get("Accept", ""):
        return ok(await _ai(request).import_csv(acc, body))
    response: web.StreamResponse | None = None

    async def progress(done: int, total: int) -> None:
        nonlocal response
        if response is None:
            response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
            await response.prepare(request)
        await response.write(dumps({"progress": {"done": done, "total": total}}) + b"\n")

    try:
        result = await _ai(request).import_csv(acc, body, progress)
    except Exception as exc:
        if response is None:
            raise  # nothing sent yet: the error middleware answers with its status
        from workeros.api import WorkerosError

        error = exc if isinstance(exc, WorkerosError) else WorkerosError("Internal error")
        await response.write(dumps({"errors": [error.to_error()]}) + b"\n")
        await response.write_eof()
        return response
    if response is None:
        return ok(result)
    await response.write(dumps({"data": result}) + b"\n")
    await response.write_eof()
    return response


@hookimpl
def workeros_after_app_created(app: web.Application) -> None:
    app.router.add_post("/api/ai/query", query_route)
    app.router.add_post("/api/ai/suggest-schema", suggest_route)
    app.router.add_post("/api/ai/import-csv", import_route)


# -- MCP tools -------------------------------------------------------------------------------

async def _tool_query(ctx: ToolContext, args: dict[str, Any]) -> Any:
    return await ctx.services.get("ai").query(ctx.accountability, args)


async def _tool_suggest(ctx: ToolContext, args: dict[str, Any]) -> Any:
    return await ctx.services.get("ai").suggest_schema(ctx.accountability, args)


async def _tool_import(ctx: ToolContext, args: dict[str, Any]) -> Any:
    return await ctx.services.get("ai").import_csv(ctx.accountability, args)


PROMPT = {"type": "string", "minLength": 1, "maxLength": 4000}


@hookimpl
def workeros_register_mcp_tools() -> list[McpTool]:
    reading = {"read_only": True, "idempotent": False, "group": "ai"}
    return [
        McpTool("ai_query", "Ask a question about the data in words: returns a query plan over the collections "
                "and fields you may read (checked before it is shown), and with run: true its rows.",
                {"type": "object", "properties": {"prompt": PROMPT, "collection": {"type": "string"},
                                                  "run": {"type": "boolean"}},
                 "required": ["prompt"], "additionalProperties": False},
                _tool_query, title="Ask about the data", **reading),
        McpTool("ai_suggest_schema", "Propose a collection (name and fields) from a description (admins). "
                "Nothing is created: apply it with schema_create_collection.",
                {"type": "object", "properties": {"prompt": PROMPT}, "required": ["prompt"],
                 "additionalProperties": False},
                _tool_suggest, title="Propose a collection", **reading),
        McpTool("ai_import_csv", "Import CSV text into a collection: without mapping, returns the model's mapping of "
                "columns to fields and a preview; with the reviewed mapping and run: true, imports every row "
                "(all or none).",
                {"type": "object", "properties": {
                    "collection": {"type": "string"}, "csv": {"type": "string"},
                    "mapping": {"type": "object", "additionalProperties": {"type": ["string", "null"]}},
                    "run": {"type": "boolean"}}, "required": ["collection", "csv"], "additionalProperties": False},
                _tool_import, title="Import CSV", group="ai"),
    ]


@hookimpl
def workeros_register_admin_pages() -> list[AdminPage]:
    # For every signed-in user: plans only cover what the asker may read.
    return [AdminPage("ai", "nav.ai", str(Path(__file__).parent / "admin" / "ai.js"), icon="spark", order=15)]
