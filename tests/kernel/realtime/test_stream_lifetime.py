"""Open realtime streams end when the caller's access ends (issue 21, item 1):
over real HTTP on both dialects, an SSE stream, a WebSocket and a GraphQL
subscription of one signed-in user are cut within two seconds of logout, API
key revocation, suspension, deletion or a role change, and when an API key or
a session cookie expires; and across two instances on one PostgreSQL database
through the PostgreSQL bus."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from callers import Api

# No grace period after expiry here (the end of a stream is what these tests
# watch); tests/plugins/websocket covers signing in again within it.
FAST = {"auth__password__argon2_time_cost": 1, "auth__password__argon2_memory_kib": 1024, "realtime__auth_grace_s": 0}
ADMIN = {"email": "admin@example.com", "password": "correct horse battery"}
USER = {"email": "user@example.com", "password": "correct horse battery"}
GQL = "graphql-transport-ws"
#: How long a revocation may take to reach an open stream.
DEADLINE = 2.0


async def _setup(api: Api) -> tuple[Api, dict[str, Any]]:
    """An admin, a ``notes`` collection, a ``reader`` role and a ``nobody`` role
    (no permissions), and a user with the reader role signed in (``json``)."""
    assert (await api.post("/api/auth/sign-up", json=ADMIN)).status in (200, 201)
    admin = await api.sign_in(**ADMIN)
    assert (await admin.post("/api/collections", json={"collection": "notes", "fields": [
        {"field": "title", "type": "string"}]})).status == 201
    roles = {}
    for name in ("reader", "nobody"):
        r = await admin.post("/api/roles", json={"name": name})
        assert r.status in (200, 201), r
        roles[name] = str(r.data["id"])
    r = await admin.post("/api/permissions", json={"role": roles["reader"], "collection": "notes", "action": "read",
                                                   "fields": ["*"]})
    assert r.status in (200, 201), r
    r = await admin.post("/api/users", json={**USER, "role": roles["reader"]})
    assert r.status in (200, 201), r
    return admin, {"user": str(r.data["id"]), "roles": roles}


class Streams:
    """One SSE stream, one WebSocket subscription and one GraphQL subscription
    on ``notes``, all as the caller ``headers`` (or ``token`` sent inside the
    sockets) names."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.stack = contextlib.AsyncExitStack()

    async def open(self, headers: dict[str, str]) -> None:
        sse = await self.stack.enter_async_context(self.client.get("/api/realtime/items/notes", headers=headers))
        assert sse.status == 200, await sse.text()
        self.sse = sse
        assert (await self.sse_event())[0] == "ready"
        ws = await self.stack.enter_async_context(self.client.ws_connect("/api/realtime", headers=headers))
        await ws.send_json({"type": "subscribe", "collection": "notes", "uid": "s", "query": {"limit": 0}})
        assert (await _json(ws))["event"] == "init"
        self.ws = ws
        gql = await self.stack.enter_async_context(self.client.ws_connect("/api/graphql", headers=headers,
                                                                          protocols=(GQL,)))
        await gql.send_json({"type": "connection_init"})
        assert await _json(gql) == {"type": "connection_ack"}
        await gql.send_json({"id": "1", "type": "subscribe",
                             "payload": {"query": "subscription { notes_mutated { event data { title } } }"}})
        self.gql = gql

    async def sse_event(self, timeout: float = 10.0) -> tuple[str, Any]:
        event, data = "message", []
        while True:
            raw = await asyncio.wait_for(self.sse.content.readline(), timeout)
            if not raw:
                return "eof", None
            line = raw.decode().rstrip("\r\n")
            if line == "":
                if data:
                    return event, json.loads("\n".join(data))
                event, data = "message", []
            elif line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())

    async def all_see(self, admin: Api, title: str) -> None:
        """A note created now reaches all three streams."""
        assert (await admin.post("/api/items/notes", json={"title": title})).status in (200, 201)
        event, data = await self.sse_event()
        assert event == "create" and data["data"][0]["title"] == title
        message = await _json(self.ws)
        assert message["event"] == "create" and message["data"][0]["title"] == title
        message = await _json(self.gql)
        assert message["type"] == "next"
        assert message["payload"]["data"]["notes_mutated"]["data"]["title"] == title

    async def all_end(self, since: float) -> dict[str, Any]:
        """Each stream ends within DEADLINE of ``since``; returns what ended it."""
        out: dict[str, Any] = {}
        out["sse"] = await self.sse_event(DEADLINE + 1)
        out["ws"] = await _until_closed(self.ws)
        out["gql"] = await _until_closed(self.gql)
        out["seconds"] = time.monotonic() - since
        assert out["seconds"] < DEADLINE, out
        return out


