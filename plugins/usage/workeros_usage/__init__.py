"""Usage counters per day and alerts near a limit (``GET /api/server/usage``).

Every instance counts the requests it answers in memory and adds them to
today's row every ``usage.flush_seconds`` (and at shutdown), so the counter is
the sum over instances. Rows per collection and the database's size are read
every ``usage.sample_seconds`` (and whenever an admin reads the usage). After
each flush or reading, each limit in ``usage.limits`` is compared with today's
value: at 80 % and at 100 % an alert is sent once per day (a row in
``wos_usage_alerts`` decides which instance sends it) as a webhook
(``usage.alert_webhook``) and/or an e-mail (``usage.alert_email``). See
``docs/operations.md``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from aiohttp import web

from workeros.api import (
    SERVICES,
    Forbidden,
    InvalidQuery,
    Services,
    StartupError,
    accountability,
    dumps,
    now,
    ok,
    services,
    setting_or,
)
from workeros.hookspecs import hookimpl
from workeros.hookspecs.email import EmailMessage
from workeros.hookspecs.lifecycle import ConfigKey, Migrations, ServiceEntry

from .tables import alerts, usage

log = logging.getLogger("workeros.usage")

CONFIG_KEYS = [
    ConfigKey("usage.flush_seconds", "float", 30.0,
              "How often an instance adds the requests it counted to today's counter"),
    ConfigKey("usage.sample_seconds", "float", 600.0,
              "How often rows per collection and the database size are read"),
    ConfigKey("usage.limits", "dict", {},
              "Limits alerted on at 80 % and 100 %: requests (per day), storage_bytes, rows (all collections), "
              "rows.<collection>"),
    ConfigKey("usage.alert_webhook", "str", None, "URL that receives a JSON POST for each alert"),
    ConfigKey("usage.alert_email", "str", None, "Address that receives an e-mail for each alert"),
]
LEVELS = (80, 100)
#: Probes and scrapes are not usage.
NOT_COUNTED = ("/api/server/health", "/api/server/ready", "/api/server/metrics")
LIMIT_NAMES = ("requests", "storage_bytes", "rows")


def today() -> str:
    return now().date().isoformat()


def check_limits(raw: Any) -> dict[str, int]:
    if not isinstance(raw, Mapping):
        raise ValueError("usage.limits must be a table of metric = number")
    out = {}
    for name, value in raw.items():
        if name not in LIMIT_NAMES and not str(name).startswith("rows."):
            raise ValueError(f"usage.limits: unknown metric {name!r} (one of {', '.join(LIMIT_NAMES)}, rows.<name>)")
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ValueError(f"usage.limits.{name} must be a positive number")
        out[str(name)] = int(value)
    return out


class UsageService:
    """Counts, stores and reports usage; sends alerts."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.db = services.db
        self.pending = 0
        try:
            self.limits = check_limits(setting_or(services.settings, "usage.limits", {}) or {})
        except ValueError as exc:
            raise StartupError(str(exc)) from None
        self._lock = asyncio.Lock()

    @classmethod
    async def open(cls, services: Services) -> UsageService:
        return cls(services)

    async def close(self) -> None:
        await self.flush()

    def count_request(self) -> None:
        self.pending += 1

    async def _put(self, conn: Any, day: str, metric: str, subject: str, value: int, *, add: bool) -> None:
        stmt = self.db.insert(usage).values(day=day, metric=metric, subject=subject, value=value, updated_at=now())
        new = usage.c.value + stmt.excluded.value if add else stmt.excluded.value
        await conn.execute(stmt.on_conflict_do_update(index_elements=[usage.c.day, usage.c.metric, usage.c.subject],
                                                      set_={"value": new, "updated_at": stmt.excluded.updated_at}))

    async def flush(self) -> None:
        """Add the requests counted here to today's counter."""
        async with self._lock:
            count, self.pending = self.pending, 0
            if not count:
                return
            try:
                async with self.db.transaction() as conn:
                    await self._put(conn, today(), "requests", "", count, add=True)
            except Exception:
                self.pending += count  # kept for the next flush
                raise
        await self.check_alerts()

    async def database_bytes(self, conn: Any) -> int:
        # A catalog read, as schema reflection is: each dialect says its size its own way.
        if conn.dialect.name == "postgresql":
            return int((await conn.execute(sa.select(sa.func.pg_database_size(sa.func.current_database()))))
                       .scalar() or 0)
        pages = (await conn.exec_driver_sql("PRAGMA page_count")).scalar() or 0
        size = (await conn.exec_driver_sql("PRAGMA page_size")).scalar() or 0
        return int(pages) * int(size)

    async def sample(self) -> None:
        """Record rows per collection and the database's size for today."""
        schema = self.services.schema.current()
        day = today()
        async with self.db.read() as conn:
            rows = {}
            for name, collection in sorted(schema.collections.items()):
                if collection.system:
                    continue
                rows[name] = int((await conn.execute(sa.select(sa.func.count()).select_from(collection.table)))
                                 .scalar() or 0)
            size = await self.database_bytes(conn)
        async with self.db.transaction() as conn:
            for name, value in rows.items():
                await self._put(conn, day, "rows", name, value, add=False)
            await self._put(conn, day, "storage_bytes", "", size, add=False)
        await self.check_alerts()

    async def days(self, count: int) -> list[dict[str, Any]]:
        first = (now().date() - dt.timedelta(days=count - 1)).isoformat()
        async with self.db.read() as conn:
            found = (await conn.execute(sa.select(usage).where(usage.c.day >= first)
                                        .order_by(usage.c.day, usage.c.metric, usage.c.subject))).mappings().all()
        out: dict[str, dict[str, Any]] = {}
        for row in found:
            day = out.setdefault(row["day"], {"day": row["day"], "requests": 0, "storage_bytes": 0,
                                              "rows": {}, "rows_total": 0})
            if row["metric"] == "rows":
                day["rows"][row["subject"]] = row["value"]
                day["rows_total"] += row["value"]
            else:
                day[row["metric"]] = row["value"]
        return [out[d] for d in sorted(out, reverse=True)]

    async def fired(self, count: int) -> list[dict[str, Any]]:
        first = (now().date() - dt.timedelta(days=count - 1)).isoformat()
        async with self.db.read() as conn:
            rows = (await conn.execute(sa.select(alerts).where(alerts.c.day >= first)
                                       .order_by(alerts.c.fired_at))).mappings().all()
        return [dict(r) for r in rows]

    async def check_alerts(self) -> None:
        if not self.limits:
            return
        day = today()
        current = (await self.days(1)) or [{"requests": 0, "storage_bytes": 0, "rows": {}, "rows_total": 0}]
        values = {"requests": current[0]["requests"], "storage_bytes": current[0]["storage_bytes"],
                  "rows": current[0]["rows_total"],
                  **{f"rows.{name}": value for name, value in current[0]["rows"].items()}}
        for metric, limit in self.limits.items():
            value = int(values.get(metric, 0))
            for level in LEVELS:
                if value * 100 < limit * level:
                    continue
                async with self.db.transaction() as conn:
                    stmt = self.db.insert(alerts).values(day=day, metric=metric, level=level, value=value,
                                                         limit=limit, fired_at=now()).on_conflict_do_nothing()
                    first = (await conn.execute(stmt)).rowcount == 1
                if first:
                    alert = {"event": "usage.alert", "day": day, "metric": metric, "level": level,
                             "value": value, "limit": limit}
                    self.services.background.spawn(self.send(alert), name=f"usage alert {metric} {level}")

    async def send(self, alert: dict[str, Any]) -> None:
        settings = self.services.settings
        text = (f"workeros usage: {alert['metric']} is at {alert['value']} of {alert['limit']} "
                f"({alert['level']} % reached) on {alert['day']}.")
        webhook = settings["usage.alert_webhook"]
        if webhook:
            try:
                result = await self.services.outbound.fetch(
                    "POST", webhook, headers={"Content-Type": "application/json"}, data=dumps(alert))
                if result.status >= 300:
                    log.warning("usage alert webhook answered %s", result.status)
            except Exception as exc:
                log.warning("usage alert webhook failed: %s", exc)
        address = settings["usage.alert_email"]
        if address:
            if self.services.mailer is None:
                log.warning("usage alert not mailed: no mail backend is configured")
            else:
                try:
                    await self.services.mailer.send(EmailMessage(
                        to=address, subject=f"workeros usage: {alert['metric']} at {alert['level']} %", text=text))
                except Exception as exc:
                    log.warning("usage alert e-mail failed: %s", exc)
        log.warning(text)


