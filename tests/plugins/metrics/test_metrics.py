"""Prometheus metrics at /api/server/metrics (admins) and on a separate port
(no auth), on both dialects."""

from __future__ import annotations

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from workeros.sdk.testing import free_port


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_are_for_admins_only(api) -> None:
    r = await api.anonymous().get("/api/server/metrics")
    assert r.status == 403 and r.code == "FORBIDDEN"
    r = await api.as_role("editor", user="u1").get("/api/server/metrics")
    assert r.status == 403


async def test_requests_are_counted_by_route_template_and_status(api) -> None:
    admin = api.as_admin()
    r = await admin.post("/api/collections", json={"collection": "notes", "fields": [{"field": "title",
                                                                                       "type": "string"}]})
    assert r.status in (200, 201), r
    for i in range(3):
        assert (await admin.post("/api/items/notes", json={"title": f"n{i}"})).status in (200, 201)
    assert (await admin.get("/api/items/notes/999999")).status == 404
    assert (await api.anonymous().get("/no/such/path/abc123")).status == 404
    r = await admin.get("/api/server/metrics")
    assert r.status == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=")
    found = samples(r.raw.decode())
    assert value(found, "workeros_http_requests_total", method="POST", route="/api/items/{collection}",
                 status="200") + value(found, "workeros_http_requests_total", method="POST",
                                       route="/api/items/{collection}", status="201") == 3
    assert value(found, "workeros_http_requests_total", method="GET", route="/api/items/{collection}/{key}",
                 status="404") == 1
    # Unknown paths share one label value: clients cannot grow the series.
    assert value(found, "workeros_http_requests_total", method="GET", route="<unmatched>", status="404") == 1
    assert not any("abc123" in str(k) for k in found)
    assert value(found, "workeros_http_request_duration_seconds_count", method="POST",
                 route="/api/items/{collection}") == 3
    assert ("workeros_db_pool_checked_out", ()) in found
    assert ("workeros_realtime_streams", ()) in found
    assert ("workeros_webhooks_backlog", ()) in found
    assert ("workeros_background_tasks", ()) in found


async def test_webhook_backlog_is_the_number_of_pending_deliveries(make_server) -> None:
    from aiohttp.test_utils import TestClient
    from callers import Api, TestCallers

    # This instance only queues (another would send): deliveries stay pending.
    async with make_server(TestCallers(), **{"webhooks.dispatch": False}) as server, TestClient(server) as client:
        admin = Api(client).as_admin()
        await admin.post("/api/collections", json={"collection": "notes", "fields": [{"field": "title",
                                                                                      "type": "string"}]})
        r = await admin.post("/api/webhooks", json={"name": "h", "url": "https://example.com/hook",
                                                    "events": ["items.create"]})
        assert r.status == 201, r
        for i in range(2):
            await admin.post("/api/items/notes", json={"title": f"x{i}"})
        found = samples((await admin.get("/api/server/metrics")).raw.decode())
        assert value(found, "workeros_webhooks_backlog") == 2


async def test_separate_port_serves_metrics_without_auth(make_server) -> None:
    from aiohttp.test_utils import TestClient

    port = free_port()
    async with make_server(**{"metrics.port": port}) as server, TestClient(server) as client:
        assert (await client.get("/api/server/health")).status == 200
        async with aiohttp.ClientSession() as session, \
                session.get(f"http://127.0.0.1:{port}/metrics") as r:
            assert r.status == 200
            found = samples(await r.text())
        assert value(found, "workeros_http_requests_total", method="GET", route="/api/server/health",
                     status="200") == 1
        async with aiohttp.ClientSession() as session, \
                session.get(f"http://127.0.0.1:{port}/api/items/x") as r:
            assert r.status == 404  # nothing but the metrics there
