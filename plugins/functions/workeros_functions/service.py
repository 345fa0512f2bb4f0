"""Functions: definitions (admin CRUD, versions), invocation with limits, logs."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import sqlalchemy as sa

from workeros.api import (
    Accountability,
    Conflict,
    Forbidden,
    FunctionError,
    InvalidPayload,
    NotFound,
    Query,
    RateLimited,
    Services,
    ServiceUnavailable,
    WorkerosError,
    await_me_maybe,
    jsonable,
    now,
    setting_or,
)

from .bridge import Bridge
from .tables import functions, logs, versions

log = logging.getLogger("workeros.functions")

NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
FIELDS = ("name", "description", "code", "sandbox", "timeout_ms", "memory_mb", "public", "role", "concurrency")
PUBLIC = ("id", *FIELDS, "version", "created_at", "updated_at")
CHANNEL = "functions"
#: Seconds invocation logs wait to be written together, and the most kept waiting.
LOG_DELAY = 0.25
LOG_BATCH = 500
#: Seconds between two deletions of logs past their retention.
PRUNE_EVERY = 300.0


def _public(row: Mapping[str, Any]) -> dict[str, Any]:
    return jsonable({k: row[k] for k in PUBLIC})


def _log_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return jsonable({k: row[k] for k in ("id", "function", "version", "status", "error", "lines", "user",
                                         "started_at", "duration_ms")})


class FunctionsService:
    """``services.get("functions")``."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.db = services.db
        s = services.settings
        self.env = {str(k): v for k, v in dict(setting_or(s, "functions.env", None) or {}).items()}
        self.max_timeout_ms = int(setting_or(s, "functions.max_timeout_ms", 60000))
        self.max_memory_mb = int(setting_or(s, "functions.max_memory_mb", 512))
        self.max_code_bytes = int(setting_or(s, "functions.max_code_bytes", 1024 * 1024))
        self.max_log_lines = int(setting_or(s, "functions.max_log_lines", 100))
        self.max_log_bytes = int(setting_or(s, "functions.max_log_bytes", 16384))
        self.max_fetch_bytes = int(setting_or(s, "functions.max_fetch_bytes", 5 * 1024 * 1024))
        self.retention_days = float(setting_or(s, "functions.log_retention_days", 14))
        self._sandboxes: dict[str, Any] = {}
        self._owned: list[Any] = []
        self._running: dict[str, int] = {}
        self._cache: dict[str, dict[str, Any]] = {}
        self._unsubscribe: Any = None
        #: Invocation logs not yet written, and the task that will write them.
        self._pending_logs: list[dict[str, Any]] = []
        self._log_writer: asyncio.Task[Any] | None = None
        self._log_lock = asyncio.Lock()
        self._pruned_at = 0.0

    @classmethod
    async def open(cls, services: Services) -> FunctionsService:
        service = cls(services)
        service._unsubscribe = services.events.subscribe(CHANNEL, lambda message: service._cache.clear())
        return service

    async def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        with contextlib.suppress(Exception):
            await self.flush_logs()
        for sandbox in [self.services.sandbox, *self._owned]:
            closer = getattr(sandbox, "close", None)
            if closer is not None:
                with contextlib.suppress(Exception):
                    await closer()

    async def _changed(self) -> None:
        self._cache.clear()
        try:
            await self.services.events.publish(CHANNEL, {"changed": True})
        except Exception:  # other instances keep a stale definition until their next change
            log.exception("publishing a function change failed")

    # -- sandboxes ---------------------------------------------------------------------------
    def loaded_sandboxes(self) -> list[Any]:
        """Every sandbox object in use: the active one and those functions chose."""
        return [s for s in (self.services.sandbox, *self._owned) if s is not None]

    def sandbox_names(self) -> list[str]:
        return sorted(self.services.registry.entries.get("sandbox", {}))

    async def sandbox(self, name: str | None) -> Any:
        """The sandbox a function runs in: its own choice, else the active one."""
        active = self.services.sandbox
        active_name = (self.services.registry.active.get("sandbox") or [None])[0]
        if name is None or name == active_name:
            if active is None:
                raise ServiceUnavailable("No function sandbox is installed or available")
            return active
        if name in self._sandboxes:
            return self._sandboxes[name]
        entry = self.services.registry.entries.get("sandbox", {}).get(name)
        if entry is None or entry.unavailable:
            reason = f": {entry.unavailable}" if entry is not None else ""
            raise ServiceUnavailable(f"The sandbox {name!r} is not available{reason}")
        instance = await await_me_maybe(entry.entry.factory(self.services.settings))
        self._sandboxes[name] = instance
        self._owned.append(instance)
        return instance

    # -- definitions (admin) -------------------------------------------------------------------
    @staticmethod
    def _admin(acc: Accountability) -> None:
        if not acc.admin:
            raise Forbidden()

    async def _check(self, data: Any, current: dict[str, Any] | None) -> dict[str, Any]:
        if not isinstance(data, Mapping):
            raise InvalidPayload("Expected a JSON object")
        unknown = sorted(set(data) - set(FIELDS))
        if unknown:
            raise InvalidPayload(f"Unknown field {unknown[0][:64]!r}")
        merged = {"description": None, "sandbox": None, "timeout_ms": 5000, "memory_mb": 64, "public": False,
                  "role": None, "concurrency": None, **(current or {}), **data}
        name = merged.get("name")
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise InvalidPayload("'name' must match ^[a-z][a-z0-9_-]{0,63}$")
        code = merged.get("code")
        if not isinstance(code, str) or not code.strip():
            raise InvalidPayload("'code' must be JavaScript source text")
        if len(code.encode()) > self.max_code_bytes:
            raise InvalidPayload(f"'code' is larger than {self.max_code_bytes} bytes")
        if merged["description"] is not None and not isinstance(merged["description"], str):
            raise InvalidPayload("'description' must be a string")
        if merged["sandbox"] is not None and merged["sandbox"] not in self.sandbox_names():
            raise InvalidPayload(f"'sandbox' must be one of {self.sandbox_names()} or null")
        for key, top in (("timeout_ms", self.max_timeout_ms), ("memory_mb", self.max_memory_mb)):
            value = merged[key]
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
                raise InvalidPayload(f"'{key}' must be an integer from 1 to {top}")
        if not isinstance(merged["public"], bool):
            raise InvalidPayload("'public' must be true or false")
        if merged["role"] is not None and (not isinstance(merged["role"], str) or not merged["role"]):
            raise InvalidPayload("'role' must be a role id or null")
        conc = merged["concurrency"]
        if conc is not None and (isinstance(conc, bool) or not isinstance(conc, int) or conc < 1):
            raise InvalidPayload("'concurrency' must be a positive integer or null")
        if "code" in data or current is None:
            sandbox = await self.sandbox(merged["sandbox"])
            checker = getattr(sandbox, "check_syntax", None)
            found = await await_me_maybe(checker(code)) if checker is not None else None
            if found is not None:
                message, line, column = found
                raise InvalidPayload(f"SyntaxError at line {line}, column {column}: {message}", line=line,
                                     column=column)
        return {k: merged[k] for k in FIELDS}

    async def _row(self, conn: Any, name: str) -> Mapping[str, Any]:
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise NotFound("Function not found")
        row = (await conn.execute(sa.select(functions).where(functions.c.name == name))).mappings().first()
        if row is None:
            raise NotFound("Function not found")
        return row

    async def list(self, acc: Accountability) -> list[dict[str, Any]]:
        self._admin(acc)
        async with self.db.read() as conn:
            rows = (await conn.execute(sa.select(functions).order_by(functions.c.name))).mappings()
            return [_public(r) for r in rows]

    async def get(self, acc: Accountability, name: str) -> dict[str, Any]:
        self._admin(acc)
        async with self.db.read() as conn:
            return _public(await self._row(conn, name))

    async def create(self, acc: Accountability, data: Any) -> dict[str, Any]:
        self._admin(acc)
        values = await self._check(data, None)
        t = now()
        row = {"id": str(uuid.uuid4()), **values, "version": 1, "created_at": t, "updated_at": t}
        try:
            async with self.db.transaction() as conn:
                if (await conn.execute(sa.select(functions.c.id).where(functions.c.name == values["name"]))).first():
                    raise Conflict(f"A function named {values['name']!r} exists")
                await conn.execute(functions.insert().values(**row))
                await conn.execute(versions.insert().values(id=str(uuid.uuid4()), function=row["id"], version=1,
                                                            code=values["code"], user=acc.user, created_at=t))
        except sa.exc.IntegrityError:
            raise Conflict(f"A function named {values['name']!r} exists") from None
        await self._changed()
        return _public(row)

    async def update(self, acc: Accountability, name: str, data: Any) -> dict[str, Any]:
        self._admin(acc)
        async with self.db.read() as conn:
            current = dict(await self._row(conn, name))
        values = await self._check(data, {k: current[k] for k in FIELDS})
        t = now()
        version = current["version"] + (1 if values["code"] != current["code"] else 0)
        try:
            async with self.db.transaction() as conn:
                if values["name"] != current["name"] and (await conn.execute(
                        sa.select(functions.c.id).where(functions.c.name == values["name"]))).first():
                    raise Conflict(f"A function named {values['name']!r} exists")
                await conn.execute(functions.update().where(functions.c.id == current["id"])
                                   .values(**values, version=version, updated_at=t))
                if version != current["version"]:
                    await conn.execute(versions.insert().values(id=str(uuid.uuid4()), function=current["id"],
                                                                version=version, code=values["code"],
                                                                user=acc.user, created_at=t))
                out = _public(await self._row(conn, values["name"]))
        except sa.exc.IntegrityError:
            raise Conflict(f"A function named {values['name']!r} exists") from None
        await self._changed()
        return out

    async def delete(self, acc: Accountability, name: str) -> None:
        self._admin(acc)
        async with self.db.transaction() as conn:
            row = await self._row(conn, name)
            await conn.execute(logs.delete().where(logs.c.function == row["id"]))
            await conn.execute(versions.delete().where(versions.c.function == row["id"]))
            await conn.execute(functions.delete().where(functions.c.id == row["id"]))
        await self._changed()

    async def versions(self, acc: Accountability, name: str) -> list[dict[str, Any]]:
        self._admin(acc)
        async with self.db.read() as conn:
            row = await self._row(conn, name)
            q = sa.select(versions).where(versions.c.function == row["id"]).order_by(versions.c.version.desc())
            return [jsonable({k: r[k] for k in ("version", "code", "user", "created_at")})
                    for r in (await conn.execute(q)).mappings()]

    async def logs(self, acc: Accountability, name: str, *, limit: int = 50, offset: int = 0,
                   status: str | None = None) -> list[dict[str, Any]]:
        """The function's invocation logs, newest first (admins)."""
        self._admin(acc)
        await self.flush_logs()
        async with self.db.read() as conn:
            row = await self._row(conn, name)
            q = sa.select(logs).where(logs.c.function == row["id"])
            if status:
                q = q.where(logs.c.status == status)
            q = q.order_by(logs.c.started_at.desc(), logs.c.id).limit(limit).offset(offset)
            return [_log_row(r) for r in (await conn.execute(q)).mappings()]

    # -- invocation ----------------------------------------------------------------------------
    async def _definition(self, name: str) -> dict[str, Any]:
        cached = self._cache.get(name)
        if cached is None:
            async with self.db.read() as conn:
                cached = dict(await self._row(conn, name))
            self._cache[name] = cached
        return cached

    async def _may_run(self, acc: Accountability, fn: Mapping[str, Any]) -> None:
        """Public functions run for anyone; others for signed-in callers whose
        role may read the function's row in ``wos_functions`` (admins always)."""
        if fn["public"] or acc.admin:
            return
        if acc.user is None and acc.api_key is None:
            raise NotFound("Function not found")
        try:
            await self.services.items.get(acc, "wos_functions", fn["id"], Query(fields=["id"]))
        except (Forbidden, NotFound):
            raise NotFound("Function not found") from None

    async def invoke(self, acc: Accountability, name: str, req: dict[str, Any]) -> Any:
        """Run the function ``name`` for ``acc`` with ``req`` (``{method, query,
        headers, body}``): its return value, or FUNCTION_ERROR/FUNCTION_TIMEOUT."""
        fn = await self._definition(name)
        await self._may_run(acc, fn)
        return await self._run(acc, fn, req)

    async def run_code(self, acc: Accountability, code: str, req: Any, *, timeout_ms: int | None = None,
                       memory_mb: int = 64) -> Any:
        """Run inline code (the flow ``script`` operation) in the active sandbox
        with ``acc``'s bridge; nothing is recorded besides the caller's own log."""
        sandbox = await self.sandbox(None)
        bridge = Bridge(self, acc, lines=[], max_lines=self.max_log_lines, max_bytes=self.max_log_bytes)
        return await sandbox.run(code, entry="default", args={"req": req, "user": _user(acc), "env": self.env},
                                 timeout_ms=min(timeout_ms or 5000, self.max_timeout_ms), memory_mb=memory_mb,
                                 host=bridge)

    async def _run(self, acc: Accountability, fn: Mapping[str, Any], req: Any) -> Any:
        limit = fn["concurrency"]
        running = self._running.get(fn["id"], 0)
        if limit is not None and running >= limit:
            raise RateLimited(f"The function {fn['name']!r} is already running {limit} time(s)", retry_after=1)
        sandbox = await self.sandbox(fn["sandbox"])
        bridge_acc = acc.with_origin("function")
        if fn["role"] and not acc.admin:
            bridge_acc = replace(bridge_acc, role=fn["role"])
        lines: list[str] = []
        bridge = Bridge(self, bridge_acc, lines=lines, max_lines=self.max_log_lines, max_bytes=self.max_log_bytes)
        self._running[fn["id"]] = running + 1
        started, t0 = now(), time.perf_counter()
        status, error = "ok", None
        try:
            return await sandbox.run(fn["code"], entry="default",
                                     args={"req": req, "user": _user(acc), "env": self.env},
                                     timeout_ms=fn["timeout_ms"], memory_mb=fn["memory_mb"], host=bridge)
        except WorkerosError as exc:
            status, error = ("timeout" if exc.code == "FUNCTION_TIMEOUT" else "error"), exc.message
            raise
        except Exception:
            status, error = "error", "The sandbox failed"
            log.exception("function %s: the sandbox failed", fn["name"])
            raise FunctionError("The function failed") from None
        finally:
            self._running[fn["id"]] -= 1
            if not self._running[fn["id"]]:
                del self._running[fn["id"]]
            self._log({"function": fn["id"], "version": fn["version"],
                       "status": status, "error": error and error[:2048], "lines": list(lines), "user": acc.user,
                       "started_at": started, "duration_ms": (time.perf_counter() - t0) * 1000})

    # -- invocation logs: written in batches, off the request path --------------------------
    def _log(self, row: dict[str, Any]) -> None:
        """Keep an invocation's log row (without its id: ids are drawn for a
        whole batch when it is written, one read of the OS's randomness
        instead of one per call on the request path)."""
        self._pending_logs.append(row)
        if len(self._pending_logs) >= LOG_BATCH:
            self.services.background.spawn(self.flush_logs(), name="function-logs")
        elif self._log_writer is None:
            self._log_writer = self.services.background.spawn(self._write_later(), name="function-logs")

    async def _write_later(self) -> None:
        try:
            await asyncio.sleep(LOG_DELAY)
        finally:
            self._log_writer = None
        await self.flush_logs()

    async def flush_logs(self) -> None:
        """Write the invocation logs waiting to be written (readers call this
        first, so a log is readable as soon as its invocation answered)."""
        async with self._log_lock:
            rows, self._pending_logs = self._pending_logs, []
            if not rows:
                return
            random = os.urandom(16 * len(rows))
            for i, row in enumerate(rows):
                row["id"] = str(uuid.UUID(bytes=random[16 * i:16 * i + 16], version=4))
            try:
                async with self.db.transaction() as conn:
                    ids = {r["function"] for r in rows}
                    live = set((await conn.execute(sa.select(functions.c.id).where(functions.c.id.in_(ids))))
                               .scalars())
                    rows = [r for r in rows if r["function"] in live]  # not of functions deleted meanwhile
                    if rows:
                        await conn.execute(logs.insert(), rows)
                    if self.retention_days > 0 and time.monotonic() - self._pruned_at >= PRUNE_EVERY:
                        self._pruned_at = time.monotonic()
                        cutoff = now() - dt.timedelta(days=self.retention_days)
                        await conn.execute(logs.delete().where(logs.c.started_at < cutoff))
            except Exception:
                log.exception("writing %d function invocation logs failed", len(rows))


def _user(acc: Accountability) -> dict[str, Any] | None:
    if acc.user is None and not acc.admin:
        return None
    return {"id": acc.user, "role": acc.role, "admin": acc.admin}




__all__ = ["FunctionsService"]
