"""SSE realtime over real HTTP on both dialects: events after commit, field
cuts, resume, limits, slow consumers and shutdown."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from callers import high_and_low_readers
from sse_client import EventReader

TEST_CALLER = "X-Workeros-Test-Caller"


async def _setup(admin: Any) -> None:
    r = await admin.post("/api/collections", json={"collection": "notes", "fields": [
        {"field": "title", "type": "string"},
        {"field": "secret", "type": "string"},
        {"field": "score", "type": "integer"},
    ]})
    assert r.status == 201, r


@contextlib.asynccontextmanager
async def stream(api: Any, path: str, caller: str | None = "admin", **headers: str) -> AsyncIterator[EventReader]:
    if caller:
        headers[TEST_CALLER] = caller
    async with api.client.get(path, headers=headers) as response:
        assert response.status == 200, await response.text()
        reader = EventReader(response)
        ready = await reader.next()
        if ready.event == "gap":
            reader.gap = True  # type: ignore[attr-defined]
            ready = await reader.next()
        assert ready.event == "ready"
        reader.ready_id = ready.id  # type: ignore[attr-defined]
        yield reader


async def test_create_update_delete_arrive_in_order(api: Any) -> None:
    admin = api.as_admin()
    await _setup(admin)
    async with stream(api, "/api/realtime/items/notes") as events:
        key = (await admin.post("/api/items/notes", json={"title": "a", "secret": "s", "score": 1})).data["id"]
        created = await events.next()
        assert created.event == "create" and created.id
        assert created.data == {"event": "create", "collection": "notes",
                                "data": [{"id": key, "title": "a", "secret": "s", "score": 1}]}
        await admin.patch(f"/api/items/notes/{key}", json={"score": 2})
        updated = await events.next()
        assert updated.event == "update" and updated.data["data"][0]["score"] == 2
        await admin.delete(f"/api/items/notes/{key}")
        deleted = await events.next()
        assert deleted.event == "delete" and deleted.data["data"] == [{"id": key}]
        assert created.id < updated.id < deleted.id  # same epoch, increasing sequence (hex epoch, same width)


async def test_fields_cut_the_payload(api: Any) -> None:
    admin = api.as_admin()
    await _setup(admin)
    async with stream(api, "/api/realtime/items/notes?fields=title") as events:
        await admin.post("/api/items/notes", json={"title": "a", "secret": "s", "score": 1})
        created = await events.next()
        assert created.data["data"] == [{"id": 1, "title": "a"}]


async def test_bad_subscriptions_are_refused_before_streaming(api: Any) -> None:
    admin = api.as_admin()
    await _setup(admin)
    cases = [
        ("/api/realtime/items/nope", "admin", 404, "NOT_FOUND"),
        ("/api/realtime/items/notes?fields=missing", "admin", 400, "INVALID_QUERY"),
        ("/api/realtime/items/notes?fields=a.b", "admin", 400, "INVALID_QUERY"),
        ("/api/realtime/items/notes?filter=%7Bnot-json", "admin", 400, "INVALID_QUERY"),
        ("/api/realtime/items/notes", None, 403, "FORBIDDEN"),
        ("/api/realtime/items/nope", None, 403, "FORBIDDEN"),
    ]
    for path, caller, status, code in cases:
        headers = {TEST_CALLER: caller} if caller else {}
        async with api.client.get(path, headers=headers) as r:
            body = await r.json()
            assert (r.status, body["errors"][0]["extensions"]["code"]) == (status, code), (path, body)
    async with api.client.get("/api/realtime/items/notes", headers={"Authorization": "Bearer nonsense"}) as r:
        assert r.status == 401


async def test_resume_from_last_event_id_and_gap(api: Any) -> None:
    admin = api.as_admin()
    await _setup(admin)
    async with stream(api, "/api/realtime/items/notes") as events:
        await admin.post("/api/items/notes", json={"title": "one"})
        first = await events.next()
    # missed while disconnected
    await admin.post("/api/items/notes", json={"title": "two"})
    await admin.post("/api/items/notes", json={"title": "three"})
    async with stream(api, "/api/realtime/items/notes", **{"Last-Event-ID": first.id}) as events:
        assert not getattr(events, "gap", False)
        # replayed events precede "ready"? no: they are queued before the loop starts
        got = [await events.next(), await events.next()]
        assert [e.data["data"][0]["title"] for e in got] == ["two", "three"]
    async with stream(api, "/api/realtime/items/notes", **{"Last-Event-ID": "0-1"}) as events:
        assert getattr(events, "gap", False)


async def test_connection_limit_per_user(make_server: Any) -> None:
    from aiohttp.test_utils import TestClient
    from callers import Api, TestCallers

    async with make_server(TestCallers(), realtime__max_connections_per_user=2, realtime__heartbeat_s=0.1) \
            as server, TestClient(server) as client:
        api = Api(client)
        await _setup(api.as_admin())
        async with stream(api, "/api/realtime/items/notes"), stream(api, "/api/realtime/items/notes"):
            async with client.get("/api/realtime/items/notes", headers={TEST_CALLER: "admin"}) as r:
                assert r.status == 429 and "Retry-After" in r.headers
        from workeros.http.keys import SERVICES

        hub = server.app[SERVICES].realtime
        for _ in range(100):  # the server sees the clients go at the next heartbeat
            if not hub.connections:
                break
            await asyncio.sleep(0.05)
        assert not hub.connections and hub.subscriber_count() == 0
        async with stream(api, "/api/realtime/items/notes"):
            pass  # slots were given back when the streams ended


async def test_slow_consumer_is_disconnected_with_a_reason(make_server: Any) -> None:
    from aiohttp.test_utils import TestClient
    from callers import Api, TestCallers

    from workeros.http.keys import SERVICES

    async with make_server(TestCallers(), realtime__queue_size=3) as server, TestClient(server) as client:
        api = Api(client)
        admin = api.as_admin()
        await _setup(admin)
        hub = server.app[SERVICES].realtime
        async with stream(api, "/api/realtime/items/notes") as events:
            (sub,) = [s for g in hub.groups["notes"].values() for s in g.members]
            # fill the queue faster than it is read: the stream's reader is not reading
            from workeros.bus.events import ItemEvent

            for i in range(10):
                await hub.dispatch(ItemEvent("notes", "create", [i], None, [{"id": i, "title": "x", "secret": None,
                                                                               "score": None}]),
                                   f"{hub.epoch}-{i}", list(hub.groups["notes"].values()))
            assert sub.closed
            seen = []
            while True:
                event = await events.next()
                seen.append(event.event)
                if event.event == "closed":
                    assert "too slow" in event.data["reason"]
                    break
            assert len(seen) <= 4
            assert hub.subscriber_count() == 0


@pytest.mark.parametrize("wos_dialect", ["sqlite"], indirect=True)
async def test_shutdown_ends_streams(api: Any) -> None:
    from workeros.http.keys import SERVICES

    admin = api.as_admin()
    await _setup(admin)
    async with stream(api, "/api/realtime/items/notes") as events:
        api.server.app[SERVICES].realtime.close_all("shutdown")
        closed = await events.until("closed")
        assert closed.data["reason"] == "shutdown"


async def test_permission_changes_apply_to_open_streams(api: Any) -> None:
    """A narrowed rule cuts the next event; a revoked one ends the stream."""
    admin = api.as_admin()
    await _setup(admin)
    r = await admin.post("/api/roles", json={"name": "reader"})
    assert r.status in (200, 201), r
    role = str(r.data["id"])
    r = await admin.post("/api/permissions", json={"role": role, "collection": "notes", "action": "read",
                                                   "fields": ["id", "title", "secret"]})
    assert r.status in (200, 201), r
    permission = r.data["id"]
    async with stream(api, "/api/realtime/items/notes", caller=f"role:{role}:u1") as events:
        await admin.post("/api/items/notes", json={"title": "a", "secret": "s", "score": 1})
        assert (await events.next()).data["data"] == [{"id": 1, "title": "a", "secret": "s"}]
        r = await admin.patch(f"/api/permissions/{permission}", json={"fields": ["id", "title"],
                                                                        "filter": {"score": {"_gt": 1}}})
        assert r.status == 200, r
        await _settled(api)
        await admin.post("/api/items/notes", json={"title": "low", "secret": "s", "score": 1})
        await admin.post("/api/items/notes", json={"title": "b", "secret": "s", "score": 2})
        created = await events.next()
        assert created.data["data"] == [{"id": 3, "title": "b"}]  # the low one is outside the new filter
        r = await admin.delete(f"/api/permissions/{permission}")
        assert r.status in (200, 204), r
        closed = await events.until("closed")
        assert closed.data["reason"].startswith("forbidden")


async def _settled(api: Any) -> None:
    """Wait until the in-process bus has handled what was published."""
    from workeros.http.keys import SERVICES

    bus = api.server.app[SERVICES].events.bus
    if hasattr(bus, "drain"):
        await bus.drain()


async def test_visibility_transitions_and_redaction_per_role(api: Any) -> None:
    """Two roles and an admin watch one collection: each sees exactly the events its
    read rule allows, cut to its fields; leaving a view is a delete, entering it a
    create, and a delete reaches only those who could see the row."""
    admin = api.as_admin()
    await _setup(admin)
    _, callers = await high_and_low_readers(admin)
    async with stream(api, "/api/realtime/items/notes", caller=callers["high"]) as high, \
            stream(api, "/api/realtime/items/notes", caller=callers["low"]) as low, \
            stream(api, "/api/realtime/items/notes") as everyone:
        key = (await admin.post("/api/items/notes", json={"title": "n", "secret": "s", "score": 5})).data["id"]
        got = await low.next()
        assert (got.event, got.data["data"]) == ("create", [{"id": key, "title": "n", "score": 5}])  # no secret
        assert (await everyone.next()).data["data"][0]["secret"] == "s"
        await high.nothing_within(0.3)

        await admin.patch(f"/api/items/notes/{key}", json={"score": 50})  # low -> high
        got = await low.next()
        assert (got.event, got.data["data"]) == ("delete", [{"id": key}])
        got = await high.next()
        assert (got.event, got.data["data"]) == ("create", [{"id": key, "title": "n", "score": 50}])
        assert (await everyone.next()).event == "update"

        await admin.patch(f"/api/items/notes/{key}", json={"title": "m"})  # stays with high
        got = await high.next()
        assert (got.event, got.data["data"][0]["title"]) == ("update", "m")
        await low.nothing_within(0.3)
        assert (await everyone.next()).event == "update"

        await admin.delete(f"/api/items/notes/{key}")
        got = await high.next()
        assert (got.event, got.data["data"]) == ("delete", [{"id": key}])
        assert (await everyone.next()).event == "delete"
        await low.nothing_within(0.3)  # low never saw the row as it was: no delete for it
