"""Webhooks over real HTTP, on both dialects: a real aiohttp receiver on
loopback, signatures checked with the secret, the outbox committed with the
change, retries, the network rule, restarts and two instances."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient
from callers import Api, TestCallers
from receiver import Receiver, eventually

from workeros.api import InvalidPayload
from workeros.hookspecs import hookimpl
from workeros.http.keys import SERVICES

FAST = {"network.allow_private": True, "webhooks.retry_base_seconds": 0.1, "webhooks.poll_seconds": 0.2}


@pytest.fixture
def booted(make_server: Callable[..., Any]) -> Callable[..., Any]:
    @asynccontextmanager
    async def run(*plugins: Any, **settings: Any) -> AsyncIterator[tuple[Api, Any]]:
        async with make_server(TestCallers(), *plugins, **{**FAST, **settings}) as server, \
                TestClient(server) as client:
            yield Api(client).as_admin(), server.app[SERVICES]

    return run


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """What a receiver does (docs/webhooks.md)."""
    stamp = headers["Workeros-Timestamp"]
    expected = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest("sha256=" + expected, headers["Workeros-Signature"])


async def notes(admin: Api, name: str = "notes") -> None:
    r = await admin.post("/api/collections", json={"collection": name, "fields": [
        {"field": "title", "type": "string"}, {"field": "score", "type": "integer"}]})
    assert r.status in (200, 201), r


async def hook(admin: Api, url: str, events: list[str], **extra: Any) -> dict[str, Any]:
    r = await admin.post("/api/webhooks", json={"name": "h", "url": url, "events": events, **extra})
    assert r.status == 201, r
    return r.data


async def test_crud_is_admin_only_and_shows_the_secret_once(booted) -> None:
    async with booted() as (admin, _):
        created = await hook(admin, "https://example.com/hook", ["items.create"], collections=["notes"],
                             headers={"X-Team": "blue"})
        assert created["secret"].startswith("whsec_") and len(created["secret"]) > 30
        assert created["active"] is True and created["collections"] == ["notes"]
        key = created["id"]
        listed = (await admin.get("/api/webhooks")).data
        assert [w["id"] for w in listed] == [key] and "secret" not in listed[0]
        assert "secret" not in (await admin.get(f"/api/webhooks/{key}")).data
        r = await admin.patch(f"/api/webhooks/{key}", json={"active": False, "events": ["items.update"]})
        assert r.status == 200 and r.data["active"] is False and r.data["events"] == ["items.update"], r

        for bad in ({"name": "x", "url": "ftp://x", "events": ["items.create"]},
                    {"name": "x", "url": "https://x.test", "events": ["items.explode"]},
                    {"name": "x", "url": "https://x.test", "events": []},
                    {"name": "x", "url": "https://x.test", "events": ["items.create"], "secret": "mine"},
                    {"name": "x", "url": "https://x.test", "events": ["items.create"],
                     "headers": {"Workeros-Signature": "forged"}},
                    {"name": "x", "url": "https://x.test", "events": ["items.create"], "headers": {"X": "a\r\nb"}},
                    ["not", "an", "object"]):
            r = await admin.post("/api/webhooks", json=bad)
            assert r.code == "INVALID_PAYLOAD", (bad, r)
        assert (await admin.get("/api/webhooks/not-a-uuid")).code == "NOT_FOUND"
        assert (await admin.get("/api/webhooks/00000000-0000-4000-8000-000000000000")).code == "NOT_FOUND"

        user = admin.as_role("editor", "u1")
        for method, path in (("GET", "/api/webhooks"), ("POST", "/api/webhooks"), ("GET", f"/api/webhooks/{key}"),
                             ("PATCH", f"/api/webhooks/{key}"), ("DELETE", f"/api/webhooks/{key}"),
                             ("GET", f"/api/webhooks/{key}/deliveries")):
            r = await user.request(method, path, json={"name": "x"})
            assert r.code == "FORBIDDEN", (method, path, r)
        assert (await admin.anonymous().get("/api/webhooks")).code == "FORBIDDEN"

        assert (await admin.delete(f"/api/webhooks/{key}")).status == 204
        assert (await admin.get(f"/api/webhooks/{key}")).code == "NOT_FOUND"


async def test_deliveries_are_signed_and_filtered(booted, receiver: Receiver) -> None:
    async with booted() as (admin, _):
        await notes(admin)
        await notes(admin, "other")
        on_create = await hook(admin, receiver.url + "/create", ["items.create"], collections=["notes"],
                               headers={"X-Team": "blue"})
        on_change = await hook(admin, receiver.url + "/change", ["items.update", "items.delete"])
        await hook(admin, receiver.url + "/inactive", ["items.create", "items.update"], active=False)

        item = (await admin.post("/api/items/notes", json={"title": "hello", "score": 3})).data
        await eventually(lambda: len(receiver.requests) >= 1)
        await admin.post("/api/items/other", json={"title": "not for /create"})
        await admin.patch(f"/api/items/notes/{item['id']}", json={"score": 4})
        await admin.delete(f"/api/items/notes/{item['id']}")
        await eventually(lambda: len(receiver.requests) >= 3)
        await asyncio.sleep(0.6)  # nothing more comes (the inactive hook, the other collection)
        by_path = {}
        for req in receiver.requests:
            by_path.setdefault(req.path, []).append(req)
        assert sorted((p, len(v)) for p, v in by_path.items()) == [("/change", 2), ("/create", 1)]

        created = by_path["/create"][0]
        assert created.method == "POST" and created.headers["Content-Type"] == "application/json"
        assert verify(on_create["secret"], created.headers, created.body)
        assert not verify(on_change["secret"], created.headers, created.body)
        assert abs(int(created.headers["Workeros-Timestamp"]) - time.time()) < 30
        assert created.headers["Workeros-Event"] == "items.create" and created.headers["X-Team"] == "blue"
        body = created.json()
        assert body["id"] == created.headers["Workeros-Delivery"]
        assert (body["event"], body["collection"], body["keys"]) == ("items.create", "notes", [item["id"]])
        assert body["payload"] == {"id": item["id"], "title": "hello", "score": 3}
        assert body["timestamp"].endswith("Z")

        update, delete = (r.json() for r in by_path["/change"])
        assert update["event"] == "items.update" and update["payload"]["score"] == 4
        assert delete["event"] == "items.delete" and delete["keys"] == [item["id"]] and "payload" not in delete
        for req in by_path["/change"]:
            assert verify(on_change["secret"], req.headers, req.body)

        log = (await admin.get(f"/api/webhooks/{on_change['id']}/deliveries")).data
        assert [d["event"] for d in log] == ["items.delete", "items.update"]
        assert all(d["status"] == "delivered" and d["attempts"][0]["status_code"] == 200 for d in log)
        assert all(d["attempts"][0]["latency_ms"] >= 0 and d["attempts"][0]["at"].endswith("Z") for d in log)


async def test_the_api_call_does_not_wait_for_a_slow_receiver(booted, receiver: Receiver) -> None:
    receiver.delay = 3.0
    async with booted() as (admin, _):
        await notes(admin)
        await hook(admin, receiver.url, ["items.create"])
        started = time.monotonic()
        r = await admin.post("/api/items/notes", json={"title": "fast"})
        assert r.status in (200, 201) and time.monotonic() - started < 1.5, r
        await eventually(lambda: receiver.requests, timeout=5)


async def test_retries_keep_the_delivery_id_then_give_up(booted, receiver: Receiver) -> None:
    receiver.statuses = [500, 503, 200]
    async with booted(**{"webhooks.max_attempts": 3}) as (admin, _):
        await notes(admin)
        w = await hook(admin, receiver.url, ["items.create"])
        await admin.post("/api/items/notes", json={"title": "retried"})
        await eventually(lambda: len(receiver.requests) >= 3)
        ids = {r.headers["Workeros-Delivery"] for r in receiver.requests}
        assert len(ids) == 1 and {r.json()["id"] for r in receiver.requests} == ids
        assert all(verify(w["secret"], r.headers, r.body) for r in receiver.requests)
        [delivery] = await eventually(lambda: _delivered(admin, w["id"]))
        assert [a["status_code"] for a in delivery["attempts"]] == [500, 503, 200]
        assert delivery["attempts"][0]["error"] == "The receiver answered HTTP 500"
        assert receiver.requests[2].at - receiver.requests[1].at >= 0.1 * 2 * 0.75 - 0.05  # doubling

        receiver.statuses = [500] * 10
        await admin.post("/api/items/notes", json={"title": "gives up"})
        await eventually(lambda: len(receiver.requests) >= 6)
        log = await eventually(lambda: _with_status(admin, w["id"], "failed"))
        assert log[0]["attempt_count"] == 3 and [a["status_code"] for a in log[0]["attempts"]] == [500] * 3
        await asyncio.sleep(0.8)
        assert len(receiver.requests) == 6  # no fourth attempt


async def _delivered(admin: Api, key: str) -> list[dict]:
    return await _with_status(admin, key, "delivered")


async def _with_status(admin: Api, key: str, status: str) -> list[dict]:
    return (await admin.get(f"/api/webhooks/{key}/deliveries", params={"status": status})).data


class RefuseBoom:
    """A committing hook that runs after the webhooks' one and refuses: the
    delivery rows already written must roll back with the change."""

    name = "refuse-boom"

    @hookimpl(trylast=True)
    def workeros_items_committing(self, mutation):
        if any(row.get("title") == "boom" for row in mutation.after or ()):
            raise InvalidPayload("boom refused")


async def test_a_rolled_back_change_gets_no_delivery(booted, receiver: Receiver) -> None:
    async with booted(RefuseBoom()) as (admin, services):
        await notes(admin)
        w = await hook(admin, receiver.url, ["items.create"])
        r = await admin.post("/api/items/notes", json=[{"title": "fine"}, {"title": "boom"}])
        assert r.code == "INVALID_PAYLOAD" and "boom refused" in r.json["errors"][0]["message"], r
        await admin.post("/api/items/notes", json={"title": "committed"})
        await eventually(lambda: receiver.requests)
        await asyncio.sleep(0.5)
        assert [r.json()["payload"]["title"] for r in receiver.requests] == ["committed"]
        async with services.db.read() as conn:
            count = (await conn.execute(sa.text("SELECT count(*) FROM wos_webhook_deliveries"))).scalar()
        assert count == 1
        assert len((await admin.get(f"/api/webhooks/{w['id']}/deliveries")).data) == 1


async def test_auth_events(booted, receiver: Receiver) -> None:
    async with booted() as (admin, _):
        w = await hook(admin, receiver.url, ["auth.signup", "auth.login"])
        anon = admin.anonymous()
        r = await anon.post("/api/auth/sign-up", json={"email": "ada@example.com", "password": "correct horse 42"})
        assert r.status in (200, 201), r
        user = r.data["id"]
        await admin.sign_in("ada@example.com", "correct horse 42")
        await eventually(lambda: len(receiver.requests) >= 2)
        events = {r.headers["Workeros-Event"]: r.json() for r in receiver.requests}
        assert set(events) == {"auth.signup", "auth.login"}
        assert events["auth.signup"]["payload"]["email"] == "ada@example.com"
        assert events["auth.signup"]["keys"] == [user] and events["auth.signup"]["payload"]["user"] == user
        assert events["auth.login"]["keys"] == [user] and events["auth.login"]["payload"] == {
            "user": user, "email": "ada@example.com", "provider": "password"}
        assert all(verify(w["secret"], r.headers, r.body) for r in receiver.requests)


async def test_the_network_rule_refuses_loopback_and_metadata(booted, receiver: Receiver) -> None:
    async with booted(**{"network.allow_private": False}) as (admin, _):
        for url in (receiver.url, "http://169.254.169.254/latest/meta-data/", "http://localhost:9/",
                    "http://[::1]:9/", "http://10.0.0.1/"):
            r = await admin.post("/api/webhooks", json={"name": "x", "url": url, "events": ["items.create"]})
            assert r.code == "INVALID_PAYLOAD" and "not allowed" in r.json["errors"][0]["message"], (url, r)
    # The receiver's own address is allowed by name; it redirects to another
    # loopback address, which the rule refuses at the redirect.
    receiver.redirect = f"http://127.0.0.2:{receiver.port}/"
    async with booted(**{"network.allow_private": False, "network.allow_hosts": ["127.0.0.1/32"]}) as (admin, _):
        await notes(admin)
        w = await hook(admin, receiver.url + "/start", ["items.create"])
        await admin.post("/api/items/notes", json={"title": "x"})
        [failed] = await eventually(lambda: _with_status(admin, w["id"], "failed"))
        assert "not allowed" in failed["error"] and failed["attempt_count"] == 1, failed
        assert [r.path for r in receiver.requests] == ["/start"]  # never reached the redirect target
        receiver.redirect = "http://169.254.169.254/latest/meta-data/"
        await admin.post("/api/items/notes", json={"title": "y"})
        await eventually(lambda: len(receiver.requests) == 2)
        await eventually(lambda: _has_failed(admin, w["id"], 2))
        assert [r.path for r in receiver.requests] == ["/start", "/start"]


async def _has_failed(admin: Api, key: str, count: int) -> bool:
    return len(await _with_status(admin, key, "failed")) == count


async def test_two_instances_deliver_each_change_once(booted, receiver: Receiver, wos_dialect: str) -> None:
    if wos_dialect != "postgres":
        pytest.skip("several instances share a PostgreSQL database")
    async with booted() as (first, services), booted() as (second, _):
        await notes(first)
        await hook(first, receiver.url, ["items.create"])
        await asyncio.sleep(0.3)  # the second instance's schema follows through the bus

        async def create(i: int) -> None:
            r = await (first if i % 2 else second).post("/api/items/notes", json={"title": f"n{i}", "score": i})
            assert r.status in (200, 201), r

        for start in range(0, 200, 20):
            await asyncio.gather(*(create(i) for i in range(start, start + 20)))
        await eventually(lambda: len(receiver.requests) >= 200, timeout=30)
        await asyncio.sleep(1.0)
        ids = [r.headers["Workeros-Delivery"] for r in receiver.requests]
        assert len(ids) == 200 and len(set(ids)) == 200
        assert sorted(r.json()["payload"]["score"] for r in receiver.requests) == list(range(200))
        async with services.db.read() as conn:
            instances = (await conn.execute(sa.text(
                "SELECT count(DISTINCT instance) FROM wos_webhook_attempts"))).scalar()
            attempts = (await conn.execute(sa.text("SELECT count(*) FROM wos_webhook_attempts"))).scalar()
        assert attempts == 200 and instances == 2


async def test_a_webhook_change_reaches_the_next_write(booted, receiver: Receiver) -> None:
    """The active webhooks are cached per instance; every change drops the cache."""
    async with booted() as (admin, _):
        await notes(admin)
        await notes(admin, "other")
        h = await hook(admin, receiver.url + "/h", ["items.create"], collections=["notes"])

        async def created(collection: str = "notes") -> None:
            r = await admin.post(f"/api/items/{collection}", json={"title": "x"})
            assert r.status in (200, 201), r

        await created()
        await eventually(lambda: len(receiver.requests) == 1)
        assert (await admin.patch(f"/api/webhooks/{h['id']}", json={"active": False})).status == 200
        await created()
        assert (await admin.patch(f"/api/webhooks/{h['id']}", json={"active": True, "collections": ["other"]})
                ).status == 200
        await created()
        await created("other")
        await eventually(lambda: len(receiver.requests) == 2)
        second = await hook(admin, receiver.url + "/second", ["items.create"])
        await created()
        await eventually(lambda: len(receiver.requests) == 3)
        assert (await admin.delete(f"/api/webhooks/{h['id']}")).status == 204
        await created("other")
        await eventually(lambda: len(receiver.requests) == 4)
        await asyncio.sleep(0.6)  # nothing more comes
        assert [(r.path, r.json()["collection"]) for r in receiver.requests] == [
            ("/h", "notes"), ("/h", "other"), ("/second", "notes"), ("/second", "other")]
        assert second["id"]


async def test_without_the_cache_every_write_reads_the_webhooks(booted, receiver: Receiver) -> None:
    async with booted(**{"webhooks.cache_seconds": 0}) as (admin, services):
        await notes(admin)
        await hook(admin, receiver.url, ["items.create"])
        assert (await admin.post("/api/items/notes", json={"title": "sent"})).status in (200, 201)
        await eventually(lambda: len(receiver.requests) == 1)
        async with services.db.transaction() as conn:  # a webhook changed behind the service's back
            await conn.execute(sa.text("UPDATE wos_webhooks SET active = false"))
        assert (await admin.post("/api/items/notes", json={"title": "not sent"})).status in (200, 201)
        await asyncio.sleep(0.6)
        assert len(receiver.requests) == 1


async def test_a_webhook_changed_on_one_instance_reaches_the_other(booted, receiver: Receiver,
                                                                  wos_dialect: str) -> None:
    if wos_dialect != "postgres":
        pytest.skip("several instances share a PostgreSQL database")
    async with booted() as (first, _), booted() as (second, _):
        await notes(first)
        h = await hook(first, receiver.url, ["items.create"])
        await asyncio.sleep(0.3)  # the second instance's schema follows through the bus
        assert (await second.post("/api/items/notes", json={"title": "cached"})).status in (200, 201)
        await eventually(lambda: len(receiver.requests) == 1)
        assert (await first.patch(f"/api/webhooks/{h['id']}", json={"active": False})).status == 200
        await asyncio.sleep(0.3)  # the bus carries the change to the second instance's cache
        assert (await second.post("/api/items/notes", json={"title": "not sent"})).status in (200, 201)
        await asyncio.sleep(0.6)
        assert len(receiver.requests) == 1


async def test_a_dispatcher_process_sends_what_a_queueing_instance_queued(booted, receiver: Receiver,
                                                                         tmp_path) -> None:
    async with booted(**{"webhooks.dispatch": False}) as (admin, services):
        await notes(admin)
        h = await hook(admin, receiver.url, ["items.create"])
        assert (await admin.post("/api/items/notes", json={"title": "queued"})).status in (200, 201)
        await asyncio.sleep(0.5)
        assert receiver.requests == []  # this instance only queues
        env = {k: v for k, v in os.environ.items() if not k.startswith("WORKEROS_")}
        env.update(WORKEROS_NETWORK_ALLOW_PRIVATE="1", WORKEROS_WEBHOOKS_POLL_SECONDS="0.2")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "workeros", "--data-dir", str(tmp_path / "dispatcher"), "dispatcher",
            "--database-url", services.settings["database.url"], stdout=asyncio.subprocess.PIPE, env=env)
        try:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 60)
            assert line.startswith(b"sending webhook deliveries"), line
            await eventually(lambda: len(receiver.requests) == 1, timeout=15)
            # queued while it runs: announced on the bus (PostgreSQL), or found by its poll (SQLite)
            assert (await admin.post("/api/items/notes", json={"title": "live"})).status in (200, 201)
            await eventually(lambda: len(receiver.requests) == 2, timeout=15)
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(proc.wait(), 30)
        assert code == 0
        assert [r.json()["payload"]["title"] for r in receiver.requests] == ["queued", "live"]
        log = (await admin.get(f"/api/webhooks/{h['id']}/deliveries")).data
        assert [d["status"] for d in log] == ["delivered", "delivered"]