def _service(svc: Services) -> UsageService:
    return svc.get("usage")


def middleware() -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def count(request: web.Request,
                    handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        if request.path not in NOT_COUNTED:
            service = request.config_dict[SERVICES].get("usage")
            if service is not None:
                service.count_request()
        return await handler(request)

    return count


async def usage_view(request: web.Request) -> web.Response:
    if not accountability(request).admin:
        raise Forbidden()
    raw = request.query.get("days", "7")
    try:
        days = int(raw)
    except ValueError:
        raise InvalidQuery("days must be an integer") from None
    if not 1 <= days <= 366:
        raise InvalidQuery("days must be 1 to 366")
    service = _service(services(request))
    await service.flush()
    await service.sample()
    return ok({"days": await service.days(days), "limits": service.limits,
               "alerts": await service.fired(days)})


async def _loop(service: UsageService, every: float, work: Callable[[], Awaitable[None]], what: str) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            await work()
        except Exception:
            log.warning("usage: %s failed", what, exc_info=True)


@hookimpl
def workeros_register_config_keys() -> list[ConfigKey]:
    return CONFIG_KEYS


@hookimpl
def workeros_register_migrations() -> list[Migrations]:
    return [Migrations("usage", str(Path(__file__).parent / "migrations"))]


@hookimpl
def workeros_register_services() -> list[ServiceEntry]:
    return [ServiceEntry("usage", UsageService.open)]


@hookimpl
def workeros_cleanup_contexts(app: web.Application) -> list[Any]:
    async def tickers(app: web.Application) -> AsyncIterator[None]:
        service = app[SERVICES].get("usage")
        settings = app[SERVICES].settings
        tasks = []
        if service is not None:
            tasks = [asyncio.create_task(_loop(service, float(settings["usage.flush_seconds"]), service.flush,
                                               "flush")),
                     asyncio.create_task(_loop(service, float(settings["usage.sample_seconds"]), service.sample,
                                               "sample"))]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    return [tickers]


@hookimpl
def workeros_after_app_created(app: web.Application) -> None:
    app.middlewares.insert(0, middleware())
    app.router.add_get("/api/server/usage", usage_view)
