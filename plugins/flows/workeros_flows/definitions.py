"""What a flow is: checking a definition before it is stored (400 naming the problem)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from workeros.api import InvalidPayload, InvalidQuery, check_data_filter

if TYPE_CHECKING:
    from croniter import croniter

TRIGGERS = ("event", "schedule", "webhook", "manual")
STATUSES = ("active", "inactive")
EVENTS = ("items.create", "items.update", "items.delete",
          "auth.login", "auth.signup", "auth.logout", "auth.password_reset")
OPERATION_TYPES = ("condition", "item-create", "item-read", "item-update", "item-delete", "request", "mail",
                   "log", "transform", "sleep", "trigger", "script", "function")
#: Types that run code in a sandbox: they need the functions plugin.
CODE_TYPES = ("script", "function")
KEY = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
FIELDS = ("name", "description", "status", "trigger", "options", "operations", "start")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")
MAX_OPERATIONS = 100


def cron(expression: str) -> croniter:
    """A croniter for a 5-field (minute first) or 6-field (seconds first) expression."""
    from croniter import croniter  # (with dateutil) at the first schedule, not at start

    fields = expression.split()
    return croniter(expression, second_at_beginning=len(fields) == 6)


def check_cron(expression: Any) -> str:
    if not isinstance(expression, str) or len(expression.split()) not in (5, 6):
        raise InvalidPayload("options.cron must be a cron expression of 5 fields (or 6, seconds first)")
    try:
        cron(expression)
    except (ValueError, KeyError) as exc:
        raise InvalidPayload(f"options.cron is not a valid cron expression: {str(exc)[:120]}") from None
    return expression


def check_trigger_options(trigger: str, options: Any) -> dict[str, Any]:
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise InvalidPayload("options must be an object")
    out = dict(options)
    if trigger == "event":
        events = options.get("events")
        if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
            raise InvalidPayload("options.events must be a non-empty list of event names")
        for event in events:
            if event not in EVENTS:
                raise InvalidPayload(f"Unknown event {event[:64]!r}; events are {', '.join(EVENTS)}")
        collections = options.get("collections")
        if collections is not None and (not isinstance(collections, list)
                                        or not all(isinstance(c, str) and c for c in collections)):
            raise InvalidPayload("options.collections must be a list of collection names, or null for all")
        if not isinstance(options.get("blocking", False), bool):
            raise InvalidPayload("options.blocking must be true or false")
        out["blocking"] = bool(options.get("blocking", False))
        out["collections"] = collections
    elif trigger == "schedule":
        out["cron"] = check_cron(options.get("cron"))
    return out


def check_operation(op: Any, index: int, functions: bool) -> dict[str, Any]:
    where = f"operations[{index}]"
    if not isinstance(op, dict):
        raise InvalidPayload(f"{where} must be an object")
    unknown = sorted(set(op) - {"key", "type", "options", "resolve", "reject", "name"})
    if unknown:
        raise InvalidPayload(f"{where}: unknown field {unknown[0]!r}")
    key = op.get("key")
    if not isinstance(key, str) or not KEY.match(key):
        raise InvalidPayload(f"{where}.key must match {KEY.pattern}")
    kind = op.get("type")
    if kind not in OPERATION_TYPES:
        raise InvalidPayload(f"{where}.type must be one of {', '.join(OPERATION_TYPES)}")
    if kind in CODE_TYPES and not functions:
        raise InvalidPayload(f"{where}: operations of type {kind!r} need the functions plugin, which is not "
                             "installed")
    options = op.get("options") or {}
    if not isinstance(options, dict):
        raise InvalidPayload(f"{where}.options must be an object")
    for link in ("resolve", "reject"):
        if op.get(link) is not None and not isinstance(op.get(link), str):
            raise InvalidPayload(f"{where}.{link} must be an operation key or null")
    if kind == "condition":
        try:
            check_data_filter(options.get("filter"))
        except InvalidQuery as exc:
            raise InvalidPayload(f"{where}.options.filter: {exc.message}") from None
    elif kind.startswith("item-"):
        if not isinstance(options.get("collection"), str) or not options["collection"]:
            raise InvalidPayload(f"{where}.options.collection is required")
        permissions = options.get("permissions", "$trigger")
        if not isinstance(permissions, str) or not permissions:
            raise InvalidPayload(f"{where}.options.permissions must be \"$trigger\", \"$full\" or a role id")
    elif kind == "request":
        if not isinstance(options.get("url"), str) or not options["url"]:
            raise InvalidPayload(f"{where}.options.url is required")
        method = str(options.get("method", "GET")).upper()
        if method not in METHODS:
            raise InvalidPayload(f"{where}.options.method must be one of {', '.join(METHODS)}")
    elif kind == "mail":
        for name in ("to", "subject"):
            if not options.get(name):
                raise InvalidPayload(f"{where}.options.{name} is required")
    elif kind == "sleep":
        ms = options.get("ms")
        if not isinstance(ms, int | str) or isinstance(ms, bool):
            raise InvalidPayload(f"{where}.options.ms must be a number of milliseconds")
    elif kind == "script":
        if not isinstance(options.get("code"), str) or not options["code"].strip():
            raise InvalidPayload(f"{where}.options.code is required (JavaScript)")
    elif kind == "function":
        if not isinstance(options.get("name"), str) or not options["name"]:
            raise InvalidPayload(f"{where}.options.name is required (a function's name)")
    elif kind == "trigger":
        if not options.get("flow"):
            raise InvalidPayload(f"{where}.options.flow is required (a flow id)")
    return {"key": key, "type": kind, "options": options, "resolve": op.get("resolve"), "reject": op.get("reject"),
            **({"name": op["name"]} if isinstance(op.get("name"), str) else {})}


def check_graph(operations: list[dict[str, Any]], start: str | None) -> None:
    keys = [op["key"] for op in operations]
    if len(set(keys)) != len(keys):
        raise InvalidPayload("Operation keys must be unique")
    by_key = {op["key"]: op for op in operations}
    for op in operations:
        for link in ("resolve", "reject"):
            if op[link] is not None and op[link] not in by_key:
                raise InvalidPayload(f"Operation {op['key']!r}: {link} names no operation ({op[link][:64]!r})")
    if start is not None and start not in by_key:
        raise InvalidPayload(f"start names no operation ({start[:64]!r})")
    # No cycles: a run visits each operation at most once.
    state: dict[str, int] = {}

    def visit(key: str) -> None:
        state[key] = 1
        for link in ("resolve", "reject"):
            nxt = by_key[key][link]
            if nxt is None:
                continue
            if state.get(nxt) == 1:
                raise InvalidPayload(f"Operations form a loop through {nxt!r}")
            if nxt not in state:
                visit(nxt)
        state[key] = 2

    for key in keys:
        if key not in state:
            visit(key)


def check_flow(data: Any, *, current: dict[str, Any] | None, functions: bool) -> dict[str, Any]:
    """A full, checked flow from a create body (``current`` None) or a patch
    over ``current``."""
    if not isinstance(data, dict):
        raise InvalidPayload("Expected a JSON object")
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise InvalidPayload(f"Unknown flow field {unknown[0]!r}")
    merged = {"description": None, "status": "active", "options": {}, "operations": [], "start": None,
              **(current or {}), **data}
    if current is None and "trigger" not in data:
        raise InvalidPayload("'trigger' is required")
    name = merged.get("name")
    if not isinstance(name, str) or not 0 < len(name.strip()) <= 255:
        raise InvalidPayload("'name' must be a non-empty string of at most 255 characters")
    if merged["description"] is not None and not isinstance(merged["description"], str):
        raise InvalidPayload("'description' must be a string")
    if merged["status"] not in STATUSES:
        raise InvalidPayload("'status' must be \"active\" or \"inactive\"")
    if merged["trigger"] not in TRIGGERS:
        raise InvalidPayload(f"'trigger' must be one of {', '.join(TRIGGERS)}")
    options = check_trigger_options(merged["trigger"], merged["options"])
    if not isinstance(merged["operations"], list) or len(merged["operations"]) > MAX_OPERATIONS:
        raise InvalidPayload(f"'operations' must be a list of at most {MAX_OPERATIONS} operations")
    operations = [check_operation(op, i, functions) for i, op in enumerate(merged["operations"])]
    start = merged["start"]
    if start is None and operations and ("operations" in data or current is None):
        start = operations[0]["key"]
    if start is not None and not isinstance(start, str):
        raise InvalidPayload("'start' must be an operation key")
    check_graph(operations, start)
    return {"name": name.strip(), "description": merged["description"], "status": merged["status"],
            "trigger": merged["trigger"], "options": options, "operations": operations, "start": start}
