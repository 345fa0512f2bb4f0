"""Running a flow: from its ``start`` operation, each operation's options are
rendered over the data chain, the operation runs, its output is stored under
its key (and as ``$last``), and the run follows ``resolve`` on success or
``reject`` on a rejection or an error, until there is nothing to follow.

Item operations go through the items service with the accountability the
operation names (``$trigger``: the caller who triggered the flow; ``$full``:
the system; a role id: that role). A blocking run happens inside the write
transaction of the change that triggered it, so its item writes use that same
transaction (one write path, and no second writer waiting on the first).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from workeros.api import (
    Accountability,
    Forbidden,
    InvalidPayload,
    NotFound,
    OutboundError,
    Query,
    WorkerosError,
    Writes,
    dumps_str,
    jsonable,
    loads,
    match_data,
    now,
    parse_query,
)

from .templates import render

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from .service import FlowsService

log = logging.getLogger("workeros.flows")


class Rejected(Exception):
    """An operation rejected (a condition that did not match, a request answered
    with an error status): the run follows the operation's ``reject`` link."""

    def __init__(self, data: Any = None) -> None:
        super().__init__("rejected")
        self.data = data


@dataclass
class Trigger:
    """Why a run happens: ``name`` (``items.create``, ``schedule``, ``webhook``,
    ``manual``, ``trigger``…), the ``$trigger`` data, the caller's
    accountability, the depth (flows started by flows), and the open
    transaction of a blocking run."""

    name: str
    data: dict[str, Any]
    accountability: Accountability
    depth: int = 0
    conn: AsyncConnection | None = None


@dataclass
class Run:
    id: str
    flow: str
    trigger: str
    status: str = "resolve"
    error: str | None = None
    data: Any = None
    last_type: str | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    depth: int = 0
    started_at: Any = None
    duration_ms: float = 0.0

    def message(self, flow_name: str) -> str:
        """What a rejected blocking run tells the API caller."""
        if self.error:
            return self.error
        if isinstance(self.data, str) and self.data.strip():
            return self.data[:500]
        if isinstance(self.data, Mapping):
            for name in ("message", "error"):
                if isinstance(self.data.get(name), str):
                    return self.data[name][:500]
        return f"Rejected by the flow {flow_name!r}"


def capped(value: Any, limit: int) -> Any:
    """An output as stored in the run log: itself, or a truncated preview."""
    try:
        text = dumps_str(value)
    except TypeError:
        text = dumps_str(str(value))
    if len(text) <= limit:
        return loads(text)
    return {"$truncated": True, "size": len(text), "preview": text[:limit]}


Operation = Callable[["Engine", Trigger, dict[str, Any], dict[str, Any], dict[str, Any]], Awaitable[Any]]
OPERATIONS: dict[str, Operation] = {}


def operation(name: str) -> Callable[[Operation], Operation]:
    def register(fn: Operation) -> Operation:
        OPERATIONS[name] = fn
        return fn
    return register


