"""WebSocket realtime over real HTTP on both dialects: Directus-shaped
subscribe/init/events/unsubscribe, ping/pong, auth by message, errors."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from callers import high_and_low_readers

TEST_CALLER = "X-Workeros-Test-Caller"


async def _setup(admin: Any) -> None:
    r = await admin.post("/api/collections", json={"collection": "notes", "fields": [
        {"field": "title", "type": "string"}, {"field": "score", "type": "integer"}]})
    assert r.status == 201, r


async def _recv(ws: Any, timeout: float = 10.0) -> dict:
    msg = await asyncio.wait_for(ws.receive(), timeout)
    return json.loads(msg.data)


async def _until(ws: Any, **match: Any) -> dict:
    while True:
        message = await _recv(ws)
        if all(message.get(k) == v for k, v in match.items()):
            return message


async def test_subscribe_init_events_and_unsubscribe(api: Any) -> None:
    admin = api.as_admin()
    await _setup(admin)
    await admin.post("/api/items/notes", json=[{"title": "old", "score": 1}])
    async with api.client.ws_connect("/api/realtime", headers={TEST_CALLER: "admin"}) as ws:
        await ws.send_json({"type": "subscribe", "collection": "notes", "uid": "s1",
                            "query": {"fields": ["title"]}})
        init = await _recv(ws)
        assert init == {"type": "subscription", "event": "init", "data": [{"title": "old"}], "uid": "s1"}
        key = (await admin.post("/api/items/notes", json={"title": "new", "score": 2})).data["id"]
        created = await _recv(ws)
        assert created == {"type": "subscription", "event": "create", "data": [{"id": key, "title": "new"}],
                           "uid": "s1"}
        await admin.patch(f"/api/items/notes/{key}", json={"title": "newer"})
        assert (await _recv(ws))["event"] == "update"
        await admin.delete(f"/api/items/notes/{key}")
        assert (await _recv(ws))["data"] == [key]  # Directus's shape: the keys

        await ws.send_json({"type": "ping"})
        assert await _recv(ws) == {"type": "pong"}

        await ws.send_json({"type": "unsubscribe", "uid": "s1"})
        await ws.send_json({"type": "ping"})
        assert await _recv(ws) == {"type": "pong"}
        await admin.post("/api/items/notes", json={"title": "unseen"})
        await ws.send_json({"type": "ping"})
        assert await _recv(ws) == {"type": "pong"}  # no event came before the pong


async def test_errors_are_messages_not_disconnects(api: Any) -> None:
    admin = api.as_admin()
    await _setup(admin)
    async with api.client.ws_connect("/api/realtime", headers={TEST_CALLER: "admin"}) as ws:
        for bad, code in [
            ("not json", "INVALID_PAYLOAD"),
            ('{"type": "dance"}', "INVALID_PAYLOAD"),
            ('{"type": "subscribe", "uid": 1}', "INVALID_PAYLOAD"),
            ('{"type": "subscribe", "collection": "nope", "uid": 2}', "NOT_FOUND"),
            ('{"type": "subscribe", "collection": "notes", "query": {"fields": ["zzz"]}, "uid": 3}', "INVALID_QUERY"),
            ('{"type": "subscribe", "collection": "notes", "query": {"limit": 99999}, "uid": 4}', "INVALID_PAYLOAD"),
            ('{"type": "auth", "access_token": "garbage"}', "INVALID_CREDENTIALS"),
        ]:
            await ws.send_str(bad)
            reply = await _recv(ws)
            assert reply["status"] == "error" and reply["error"]["code"] == code, (bad, reply)
            assert "Traceback" not in json.dumps(reply)
        await ws.send_json({"type": "ping"})
        assert await _recv(ws) == {"type": "pong"}


async def test_anonymous_cannot_subscribe_to_a_private_collection(api: Any) -> None:
    admin = api.as_admin()
    await _setup(admin)
    async with api.client.ws_connect("/api/realtime") as ws:
        await ws.send_json({"type": "subscribe", "collection": "notes", "uid": "x"})
        reply = await _recv(ws)
        assert reply["error"]["code"] == "FORBIDDEN" and reply["uid"] == "x"


async def test_auth_message_signs_in_and_expiry_ends_the_connection(api: Any, make_server: Any) -> None:
    from aiohttp.test_utils import TestClient
    from callers import Api

    # The token sent in the auth message is minted just before it is sent, so
    # a slow machine spends none of its lifetime on the set-up requests.
    credentials = {"email": "a@example.com", "password": "correct horse battery", "mode": "json"}
    async with make_server(auth__access_token_ttl=4, realtime__auth_grace_s=1) as server, \
            TestClient(server) as client:
        api = Api(client)
        r = await api.post("/api/auth/sign-up", json={"email": "a@example.com", "password": "correct horse battery"})
        assert r.status in (200, 201), r
        setup_token = (await api.post("/api/auth/login", json=credentials)).data["access_token"]
        bearer = {"Authorization": f"Bearer {setup_token}"}
        assert (await api.post("/api/collections", headers=bearer, json={"collection": "notes", "fields": [
            {"field": "title", "type": "string"}]})).status == 201
        async with client.ws_connect("/api/realtime") as ws:
            await ws.send_json({"type": "subscribe", "collection": "notes", "uid": "a"})
            assert (await _recv(ws))["error"]["code"] == "FORBIDDEN"
            token = (await api.post("/api/auth/login", json=credentials)).data["access_token"]
            await ws.send_json({"type": "auth", "access_token": token})
            assert await _recv(ws) == {"type": "auth", "status": "ok"}
            await ws.send_json({"type": "subscribe", "collection": "notes", "uid": "a"})
            assert (await _recv(ws))["event"] == "init"
            # first the request for a fresh token (the socket stays open)...
            asking = await _until(ws, type="auth")
            assert asking["status"] == "error" and asking["error"]["code"] == "TOKEN_EXPIRED"
            # ...then, none having come within realtime.auth_grace_s, the end
            expired = await _until(ws, type="auth")
            assert expired["status"] == "expired" and expired["error"]["code"] == "TOKEN_EXPIRED"
            closing = await asyncio.wait_for(ws.receive(), 5)
            assert closing.type.name in ("CLOSE", "CLOSED", "CLOSING")
            assert ws.close_code == 4401


async def test_a_fresh_token_within_the_grace_period_keeps_the_subscriptions(make_server: Any) -> None:
    """Events that happen after expiry wait, and arrive once the client signs
    in again in place (what Directus's SDK does on TOKEN_EXPIRED); nothing is
    sent while the credential is expired."""
    from aiohttp.test_utils import TestClient
    from callers import Api

    credentials = {"email": "a@example.com", "password": "correct horse battery", "mode": "json"}
    async with make_server(auth__access_token_ttl=3, realtime__auth_grace_s=30) as server, \
            TestClient(server) as client:
        api = Api(client)
        await api.post("/api/auth/sign-up", json={"email": "a@example.com", "password": "correct horse battery"})
        key = (await api.post("/api/api-keys", headers={"Authorization": "Bearer " + (await api.post(
            "/api/auth/login", json=credentials)).data["access_token"]}, json={"name": "k"})).data["key"]
        writer = {"Authorization": f"Bearer {key}"}
        assert (await api.post("/api/collections", headers=writer, json={"collection": "notes", "fields": [
            {"field": "title", "type": "string"}]})).status == 201
        token = (await api.post("/api/auth/login", json=credentials)).data["access_token"]
        async with client.ws_connect("/api/realtime", params={"access_token": token}) as ws:
            await ws.send_json({"type": "subscribe", "collection": "notes", "uid": "a"})
            assert (await _recv(ws))["event"] == "init"
            asking = await _until(ws, type="auth")
            assert asking["status"] == "error" and asking["error"]["code"] == "TOKEN_EXPIRED"
            created = await api.post("/api/items/notes", headers=writer, json={"title": "while expired"})
            await _nothing_within(ws, 0.5)
            fresh = (await api.post("/api/auth/login", json=credentials)).data["access_token"]
            await ws.send_json({"type": "auth", "access_token": fresh})
            assert await _recv(ws) == {"type": "auth", "status": "ok"}
            got = await _recv(ws)
            assert (got["event"], got["data"]) == ("create", [{"id": created.data["id"], "title": "while expired"}])


async def test_event_filter_alias_path_and_token_in_the_url(api: Any) -> None:
    """``subscribe`` with ``event`` gets only those events; ``/websocket`` is
    the same socket; a bad ``?access_token=`` on the upgrade is 401 (a good one
    signs it in: the grace-period test above)."""
    admin = api.as_admin()
    await _setup(admin)
    async with api.client.ws_connect("/websocket", headers={TEST_CALLER: "admin"}) as ws:
        await ws.send_json({"type": "subscribe", "collection": "notes", "event": "delete", "uid": "d"})
        assert (await _recv(ws))["event"] == "init"
        key = (await admin.post("/api/items/notes", json={"title": "x"})).data["id"]
        await admin.patch(f"/api/items/notes/{key}", json={"title": "y"})
        await admin.delete(f"/api/items/notes/{key}")
        assert await _recv(ws) == {"type": "subscription", "event": "delete", "data": [key], "uid": "d"}
        await ws.send_json({"type": "subscribe", "collection": "notes", "event": "init", "uid": "e"})
        assert (await _recv(ws))["error"]["code"] == "INVALID_PAYLOAD"
    response = await api.client.get("/api/realtime", params={"access_token": "not-a-token"},
                                    headers={"Connection": "Upgrade", "Upgrade": "websocket",
                                             "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert response.status == 401
    assert (await response.json())["errors"][0]["extensions"]["code"] == "INVALID_CREDENTIALS"


async def _nothing_within(ws: Any, seconds: float) -> None:
    """No subscription event arrives in ``seconds`` (a ping round trip proves the
    socket is alive and everything sent before the pong has been read)."""
    await asyncio.sleep(seconds)
    await ws.send_json({"type": "ping"})
    message = await _recv(ws)
    assert message == {"type": "pong"}, message


async def test_visibility_transitions_and_redaction_per_role(api: Any) -> None:
    """The WebSocket twin of the SSE test: two roles with row filters and a field
    allowlist, and an admin, on one collection. Leaving a role's view is a delete,
    entering it a create, and a delete reaches only those who could see the row."""
    admin = api.as_admin()
    r = await admin.post("/api/collections", json={"collection": "notes", "fields": [
        {"field": "title", "type": "string"}, {"field": "secret", "type": "string"},
        {"field": "score", "type": "integer"}]})
    assert r.status == 201, r
    _, callers = await high_and_low_readers(admin)
    sockets = {}
    try:
        for name, caller in callers.items():
            ws = await api.client.ws_connect("/api/realtime", headers={TEST_CALLER: caller})
            await ws.send_json({"type": "subscribe", "collection": "notes", "uid": name})
            assert (await _recv(ws))["event"] == "init"
            sockets[name] = ws
        high, low, everyone = sockets["high"], sockets["low"], sockets["everyone"]

        key = (await admin.post("/api/items/notes", json={"title": "n", "secret": "s", "score": 5})).data["id"]
        got = await _recv(low)
        assert (got["event"], got["data"]) == ("create", [{"id": key, "title": "n", "score": 5}])  # no secret
        assert (await _recv(everyone))["data"][0]["secret"] == "s"
        await _nothing_within(high, 0.3)

        await admin.patch(f"/api/items/notes/{key}", json={"score": 50})  # low -> high
        got = await _recv(low)
        assert (got["event"], got["data"]) == ("delete", [key])
        got = await _recv(high)
        assert (got["event"], got["data"]) == ("create", [{"id": key, "title": "n", "score": 50}])
        assert (await _recv(everyone))["event"] == "update"

        await admin.patch(f"/api/items/notes/{key}", json={"title": "m"})  # stays with high
        got = await _recv(high)
        assert (got["event"], got["data"][0]["title"]) == ("update", "m")
        await _nothing_within(low, 0.3)
        assert (await _recv(everyone))["event"] == "update"

        await admin.delete(f"/api/items/notes/{key}")
        got = await _recv(high)
        assert (got["event"], got["data"]) == ("delete", [key])
        assert (await _recv(everyone))["event"] == "delete"
        await _nothing_within(low, 0.3)  # low never saw the row as it was: no delete for it
    finally:
        for ws in sockets.values():
            await ws.close()
