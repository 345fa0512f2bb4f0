"""Usage counters per day and alerts at 80 % / 100 %, on both dialects: a real
receiver on loopback for the webhook, aiosmtpd for the e-mail."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient
from callers import Api, TestCallers
from receiver import Receiver, eventually

from workeros.http.keys import SERVICES


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = await Receiver().start()
    try:
        yield r
    finally:
        await r.stop()


async def notes(admin: Api) -> None:
    r = await admin.post("/api/collections", json={"collection": "notes", "fields": [{"field": "title",
                                                                                       "type": "string"}]})
    assert r.status in (200, 201), r


async def test_usage_is_for_admins_and_checks_its_query(api) -> None:
    assert (await api.anonymous().get("/api/server/usage")).status == 403
    admin = api.as_admin()
    for bad in ("x", "0", "367"):
        r = await admin.get("/api/server/usage", params={"days": bad})
        assert r.status == 400 and r.code == "INVALID_QUERY", r


async def test_counts_requests_rows_and_storage(api) -> None:
    admin = api.as_admin()
    await notes(admin)
    for i in range(4):
        await admin.post("/api/items/notes", json={"title": f"n{i}"})
    await admin.get("/api/server/health")  # probes are not usage
    r = await admin.get("/api/server/usage")
    assert r.status == 200, r
    day = r.data["days"][0]
    assert day["rows"] == {"notes": 4} and day["rows_total"] == 4
    assert day["storage_bytes"] > 0
    # the collection, four items, and this request
    assert day["requests"] == 6
    again = (await admin.get("/api/server/usage")).data["days"][0]
    assert again["requests"] == 7


async def test_alerts_fire_once_at_80_and_100_percent(make_server, receiver, smtp_inbox) -> None:
    settings = {"usage.limits": {"rows.notes": 5}, "usage.alert_webhook": receiver.url + "/alert",
                "usage.alert_email": "ops@wos.test", "network.allow_private": True, **smtp_inbox.settings()}
    async with make_server(TestCallers(), **settings) as server, TestClient(server) as client:
        admin = Api(client).as_admin()
        await notes(admin)
        for i in range(4):
            await admin.post("/api/items/notes", json={"title": f"n{i}"})
        r = await admin.get("/api/server/usage")
        assert [(a["metric"], a["level"]) for a in r.data["alerts"]] == [("rows.notes", 80)]
        await eventually(lambda: len(receiver.requests) == 1)
        assert receiver.requests[0].json() == {"event": "usage.alert", "day": r.data["days"][0]["day"],
                                               "metric": "rows.notes", "level": 80, "value": 4, "limit": 5}
        await admin.get("/api/server/usage")  # still 80 %: nothing new
        await admin.post("/api/items/notes", json={"title": "n5"})
        r = await admin.get("/api/server/usage")
        assert [(a["metric"], a["level"]) for a in r.data["alerts"]] == [("rows.notes", 80), ("rows.notes", 100)]
        await server.app[SERVICES].background.drain(10)
        assert len(receiver.requests) == 2
        await smtp_inbox.wait_for("ops@wos.test", 2)
        subjects = sorted(m["Subject"] for m in smtp_inbox.to("ops@wos.test"))
        assert subjects == ["workeros usage: rows.notes at 100 %", "workeros usage: rows.notes at 80 %"]


async def test_bad_limits_stop_the_boot_with_a_message(make_server) -> None:
    from workeros.api import StartupError

    with pytest.raises(StartupError, match="unknown metric 'bogus'"):
        async with make_server(**{"usage.limits": {"bogus": 3}}):
            pass
