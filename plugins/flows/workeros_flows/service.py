"""Flows: definitions (admin CRUD), what triggers them, their runs, the scheduler."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
import uuid
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from workeros.api import (
    Accountability,
    Forbidden,
    InvalidCredentials,
    InvalidPayload,
    NotFound,
    Outbox,
    Services,
    jsonable,
    now,
    setting_or,
    users,
)

from .definitions import check_flow, cron
from .engine import Engine, Run, Trigger
from .tables import flows, runs

log = logging.getLogger("workeros.flows")

CHANNEL = "flows"
PUBLIC = ("id", "name", "description", "status", "trigger", "options", "operations", "start", "created_at",
          "updated_at")


def _public(row: Mapping[str, Any]) -> dict[str, Any]:
    return jsonable({k: row[k] for k in PUBLIC})


def _run_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return jsonable({"id": row["id"], "flow": row["flow"], "trigger": row["trigger"], "status": row["status"],
                     "error": row["error"], "steps": row["steps"], "depth": row["depth"],
                     "started_at": row["started_at"], "duration_ms": row["duration_ms"]})


class FlowsService:
    """``services.get("flows")``."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.db = services.db
        s = services.settings
        self.max_depth = int(setting_or(s, "flows.max_depth", 5))
        self.max_output = int(setting_or(s, "flows.max_output_bytes", 16384))
        self.max_sleep_ms = float(setting_or(s, "flows.max_sleep_ms", 60000))
        self.retention_days = float(setting_or(s, "flows.run_retention_days", 30))
        self.env = dict(setting_or(s, "flows.env", None) or {})
        self.engine = Engine(self)
        self._active: list[dict[str, Any]] | None = None
        self._loaded_at = 0.0
        self._cache_seconds = float(setting_or(s, "flows.cache_seconds", 5.0))
        self._unsubscribe: Any = None
        #: Runs are written in batches by one task (one transaction per round,
        #: not one per run), after the transaction of a blocking run.
        self.recorder: Outbox[Run] = Outbox(self._record_batch, name="flow-runs")
        #: Built once: a statement built anew for every batch costs its cache key each time.
        self._insert_runs = runs.insert()

    @classmethod
    async def open(cls, services: Services) -> FlowsService:
        service = cls(services)
        service._unsubscribe = services.events.subscribe(CHANNEL, service._changed_elsewhere)
        return service

    async def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        await self.recorder.close()

    def _changed_elsewhere(self, message: dict[str, Any]) -> None:
        self._active = None

    async def _changed(self) -> None:
        self._active = None
        try:
            await self.services.events.publish(CHANNEL, {"changed": True})
        except Exception:  # other instances still reload within flows.cache_seconds
            log.exception("publishing a flow change failed")

    @property
    def functions(self) -> bool:
        return self.services.get("functions") is not None

    # -- definitions (admin) -------------------------------------------------------------
    @staticmethod
    def _admin(acc: Accountability) -> None:
        if not acc.admin:
            raise Forbidden()

    async def _row(self, conn: Any, key: str) -> Mapping[str, Any]:
        try:
            uuid.UUID(str(key))
        except ValueError:
            raise NotFound("Flow not found") from None
        row = (await conn.execute(sa.select(flows).where(flows.c.id == str(key)))).mappings().first()
        if row is None:
            raise NotFound("Flow not found")
        return row

    async def list(self, acc: Accountability) -> list[dict[str, Any]]:
        self._admin(acc)
        async with self.db.read() as conn:
            rows = (await conn.execute(sa.select(flows).order_by(flows.c.created_at, flows.c.id))).mappings()
            return [_public(r) for r in rows]

    async def get(self, acc: Accountability, key: str) -> dict[str, Any]:
        self._admin(acc)
        async with self.db.read() as conn:
            return _public(await self._row(conn, key))

    async def find(self, key: str) -> dict[str, Any] | None:
        """A flow by id, whatever its status (the ``trigger`` operation)."""
        async with self.db.read() as conn:
            try:
                return dict(await self._row(conn, key))
            except NotFound:
                return None

    async def create(self, acc: Accountability, data: Any) -> dict[str, Any]:
        self._admin(acc)
        values = check_flow(data, current=None, functions=self.functions)
        t = now()
        row = {"id": str(uuid.uuid4()), **values, "created_at": t, "updated_at": t}
        async with self.db.transaction() as conn:
            await conn.execute(flows.insert().values(**row))
        await self._changed()
        return _public(row)

    async def update(self, acc: Accountability, key: str, data: Any) -> dict[str, Any]:
        self._admin(acc)
        async with self.db.transaction() as conn:
            current = dict(await self._row(conn, key))
            values = check_flow(data, current={k: current[k] for k in
                                               ("name", "description", "status", "trigger", "options",
                                                "operations", "start")}, functions=self.functions)
            await conn.execute(flows.update().where(flows.c.id == str(key)).values(**values, updated_at=now()))
            out = _public(await self._row(conn, key))
        await self._changed()
        return out

    async def delete(self, acc: Accountability, key: str) -> None:
        self._admin(acc)
        async with self.db.transaction() as conn:
            await self._row(conn, key)
            await conn.execute(runs.delete().where(runs.c.flow == str(key)))
            await conn.execute(flows.delete().where(flows.c.id == str(key)))
        await self._changed()

    async def runs(self, acc: Accountability, key: str, *, limit: int = 50, offset: int = 0,
                   status: str | None = None) -> list[dict[str, Any]]:
        """The flow's runs, newest first, each with every step."""
        self._admin(acc)
        async with self.db.read() as conn:
            await self._row(conn, key)
            q = sa.select(runs).where(runs.c.flow == str(key))
            if status:
                q = q.where(runs.c.status == status)
            q = q.order_by(runs.c.started_at.desc(), runs.c.id).limit(limit).offset(offset)
            return [_run_row(r) for r in (await conn.execute(q)).mappings()]

    # -- running ---------------------------------------------------------------------------
    async def active(self) -> list[dict[str, Any]]:
        """Active flows (cached; reloaded on a change here or on another instance,
        and at least every ``flows.cache_seconds``)."""
        if self._active is None or time.monotonic() - self._loaded_at > self._cache_seconds:
            async with self.db.read() as conn:
                rows = (await conn.execute(sa.select(flows).where(flows.c.status == "active")
                                           .order_by(flows.c.created_at, flows.c.id))).mappings()
                self._active = [dict(r) for r in rows]
            self._loaded_at = time.monotonic()
        return self._active

    async def event_flows(self, event: str, collection: str | None, blocking: bool) -> list[dict[str, Any]]:
        out = []
        for flow in await self.active():
            if flow["trigger"] != "event":
                continue
            o = flow["options"]
            if bool(o.get("blocking")) != blocking or event not in o.get("events", ()):
                continue
            if o.get("collections") is not None and collection not in o["collections"]:
                continue
            out.append(flow)
        return out

    async def execute(self, flow: Mapping[str, Any], trigger: Trigger) -> Run:
        """Run ``flow`` and queue its record (written by the recorder's task,
        so a blocking run is recorded after its transaction, rejected or not)."""
        run = await self.engine.run(flow, trigger, str(uuid.uuid4()))
        self.recorder.put(run)
        return run

    async def _record_batch(self, batch: list[Run]) -> None:
        rows = [{"id": run.id, "flow": run.flow, "trigger": run.trigger[:64], "status": run.status,
                 "error": run.error and run.error[:1024], "steps": run.steps, "depth": run.depth,
                 "started_at": run.started_at, "duration_ms": run.duration_ms} for run in batch]
        try:
            async with self.db.transaction() as conn:
                await conn.execute(self._insert_runs, rows)
        except Exception:  # a flow deleted meanwhile: record the others one by one
            for row in rows:
                try:
                    async with self.db.transaction() as conn:
                        await conn.execute(self._insert_runs, [row])
                except Exception:
                    log.exception("recording run %s of flow %s failed", row["id"], row["flow"])

    # -- triggers --------------------------------------------------------------------------
    async def before_items(self, mutation: Any) -> None:
        """Blocking event flows: inside the write's transaction, before it
        happens. A run that ends rejected refuses the write (400 with the
        flow's message); a run that ends with a ``transform`` replaces the payload."""
        event = f"items.{mutation.action}"
        matching = await self.event_flows(event, mutation.collection, blocking=True)
        if not matching:
            return
        depth = int(mutation.meta.get("flow_depth", 0))
        base = {"event": event, "collection": mutation.collection}
        if mutation.action == "create":
            for i, item in enumerate(mutation.payloads):
                for flow in matching:
                    data = {**base, "keys": [], "payload": item}
                    item = await self._blocking(flow, event, data, mutation.accountability, depth,
                                                mutation.connection, item)
                mutation.payloads[i] = item
        else:
            item = mutation.payloads[0] if mutation.payloads else None
            for flow in matching:
                data = {**base, "keys": list(mutation.keys), "payload": item, "before": mutation.before}
                item = await self._blocking(flow, event, data, mutation.accountability, depth,
                                            mutation.connection, item)
            if mutation.payloads:
                mutation.payloads[0] = item

    async def _blocking(self, flow: Mapping[str, Any], event: str, data: dict[str, Any], acc: Accountability,
                        depth: int, conn: Any, payload: Any) -> Any:
        run = await self.execute(flow, Trigger(event, data, acc, depth=depth, conn=conn))
        if run.status != "resolve":
            raise InvalidPayload(run.message(flow["name"]))
        if run.last_type == "transform" and isinstance(run.data, dict) and payload is not None:
            return run.data
        return payload

    async def after_items(self, mutation: Any) -> None:
        event = f"items.{mutation.action}"
        matching = await self.event_flows(event, mutation.collection, blocking=False)
        if not matching:
            return
        depth = int(mutation.meta.get("flow_depth", 0))
        rows = mutation.after if mutation.action != "delete" else mutation.before
        by_key = dict(zip(mutation.keys, rows or [None] * len(mutation.keys), strict=False))
        for key in mutation.keys:
            row = by_key.get(key)
            data = {"event": event, "collection": mutation.collection, "keys": [key],
                    "payload": row if mutation.action != "delete" else None}
            if mutation.action == "delete":
                data["before"] = row
            for flow in matching:
                await self.execute(flow, Trigger(event, data, mutation.accountability, depth=depth))

    async def _auth_data(self, event: Any) -> dict[str, Any]:
        email = event.email
        if email is None and event.user:  # sign-in events name the user only
            query = sa.select(users.c.email).where(users.c.id == event.user)
            if event.connection is not None:
                email = (await event.connection.execute(query)).scalar()
            else:
                async with self.db.read() as conn:
                    email = (await conn.execute(query)).scalar()
        return {"event": f"auth.{event.name}", "collection": "wos_users", "keys": [event.user] if event.user else [],
                "payload": {"user": event.user, "email": email, "provider": event.provider}}

    async def before_auth(self, event: Any) -> None:
        name = f"auth.{event.name}"
        matching = await self.event_flows(name, "wos_users", blocking=True)
        if matching:
            data = await self._auth_data(event)
            for flow in matching:
                await self._blocking(flow, name, data, event.accountability, 0, event.connection, None)

    async def after_auth(self, event: Any) -> None:
        name = f"auth.{event.name}"
        matching = await self.event_flows(name, "wos_users", blocking=False)
        if matching:
            data = await self._auth_data(event)
            for flow in matching:
                await self.execute(flow, Trigger(name, data, event.accountability))

    async def trigger(self, acc: Accountability, key: str, *, payload: Any, query: Mapping[str, Any],
                      method: str, via: str = "rest") -> Any:
        """``POST /api/flows/trigger/{id}``: run a webhook or manual flow now and
        answer with the last step's data."""
        async with self.db.read() as conn:
            flow = dict(await self._row(conn, key))
        if flow["status"] != "active" or flow["trigger"] not in ("webhook", "manual"):
            raise NotFound("Flow not found")
        if flow["trigger"] == "manual" and acc.user is None and not acc.admin:
            raise InvalidCredentials("This flow runs for signed-in callers only")
        data = {"payload": payload, "query": dict(query), "method": method}
        if flow["trigger"] == "manual":
            data["user"] = acc.user
        run = await self.execute(flow, Trigger(flow["trigger"], data, acc))
        if run.status != "resolve":
            raise InvalidPayload(run.message(flow["name"]))
        return run.data

    async def run_now(self, acc: Accountability, key: str, payload: Any) -> dict[str, Any]:
        """Run any flow now as an admin (the MCP ``flows_run`` tool): the run's record."""
        self._admin(acc)
        async with self.db.read() as conn:
            flow = dict(await self._row(conn, key))
        run = await self.execute(flow, Trigger("manual", {"payload": payload, "query": {}, "user": acc.user}, acc))
        await self.recorder.flush()
        return jsonable({"id": run.id, "status": run.status, "error": run.error, "data": run.data,
                         "steps": run.steps, "duration_ms": run.duration_ms})

    # -- the schedule ------------------------------------------------------------------------
    async def claim_tick(self, flow_id: str, tick: dt.datetime) -> bool:
        """Whether this instance won ``tick`` of the flow: one conditional
        update, which exactly one instance sharing the database can make."""
        async with self.db.transaction() as conn:
            result = await conn.execute(flows.update().where(
                flows.c.id == flow_id, flows.c.status == "active",
                sa.or_(flows.c.last_tick.is_(None), flows.c.last_tick < tick)).values(last_tick=tick))
            return result.rowcount == 1

    async def prune(self) -> None:
        if self.retention_days <= 0:
            return
        cutoff = now() - dt.timedelta(days=self.retention_days)
        async with self.db.transaction() as conn:
            await conn.execute(runs.delete().where(runs.c.started_at < cutoff))


