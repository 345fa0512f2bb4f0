"""The tool catalog (every plugin's ``workeros_register_mcp_tools``), the
per-key guards, and one tool call: arguments checked against the tool's JSON
Schema, the handler run with the caller's accountability, the result or the
error as MCP content."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jsonschema

from workeros.api import (
    Accountability,
    Forbidden,
    InvalidPayload,
    Services,
    StartupError,
    WorkerosError,
    activity,
    await_me_maybe,
    dumps_str,
    jsonable,
)
from workeros.hookspecs.mcp import McpTool, ToolContext

log = logging.getLogger("workeros.mcp")

#: Why a key may not call a tool: the guard's name (recorded in ``mcp.blocked``).
READ_ONLY_GUARD = "mcp_read_only"
ALLOWLIST_GUARD = "mcp_tools"


@dataclass(frozen=True)
class Entry:
    tool: McpTool
    plugin: str
    validator: Any

    def describe(self) -> dict[str, Any]:
        """The tool as ``tools/list`` shows it."""
        t = self.tool
        out: dict[str, Any] = {
            "name": t.name,
            "description": t.description,
            "inputSchema": dict(t.input_schema),
            "annotations": {
                "title": t.title or t.name,
                "readOnlyHint": t.read_only,
                "destructiveHint": t.destructive,
                "idempotentHint": t.idempotent,
                "openWorldHint": False,
            },
        }
        if t.title:
            out["title"] = t.title
        if t.output_schema is not None:
            out["outputSchema"] = dict(t.output_schema)
        return out


#: Input schemas already checked against their metaschema, by their JSON text:
#: checking is slow (a metaschema walk) and the same tools are collected at
#: every app start of a process.
_checked: dict[str, Any] = {}


def _validator(schema: Mapping[str, Any]) -> Any:
    """A validator for ``schema``, after checking that ``schema`` is a valid JSON
    Schema (once per distinct schema per process)."""
    key = json.dumps(schema, sort_keys=True, default=str)
    cls = _checked.get(key)
    if cls is None:
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        cls.check_schema(schema)
        _checked[key] = cls
    return cls(schema)


class Catalog:
    """Every registered tool by name; two tools with one name is a startup
    error naming both plugins."""

    def __init__(self, collected: Iterable[tuple[str, Iterable[McpTool]]]) -> None:
        self.entries: dict[str, Entry] = {}
        for info, tools in collected:
            plugin = getattr(info, "name", str(info))
            for tool in tools or ():
                if tool.name in self.entries:
                    other = self.entries[tool.name].plugin
                    raise StartupError(f"Two MCP tools are named {tool.name!r}: plugins {other!r} and {plugin!r}")
                self.entries[tool.name] = Entry(tool, plugin, _validator(tool.input_schema))

    @classmethod
    def of(cls, services: Services) -> Catalog:
        return cls(services.plugins.collect("workeros_register_mcp_tools"))

    def names(self) -> list[str]:
        return sorted(self.entries)

    # -- the guards ---------------------------------------------------------------------

    @staticmethod
    def listed(acc: Accountability, name: str) -> bool:
        """Whether ``tools/list`` shows the tool to this caller (the
        ``mcp_tools`` allowlist hides every other tool)."""
        return acc.mcp_tools is None or name in acc.mcp_tools

    def refusal(self, acc: Accountability, entry: Entry) -> str | None:
        """The guard refusing this call, or ``None``."""
        if not self.listed(acc, entry.tool.name):
            return ALLOWLIST_GUARD
        if acc.mcp_read_only and not entry.tool.read_only:
            return READ_ONLY_GUARD
        return None

    def view(self, acc: Accountability) -> list[dict[str, Any]]:
        """Every tool with this caller's effective view (``GET /api/mcp/tools``)."""
        out = []
        for name in self.names():
            entry = self.entries[name]
            refused = self.refusal(acc, entry)
            out.append({**entry.describe(), "group": entry.tool.group, "plugin": entry.plugin,
                        "listed": self.listed(acc, name), "callable": refused is None, "refused_by": refused})
        return out

    def visible(self, acc: Accountability) -> list[dict[str, Any]]:
        return [self.entries[n].describe() for n in self.names() if self.listed(acc, n)]

    # -- a call -------------------------------------------------------------------------

    async def call(self, services: Services, acc: Accountability, name: str, arguments: Any) -> dict[str, Any]:
        """A ``tools/call`` result (``CallToolResult``): the handler's value, or
        ``isError`` with the contract's error envelope. Never a traceback."""
        entry = self.entries[name]
        guard = self.refusal(acc, entry)
        if guard is not None:
            await _record_block(services, acc, name, guard)
            if guard == READ_ONLY_GUARD:
                message = f"This API key is read-only (mcp_read_only): tool {name!r} changes data"
            else:
                message = f"This API key may not call tool {name!r} (mcp_tools)"
            return error_result(Forbidden(message, guard=guard))
        if arguments is None:
            arguments = {}
        errors = sorted(entry.validator.iter_errors(arguments), key=lambda e: list(e.absolute_path))
        if errors:
            first = errors[0]
            where = "/".join(str(p) for p in first.absolute_path) or "(arguments)"
            return error_result(InvalidPayload(f"{where}: {first.message}"[:500], tool=name))
        try:
            value = await await_me_maybe(entry.tool.handler(ToolContext(acc, services), dict(arguments)))
        except WorkerosError as exc:
            return error_result(exc)
        except Exception:
            log.exception("MCP tool %s failed", name)
            return error_result(WorkerosError("Internal error"))
        return success_result(value)


def success_result(value: Any) -> dict[str, Any]:
    data = jsonable(value)
    return {"content": [{"type": "text", "text": dumps_str(data)}], "structuredContent": {"data": data},
            "isError": False}


def error_result(exc: WorkerosError) -> dict[str, Any]:
    body = {"errors": [exc.to_error()]}
    return {"content": [{"type": "text", "text": dumps_str(body)}], "structuredContent": body, "isError": True}


async def _record_block(services: Services, acc: Accountability, name: str, guard: str) -> None:
    async with services.db.transaction() as conn:
        await activity.record(conn, action="mcp.blocked", accountability=acc,
                              meta={"tool": name, "guard": guard, "api_key": acc.api_key})