class Engine:
    def __init__(self, service: FlowsService) -> None:
        self.service = service
        self.services = service.services

    def accountability_for(self, permissions: str, trigger: Trigger) -> Accountability:
        if permissions == "$trigger":
            return trigger.accountability.with_origin("flow")
        if permissions == "$full":
            return Accountability.system().with_origin("flow")
        return Accountability(user=None, role=permissions, admin=False, origin="flow")

    async def run(self, flow: Mapping[str, Any], trigger: Trigger, run_id: str) -> Run:
        run = Run(id=run_id, flow=flow["id"], trigger=trigger.name, depth=trigger.depth, started_at=now())
        started = time.perf_counter()
        acc = trigger.accountability
        chain: dict[str, Any] = {
            "$trigger": trigger.data, "$last": trigger.data,
            "$accountability": {"user": acc.user, "role": acc.role, "admin": acc.admin, "origin": acc.origin},
            "$env": dict(self.service.env),
        }
        by_key = {op["key"]: op for op in flow["operations"]}
        key = flow.get("start")
        cap = self.service.max_output
        if trigger.depth > self.service.max_depth:
            run.status = "error"
            run.error = (f"Loop protection: the flow {flow['name']!r} was started {trigger.depth} flows deep "
                         f"(flows.max_depth is {self.service.max_depth}); it did not run")
            log.warning("%s", run.error)
            key = None
        while key is not None:
            op = by_key[key]
            step_started = time.perf_counter()
            status, error, output = "resolve", None, None
            try:
                options = render(op["options"], chain)
                output = await OPERATIONS[op["type"]](self, trigger, flow, options, chain)
            except Rejected as exc:
                status, output = "reject", exc.data
            except WorkerosError as exc:
                status, error = "error", exc.message
                output = {"error": exc.message, "code": exc.code}
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a step's failure is recorded, never raised
                log.exception("flow %s: operation %s failed", flow["id"], key)
                status, error = "error", f"The operation failed ({type(exc).__name__})"
                output = {"error": error}
            output = jsonable(output) if output is not None else None
            chain[key] = output
            chain["$last"] = output
            run.data, run.last_type = output, op["type"]
            step = {"key": key, "type": op["type"], "status": status, "output": capped(output, cap),
                    "duration_ms": round((time.perf_counter() - step_started) * 1000, 2)}
            if error:
                step["error"] = error[:1024]
            run.steps.append(step)
            run.status = status
            key = op["resolve"] if status == "resolve" else op["reject"]
            if status != "resolve" and key is not None:
                run.status = "resolve"  # handled by the reject path; its end decides
        run.duration_ms = round((time.perf_counter() - started) * 1000, 2)
        return run


# -- operations ------------------------------------------------------------------------

@operation("condition")
async def condition(engine: Engine, trigger: Trigger, flow: Any, options: dict[str, Any], chain: dict) -> Any:
    # The filter is matched over the chain as it is (its values may be templates, already rendered).
    if match_data(options.get("filter") or {}, chain):
        return None
    raise Rejected(options.get("message"))


def _query(raw: Any) -> Query:
    if raw is None:
        return Query()
    if not isinstance(raw, Mapping):
        raise InvalidPayload("options.query must be an object")
    flat = {k: v if isinstance(v, str) else dumps_str(v) for k, v in raw.items() if v is not None}
    return parse_query(flat)


def _meta(flow: Any, trigger: Trigger) -> dict[str, Any]:
    return {"flow": flow["id"], "flow_depth": trigger.depth + 1}


def _keys(options: dict[str, Any]) -> list[Any] | None:
    key = options.get("key")
    if key is None or key == "":
        return None
    return key if isinstance(key, list) else [key]


async def _writes(engine: Engine, trigger: Trigger, acc: Accountability, collection: str, action: str
                  ) -> tuple[Writes, Any] | None:
    """Inside a blocking run: writes on the triggering transaction."""
    if trigger.conn is None:
        return None
    items = engine.services.items
    await items.rule(acc, collection, action)  # 403 for a collection the caller may not use
    schema = items.schema()
    return Writes(items, trigger.conn, schema), schema.collections[collection]


async def _matching_keys(engine: Engine, acc: Accountability, collection: str, options: dict[str, Any]
                         ) -> list[Any]:
    keys = _keys(options)
    if keys is not None:
        return keys
    query = options.get("query")
    if not isinstance(query, Mapping) or not query.get("filter"):
        raise InvalidPayload("Give options.key, or options.query with a filter")
    schema = engine.services.items.schema()
    if collection not in schema.collections:
        raise Forbidden()
    pk = schema.collections[collection].primary_key
    rows, _ = await engine.services.items.query(acc, collection, _query({**query, "fields": pk, "limit": -1}))
    return [r[pk] for r in rows]