class Scheduler:
    """Runs schedule flows: each instance computes the same cron ticks and
    claims each through the database, so a tick runs once across instances.
    Ticks missed while no instance ran are skipped (no catch-up)."""

    def __init__(self, service: FlowsService) -> None:
        self.service = service
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._next: dict[tuple[str, str], dt.datetime] = {}
        self._pruned = 0.0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="flows-scheduler")

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._task, 5)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            wait = 1.0
            try:
                wait = await self.tick()
                if time.monotonic() - self._pruned > 3600:
                    self._pruned = time.monotonic()
                    await self.service.prune()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the flow scheduler failed; retrying")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), wait)

    async def tick(self) -> float:
        """Run what is due; return how long to wait before the next look."""
        service = self.service
        t = now()
        scheduled = [f for f in await service.active() if f["trigger"] == "schedule"]
        seen = set()
        for flow in scheduled:
            key = (flow["id"], flow["options"]["cron"])
            seen.add(key)
            if key not in self._next:
                self._next[key] = cron(key[1]).get_next(dt.datetime, start_time=t)
                continue
            tick = self._next[key]
            if tick > t:
                continue
            self._next[key] = cron(key[1]).get_next(dt.datetime, start_time=t)  # missed ticks are skipped
            if await service.claim_tick(flow["id"], tick):
                data = {"tick": tick.isoformat().replace("+00:00", "Z"), "cron": key[1]}
                trigger = Trigger("schedule", data, Accountability.anonymous(origin="flow"))
                service.services.background.spawn(service.execute(flow, trigger), name=f"flow:{flow['id']}")
        for stale in set(self._next) - seen:
            del self._next[stale]
        if not self._next:
            return 1.0
        soonest = min(self._next.values())
        return max(0.02, min(1.0, (soonest - now()).total_seconds()))


