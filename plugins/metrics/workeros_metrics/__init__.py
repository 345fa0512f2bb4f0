"""Prometheus metrics (``GET /api/server/metrics``, admins only; optionally
without auth on ``metrics.port``). See ``docs/operations.md``.

Each instance keeps its own registry (never the process-global one: two apps
in one process, as in tests, must not share counters). Counters and histograms
are updated by a middleware on every request; gauges that describe the
instance's state (database pool, realtime streams, outbox backlog,
background work) are read when the endpoint is scraped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from workeros.api import SERVICES, Forbidden, Services, accountability
from workeros.hookspecs import hookimpl
from workeros.hookspecs.lifecycle import ConfigKey

log = logging.getLogger("workeros.metrics")

CONFIG_KEYS = [
    ConfigKey("metrics.port", "int", 0,
              "Also serve the metrics without authentication at /metrics on this port (0: off). Bind it to an "
              "address only the scraper reaches"),
    ConfigKey("metrics.host", "str", "127.0.0.1", "Interface of the separate metrics port"),
]

#: Latency buckets in seconds: API calls are mostly milliseconds; the tail
#: catches slow queries and long polls.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED = "<unmatched>"


class Metrics:
    """One instance's Prometheus registry and the metrics in it."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("workeros_http_requests", "HTTP requests answered, by route template and status",
                                ["method", "route", "status"], registry=r)
        self.latency = Histogram("workeros_http_request_duration_seconds",
                                 "Time from the request's arrival to the end of its response, by route template",
                                 ["method", "route"], buckets=BUCKETS, registry=r)
        self.in_flight = Gauge("workeros_http_requests_in_flight", "Requests being handled now", registry=r)
        self.pool_size = Gauge("workeros_db_pool_size", "Connections the database pool keeps", registry=r)
        self.pool_checked_out = Gauge("workeros_db_pool_checked_out", "Database connections in use", registry=r)
        self.pool_overflow = Gauge("workeros_db_pool_overflow", "Connections opened beyond the pool size",
                                   registry=r)
        self.streams = Gauge("workeros_realtime_streams", "Open realtime connections (SSE, WebSocket, GraphQL)",
                             registry=r)
        self.subscriptions = Gauge("workeros_realtime_subscriptions", "Realtime subscriptions on this instance",
                                   registry=r)
        self.delivered = Counter("workeros_realtime_events_delivered", "Realtime events delivered to subscribers",
                                 registry=r)
        self.outbox = Gauge("workeros_webhooks_backlog", "Webhook deliveries waiting to be sent (all instances)",
                            registry=r)
        self.background = Gauge("workeros_background_tasks",
                                "Work running after its response (flow runs, mail, event fan-out)", registry=r)
        self.function_invocations = Counter("workeros_function_invocations", "Function invocations, by outcome",
                                            ["outcome"], registry=r)
        self._delivered_seen = 0
        #: The labelled children per (method, route, status): looking them up
        #: through ``labels()`` (a lock and argument checks) was a measurable
        #: part of every request.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (self.requests.labels(method, route, str(status)),
                                              self.latency.labels(method, route))
        children[0].inc()
        children[1].observe(seconds)

    async def refresh(self, services: Services) -> None:
        """Read the gauges that describe the instance now."""
        pool = services.db.engine.pool
        for gauge, name in ((self.pool_size, "size"), (self.pool_checked_out, "checkedout"),
                            (self.pool_overflow, "overflow")):
            reader = getattr(pool, name, None)
            if callable(reader):
                gauge.set(max(0, int(reader())))
        hub = services.realtime
        if hub is not None:
            self.streams.set(len(hub.streams))
            self.subscriptions.set(sum(len(g.members) for groups in hub.groups.values() for g in groups.values()))
            if hub.delivered > self._delivered_seen:
                self.delivered.inc(hub.delivered - self._delivered_seen)
                self._delivered_seen = hub.delivered
        webhooks = services.get("webhooks")
        backlog = getattr(webhooks, "backlog", None)
        if backlog is not None:
            try:
                self.outbox.set(await backlog())
            except Exception:
                log.warning("metrics: cannot read the webhook backlog", exc_info=True)
        self.background.set(len(services.background.tasks))

    async def exposition(self, services: Services) -> web.Response:
        await self.refresh(services)
        return web.Response(body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


METRICS: web.AppKey[Metrics] = web.AppKey("workeros_metrics.metrics", Metrics)


def route_of(request: web.Request) -> str:
    """The route template (``/api/items/{collection}``), never the raw path:
    label values stay few whatever clients send."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED


def middleware(metrics: Metrics) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def measure(request: web.Request,
                      handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        start = time.perf_counter()
        status = 500
        metrics.in_flight.inc()
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            metrics.in_flight.dec()
            metrics.observe(request.method, route_of(request), status, time.perf_counter() - start)

    return measure


async def metrics_view(request: web.Request) -> web.Response:
    if not accountability(request).admin:
        raise Forbidden()
    return await request.config_dict[METRICS].exposition(request.config_dict[SERVICES])


def _separate_port(root: web.Application) -> Callable[[web.Application], AsyncIterator[None]]:
    async def context(app: web.Application) -> AsyncIterator[None]:
        settings = app[SERVICES].settings
        port = int(settings["metrics.port"] or 0)
        if port <= 0:
            yield
            return
        side = web.Application()

        async def unauthenticated(_request: web.Request) -> web.Response:
            return await root[METRICS].exposition(root[SERVICES])

        side.router.add_get("/metrics", unauthenticated)
        runner = web.AppRunner(side, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, settings["metrics.host"], port)
        await site.start()
        log.info("metrics on http://%s:%s/metrics", settings["metrics.host"], port)
        try:
            yield
        finally:
            await runner.cleanup()

    return context


@hookimpl
def workeros_register_config_keys() -> list[ConfigKey]:
    return CONFIG_KEYS


@hookimpl
def workeros_cleanup_contexts(app: web.Application) -> list[Any]:
    app[METRICS] = Metrics()
    return [_separate_port(app)]


@hookimpl
def workeros_after_app_created(app: web.Application) -> None:
    # Outermost, so the status counted is the one the client got (after the
    # error middleware turned an exception into the envelope).
    app.middlewares.insert(0, middleware(app[METRICS]))
    app.router.add_get("/api/server/metrics", metrics_view)