async def _until_closed(ws: Any) -> tuple[int | None, list[Any]]:
    """The messages up to the server's close frame, and the code it carried."""
    messages = []
    while True:
        message = await asyncio.wait_for(ws.receive(), DEADLINE + 1)
        if message.type.name != "TEXT":
            return (message.data if message.type.name == "CLOSE" else ws.close_code), messages
        messages.append(json.loads(message.data))


async def _json(ws: Any, timeout: float = 10.0) -> Any:
    message = await asyncio.wait_for(ws.receive(), timeout)
    assert message.type.name == "TEXT", message
    return json.loads(message.data)


@contextlib.asynccontextmanager
async def _app(make_server: Any, **overrides: Any) -> AsyncIterator[Api]:
    async with make_server(**FAST, **overrides) as server, TestClient(server) as client:
        api = Api(client)
        api.server = server  # type: ignore[attr-defined]
        yield api


def _cookie(response: Any, name: str) -> str:
    return next(c.split(";")[0].split("=", 1)[1] for c in response.headers.getall("Set-Cookie")
                if c.startswith(name + "="))


def _revoked(ended: dict[str, Any], ws_status: str = "revoked") -> None:
    event, data = ended["sse"]
    assert event == "closed" and data["reason"].startswith("revoked"), ended
    code, messages = ended["ws"]
    assert code == 4401 and {"type": "auth", "status": ws_status} .items() <= messages[-1].items(), ended
    code, _ = ended["gql"]
    assert code == 4403, ended


@pytest.mark.parametrize("how", ["logout", "suspend", "delete"])
async def test_ending_the_users_access_ends_their_streams(make_server: Any, how: str) -> None:
    async with _app(make_server) as api:
        admin, ids = await _setup(api)
        user = await api.sign_in(**USER)
        streams = Streams(api.client)
        async with streams.stack:
            await streams.open({"Authorization": f"Bearer {user.token}"})
            await streams.all_see(admin, "before")
            since = time.monotonic()
            if how == "logout":
                r = await api.anonymous().post("/api/auth/logout",
                                               json={"refresh_token": user.session["refresh_token"]})
            elif how == "suspend":
                r = await admin.patch(f"/api/users/{ids['user']}", json={"status": "suspended"})
            else:
                r = await admin.delete(f"/api/users/{ids['user']}")
            assert r.status in (200, 204), r
            _revoked(await streams.all_end(since))
        assert not api.server.app[SERVICES_KEY()].realtime.connections


def SERVICES_KEY() -> Any:  # noqa: N802 - reads as the app key it returns
    from workeros.http.keys import SERVICES

    return SERVICES


async def test_revoking_an_api_key_ends_its_streams(make_server: Any) -> None:
    async with _app(make_server) as api:
        admin, ids = await _setup(api)
        r = await admin.post("/api/api-keys", json={"name": "feed", "user": ids["user"]})
        assert r.status in (200, 201), r
        key, key_id = r.data["key"], r.data["id"]
        streams = Streams(api.client)
        async with streams.stack:
            await streams.open({"Authorization": f"Bearer {key}"})
            await streams.all_see(admin, "before")
            since = time.monotonic()
            assert (await admin.delete(f"/api/api-keys/{key_id}")).status in (200, 204)
            _revoked(await streams.all_end(since))


async def test_an_api_key_stream_ends_when_the_key_expires(make_server: Any) -> None:
    async with _app(make_server) as api:
        admin, ids = await _setup(api)
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=4)
        r = await admin.post("/api/api-keys", json={"name": "short", "user": ids["user"],
                                                    "expires_at": expires.isoformat()})
        assert r.status in (200, 201), r
        streams = Streams(api.client)
        async with streams.stack:
            await streams.open({"Authorization": f"Bearer {r.data['key']}"})
            await asyncio.sleep(max(0.0, expires.timestamp() - time.time()))
            ended = await streams.all_end(time.monotonic())
        assert ended["sse"][0] == "expired", ended
        assert ended["ws"][0] == 4401 and ended["ws"][1][-1]["status"] == "expired", ended
        assert ended["gql"][0] == 4403, ended