@operation("item-create")
async def item_create(engine: Engine, trigger: Trigger, flow: Any, options: dict[str, Any], chain: dict) -> Any:
    acc = engine.accountability_for(options.get("permissions", "$trigger"), trigger)
    collection, payload = options["collection"], options.get("payload") or {}
    if not isinstance(payload, dict | list):
        raise InvalidPayload("options.payload must be an object or a list of objects")
    open_tx = await _writes(engine, trigger, acc, collection, "create")
    if open_tx is not None:
        writes, c = open_tx
        _, rows = await writes.create(acc, c, payload if isinstance(payload, list) else [payload],
                                      many=isinstance(payload, list), meta=_meta(flow, trigger))
        return rows if isinstance(payload, list) else rows[0]
    return await engine.services.items.create(acc, collection, payload, meta=_meta(flow, trigger))


@operation("item-read")
async def item_read(engine: Engine, trigger: Trigger, flow: Any, options: dict[str, Any], chain: dict) -> Any:
    acc = engine.accountability_for(options.get("permissions", "$trigger"), trigger)
    collection, query = options["collection"], _query(options.get("query"))
    keys = _keys(options)
    if keys is not None and len(keys) == 1 and not isinstance(options.get("key"), list):
        return await engine.services.items.get(acc, collection, keys[0], query)
    if keys is not None:
        schema = engine.services.items.schema()
        if collection not in schema.collections:
            raise Forbidden()
        pk = schema.collections[collection].primary_key
        extra = {pk: {"_in": keys}}
        query = dataclasses.replace(query, filter={"_and": [query.filter, extra]} if query.filter else extra)
    rows, _ = await engine.services.items.query(acc, collection, query)
    return rows


@operation("item-update")
async def item_update(engine: Engine, trigger: Trigger, flow: Any, options: dict[str, Any], chain: dict) -> Any:
    acc = engine.accountability_for(options.get("permissions", "$trigger"), trigger)
    collection, payload = options["collection"], options.get("payload") or {}
    if not isinstance(payload, dict):
        raise InvalidPayload("options.payload must be an object")
    keys = await _matching_keys(engine, acc, collection, options)
    if not keys:
        return []
    open_tx = await _writes(engine, trigger, acc, collection, "update")
    if open_tx is not None:
        writes, c = open_tx
        _, _, rows = await writes.update(acc, c, payload, keys=keys, meta=_meta(flow, trigger))
        return rows
    return await engine.services.items.update_many(acc, collection, keys, payload, meta=_meta(flow, trigger))


@operation("item-delete")
async def item_delete(engine: Engine, trigger: Trigger, flow: Any, options: dict[str, Any], chain: dict) -> Any:
    acc = engine.accountability_for(options.get("permissions", "$trigger"), trigger)
    collection = options["collection"]
    keys = await _matching_keys(engine, acc, collection, options)
    if not keys:
        return []
    open_tx = await _writes(engine, trigger, acc, collection, "delete")
    if open_tx is not None:
        writes, c = open_tx
        await writes.delete(acc, c, keys, meta=_meta(flow, trigger))
        return keys
    await engine.services.items.delete_many(acc, collection, keys, meta=_meta(flow, trigger))
    return keys


@operation("request")
async def request(engine: Engine, trigger: Trigger, flow: Any, options: dict[str, Any], chain: dict) -> Any:
    method = str(options.get("method") or "GET").upper()
    headers = options.get("headers") or {}
    if not isinstance(headers, Mapping) or not all(isinstance(v, str) for v in headers.values()):
        raise InvalidPayload("options.headers must be an object of strings")
    headers = dict(headers)
    body = options.get("body")
    data: bytes | None = None
    if body is not None and method not in ("GET", "HEAD"):
        if isinstance(body, str):
            data = body.encode()
        else:
            data = dumps_str(body).encode()
            headers.setdefault("Content-Type", "application/json")
    try:
        result = await engine.services.outbound.fetch(method, str(options["url"]), headers=headers, data=data)
    except OutboundError as exc:  # refused, unreachable, timed out: an error of this step
        raise InvalidPayload(exc.message) from None
    text = result.text()
    try:
        parsed: Any = loads(text) if text else None
    except ValueError:
        parsed = text
    output = {"status": result.status, "headers": {k.lower(): v for k, v in result.headers.items()},
              "data": parsed}
    if not 200 <= result.status < 300:
        raise Rejected(output)
    return output


