"""WebSocket realtime over real HTTP on both dialects: Directus-shaped
subscribe/init/events/unsubscribe, ping/pong, auth by message, errors."""

from __future__ import annotations

import asyncio
import json
from typing import Any

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
        assert (await _recv(ws))["data"] == [{"id": key}]

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
    async with make_server(auth__access_token_ttl=4) as server, TestClient(server) as client:
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
            expired = await _until(ws, type="auth")
            assert expired["status"] == "expired" and expired["error"]["code"] == "TOKEN_EXPIRED"
            closing = await asyncio.wait_for(ws.receive(), 5)
            assert closing.type.name in ("CLOSE", "CLOSED", "CLOSING")
            assert ws.close_code == 4401