async def test_a_cookie_stream_ends_at_logout_and_when_the_session_expires(make_server: Any) -> None:
    async with _app(make_server, auth__session_ttl=5) as api:
        admin, _ = await _setup(api)
        r = await api.anonymous().post("/api/auth/login", json=USER)
        assert r.status == 200, r
        name = "wos_session"
        value, csrf = (_cookie(r, n) for n in (name, "wos_csrf"))
        headers = {"Cookie": f"{name}={value}", "Origin": str(api.client.make_url(""))}

        streams = Streams(api.client)
        async with streams.stack:
            await streams.open(headers)
            await streams.all_see(admin, "before")
            since = time.monotonic()
            r = await api.anonymous().post("/api/auth/logout", headers={"Cookie": f"{name}={value}",
                                                                         "X-CSRF-Token": csrf})
            assert r.status == 204, r
            _revoked(await streams.all_end(since))

        r = await api.anonymous().post("/api/auth/login", json=USER)
        value = _cookie(r, name)
        signed_in = time.time()
        streams = Streams(api.client)
        async with streams.stack:
            await streams.open({**headers, "Cookie": f"{name}={value}"})
            await asyncio.sleep(max(0.0, signed_in + 5 - time.time()))
            ended = await streams.all_end(time.monotonic())
        assert ended["sse"][0] == "expired", ended


async def test_a_role_change_applies_the_new_rules_to_open_streams(make_server: Any) -> None:
    async with _app(make_server) as api:
        admin, ids = await _setup(api)
        user = await api.sign_in(**USER)
        streams = Streams(api.client)
        async with streams.stack:
            await streams.open({"Authorization": f"Bearer {user.token}"})
            await streams.all_see(admin, "before")
            since = time.monotonic()
            r = await admin.patch(f"/api/users/{ids['user']}", json={"role": ids["roles"]["nobody"]})
            assert r.status == 200, r
            event, data = await streams.sse_event(DEADLINE + 1)
            assert event == "closed" and data["reason"].startswith("forbidden"), (event, data)
            message = await _json(streams.ws, DEADLINE + 1)
            assert message["event"] == "closed" and message["reason"].startswith("forbidden"), message
            message = await _json(streams.gql, DEADLINE + 1)
            assert message["type"] == "error" and message["payload"][0]["extensions"]["code"] == "FORBIDDEN"
            assert time.monotonic() - since < DEADLINE
            # the sockets stay open under the new role: nothing more arrives
            assert (await admin.post("/api/items/notes", json={"title": "after"})).status in (200, 201)
            await streams.ws.send_json({"type": "ping"})
            assert await _json(streams.ws) == {"type": "pong"}


@pytest.mark.postgres
async def test_a_revocation_on_one_instance_ends_streams_on_another(make_server: Any, wos_dialect: str) -> None:
    """Two apps on one PostgreSQL database, the PostgreSQL bus between them:
    the key is revoked on A, the streams were opened on B."""
    if wos_dialect != "postgres":
        pytest.skip("two instances share a PostgreSQL database")
    async with _app(make_server, realtime__bus="postgres") as a, _app(make_server, realtime__bus="postgres") as b:
        admin, ids = await _setup(a)
        r = await admin.post("/api/api-keys", json={"name": "feed", "user": ids["user"]})
        key, key_id = r.data["key"], r.data["id"]
        streams = Streams(b.client)
        async with streams.stack:
            await streams.open({"Authorization": f"Bearer {key}"})
            await streams.all_see(admin, "before")  # a write on A reaches B
            since = time.monotonic()
            assert (await admin.delete(f"/api/api-keys/{key_id}")).status in (200, 204)
            _revoked(await streams.all_end(since))


@pytest.mark.parametrize("path,protocols", [("/api/realtime", ()), ("/api/graphql", (GQL,))])
async def test_cookie_websockets_check_the_origin(make_server: Any, path: str, protocols: tuple[str, ...]) -> None:
    """Issue 21, item 11: a WebSocket signed in by the session cookie is refused
    (403) from a foreign page; its own origin, a configured one, a Bearer
    credential and clients sending no Origin are let in."""
    from aiohttp import WSServerHandshakeError

    async with _app(make_server, realtime__allowed_origins=["https://app.example.com"]) as api:
        await _setup(api)
        r = await api.anonymous().post("/api/auth/login", json=USER)
        cookie = {"Cookie": f"wos_session={_cookie(r, 'wos_session')}"}
        api.client.session.cookie_jar.clear()  # sent explicitly below
        own = str(api.client.make_url("")).rstrip("/")
        for origin in ("https://evil.example", "null", own + ".evil.example"):
            with pytest.raises(WSServerHandshakeError) as info:
                await api.client.ws_connect(path, protocols=protocols, headers={**cookie, "Origin": origin})
            assert info.value.status == 403, origin
        for headers in ({**cookie, "Origin": own}, {**cookie, "Origin": "https://app.example.com"}, cookie,
                        {"Authorization": f"Bearer {(await api.sign_in(**USER)).token}",
                         "Origin": "https://evil.example"}):
            ws = await api.client.ws_connect(path, protocols=protocols, headers=headers)
            await ws.close()