@operation("mail")
async def mail(engine: Engine, trigger: Trigger, flow: Any, options: dict[str, Any], chain: dict) -> Any:
    from workeros.hookspecs.email import EmailMessage

    mailer = engine.services.mailer
    if mailer is None:
        raise InvalidPayload("No email backend is configured (smtp.host)")
    recipients = options["to"] if isinstance(options["to"], list) else [options["to"]]
    body = options.get("body")
    text = body if isinstance(body, str) else dumps_str(body) if body is not None else ""
    sent = []
    for to in recipients:
        if not isinstance(to, str) or "@" not in to:
            raise InvalidPayload(f"Not an email address: {str(to)[:80]!r}")
        await mailer.send(EmailMessage(to=to, subject=str(options["subject"])[:998], text=text))
        sent.append(to)
    return {"sent": sent}


@operation("log")
async def log_step(engine: Engine, trigger: Trigger, flow: Any, options: dict[str, Any], chain: dict) -> Any:
    message = options.get("message")
    log.info("flow %s (%s): %s", flow["name"], flow["id"],
             message if isinstance(message, str) else dumps_str(message))
    return message


@operation("transform")
async def transform(engine: Engine, trigger: Trigger, flow: Any, options: dict[str, Any], chain: dict) -> Any:
    return options.get("json")


@operation("sleep")
async def sleep(engine: Engine, trigger: Trigger, flow: Any, options: dict[str, Any], chain: dict) -> Any:
    try:
        ms = float(options.get("ms") or 0)
    except (TypeError, ValueError):
        raise InvalidPayload("options.ms must be a number of milliseconds") from None
    await asyncio.sleep(max(0.0, min(ms, engine.service.max_sleep_ms)) / 1000)
    return None


@operation("trigger")
async def trigger_flow(engine: Engine, trigger: Trigger, flow: Any, options: dict[str, Any], chain: dict) -> Any:
    target = await engine.service.find(str(options["flow"]))
    if target is None:
        raise NotFound(f"The flow {str(options['flow'])[:64]!r} does not exist")
    sub = Trigger("trigger", {"payload": options.get("payload"), "flow": flow["id"]}, trigger.accountability,
                  depth=trigger.depth + 1, conn=trigger.conn)
    run = await engine.service.execute(target, sub)
    if run.status != "resolve":
        raise Rejected(run.data if run.error is None else {"error": run.error})
    return run.data


def _functions(engine: Engine) -> Any:
    service = engine.services.get("functions")
    if service is None:
        raise InvalidPayload("Operations of this type need the functions plugin, which is not installed")
    return service


SCRIPT_WRAPPER = "export default async function (data, ctx) {\n%s\n}\n"


@operation("script")
async def script(engine: Engine, trigger: Trigger, flow: Any, options: dict[str, Any], chain: dict) -> Any:
    """JavaScript in the sandbox: a module with a default export, or a function
    body run as ``async function (data, ctx)`` where ``data`` is the data chain."""
    code = options.get("code")
    if not isinstance(code, str) or not code.strip():
        raise InvalidPayload("options.code must be JavaScript source text")
    if "export default" not in code:
        code = SCRIPT_WRAPPER % code
    acc = engine.accountability_for(options.get("permissions", "$trigger"), trigger)
    timeout = options.get("timeout_ms")
    return await _functions(engine).run_code(acc, code, jsonable(chain),
                                             timeout_ms=timeout if isinstance(timeout, int) else None)


@operation("function")
async def function(engine: Engine, trigger: Trigger, flow: Any, options: dict[str, Any], chain: dict) -> Any:
    """A saved function, called as ``POST`` with ``payload`` as its body, by
    the trigger's caller (its rules on who may run it apply)."""
    name = options.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidPayload("options.name must name a function")
    acc = engine.accountability_for(options.get("permissions", "$trigger"), trigger)
    req = {"method": "POST", "query": {}, "headers": {}, "body": jsonable(options.get("payload"))}
    return await _functions(engine).invoke(acc, name, req)
