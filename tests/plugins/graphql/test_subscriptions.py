"""GraphQL subscriptions (``<slug>_mutated``) and operations over the
``graphql-transport-ws`` WebSocket protocol at ``/api/graphql``, over real HTTP on
both dialects: gql's own client for protocol compliance, raw protocol messages
for the rest (permission filtering per role, arguments, errors, close codes)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from callers import high_and_low_readers
from gql import Client, gql
from gql.transport.aiohttp_websockets import AIOHTTPWebsocketsTransport
from gql.transport.exceptions import TransportQueryError

TEST_CALLER = "X-Workeros-Test-Caller"
PROTOCOL = "graphql-transport-ws"


async def _setup(api: Any) -> None:
    admin = api.as_admin()
    r = await admin.post("/api/collections", json={"collection": "people", "fields": [
        {"field": "name", "type": "string"}]})
    assert r.status == 201, r
    r = await admin.post("/api/collections", json={"collection": "notes", "fields": [
        {"field": "title", "type": "string"}, {"field": "secret", "type": "string"},
        {"field": "score", "type": "integer"}]})
    assert r.status == 201, r
    r = await admin.post("/api/relations", json={"collection": "notes", "field": "owner",
                                                 "related_collection": "people", "one_field": "notes"})
    assert r.status in (200, 201), r


async def _connect(api: Any, caller: str | None = "admin", **kw: Any) -> Any:
    headers = {TEST_CALLER: caller} if caller else {}
    return await api.client.ws_connect("/api/graphql", protocols=(PROTOCOL,), headers=headers, **kw)


async def _recv(ws: Any, timeout: float = 10.0) -> dict:
    """The next protocol message (the server's keep-alive pings skipped)."""
    while True:
        msg = await asyncio.wait_for(ws.receive(), timeout)
        assert msg.type.name == "TEXT", msg
        message = json.loads(msg.data)
        assert "Traceback" not in msg.data
        if message != {"type": "ping"}:
            return message


async def _open(api: Any, caller: str | None = "admin", payload: dict | None = None) -> Any:
    ws = await _connect(api, caller)
    await ws.send_json({"type": "connection_init", **({"payload": payload} if payload is not None else {})})
    assert await _recv(ws) == {"type": "connection_ack"}
    return ws


async def _synced(ws: Any) -> None:
    """A ping round trip: every message sent before it has been handled (a
    subscription before it is registered with the hub)."""
    await ws.send_json({"type": "ping"})
    assert await _recv(ws) == {"type": "pong"}


async def _subscribe(ws: Any, op_id: str, query: str, variables: dict | None = None) -> None:
    await ws.send_json({"id": op_id, "type": "subscribe",
                        "payload": {"query": query, **({"variables": variables} if variables else {})}})
    await _synced(ws)


async def _next(ws: Any, op_id: str) -> Any:
    message = await _recv(ws)
    assert message["type"] == "next" and message["id"] == op_id, message
    assert "errors" not in message["payload"], message
    return message["payload"]["data"]


async def _nothing_within(ws: Any, seconds: float) -> None:
    await asyncio.sleep(seconds)
    await _synced(ws)  # the pong is the first message: no event came before it


async def _closed(ws: Any) -> int:
    msg = await asyncio.wait_for(ws.receive(), 10)
    while msg.type.name == "TEXT":  # messages sent before the close
        msg = await asyncio.wait_for(ws.receive(), 10)
    assert msg.type.name in ("CLOSE", "CLOSED", "CLOSING"), msg
    return ws.close_code


NOTES = "subscription { notes_mutated { event key data { id title score } } }"


async def test_gql_client_streams_creates_updates_and_deletes(api: Any) -> None:
    """gql's own graphql-transport-ws client: a subscription and, on the same
    socket, a query and mutations."""
    await _setup(api)
    url = str(api.client.make_url("/api/graphql"))
    transport = AIOHTTPWebsocketsTransport(url=url, headers={TEST_CALLER: "admin"}, subprotocols=[PROTOCOL])
    async with Client(transport=transport, fetch_schema_from_transport=False) as session:
        events = session.subscribe(gql(NOTES))
        first = asyncio.ensure_future(events.__anext__())
        await asyncio.sleep(0.1)  # the subscribe message is sent ...
        assert await session.execute(gql("{ notes { id } }")) == {"notes": []}  # ... and handled
        created = await session.execute(gql('mutation { create_notes_item(data: {title: "a", score: 1}) { id } }'))
        key = created["create_notes_item"]["id"]
        assert await asyncio.wait_for(first, 10) == {"notes_mutated": {
            "event": "create", "key": str(key), "data": {"id": key, "title": "a", "score": 1}}}
        await session.execute(gql("mutation($id: ID!) { update_notes_item(id: $id, data: {score: 2}) { id } }"),
                              variable_values={"id": key})
        updated = await asyncio.wait_for(events.__anext__(), 10)
        assert updated["notes_mutated"]["event"] == "update" and updated["notes_mutated"]["data"]["score"] == 2
        await api.as_admin().delete(f"/api/items/notes/{key}")
        deleted = await asyncio.wait_for(events.__anext__(), 10)
        assert deleted == {"notes_mutated": {"event": "delete", "key": str(key), "data": None}}
        await events.aclose()

        with pytest.raises(TransportQueryError) as info:
            await session.execute(gql("subscription { notes_mutated { nope } }"))
        assert info.value.errors[0]["extensions"]["code"] == "INVALID_QUERY"


async def test_selection_aliases_fragments_typename_and_many_to_one_keys(api: Any) -> None:
    await _setup(api)
    admin = api.as_admin()
    person = (await admin.post("/api/items/people", json={"name": "Ada"})).data["id"]
    ws = await _open(api)
    try:
        await _subscribe(ws, "s", """subscription { changed: notes_mutated { __typename kind: event ...f } }
                                     fragment f on notes_Mutated { data { __typename title owner { id } } }""")
        key = (await admin.post("/api/items/notes", json={"title": "t", "secret": "x", "owner": person})).data["id"]
        assert await _next(ws, "s") == {"changed": {"__typename": "notes_Mutated", "kind": "create", "data": {
            "__typename": "notes", "title": "t", "owner": {"id": person}}}}

        for bad, says in (("subscription { notes_mutated { data { owner { name } } } }", "select 'id' only"),
                          ("subscription { people_mutated { data { notes { id } } } }", "lists related items"),
                          ("subscription { __typename }", "one <collection>_mutated field")):
            await ws.send_json({"id": "bad", "type": "subscribe", "payload": {"query": bad}})
            error = await _recv(ws)
            assert error["type"] == "error" and error["id"] == "bad", error
            assert error["payload"][0]["extensions"]["code"] == "INVALID_QUERY"
            assert says in error["payload"][0]["message"], error
        await admin.patch(f"/api/items/notes/{key}", json={"owner": None})
        assert (await _next(ws, "s"))["changed"]["data"]["owner"] is None
    finally:
        await ws.close()


async def test_role_filter_field_allowlist_and_visibility_transitions(api: Any) -> None:
    """As the SSE and WebSocket tests have it: two roles with row filters and a
    field allowlist and an admin. Leaving a role's view is a delete, entering it
    a create, and a delete reaches only those who could see the row."""
    await _setup(api)
    admin = api.as_admin()
    roles, callers = await high_and_low_readers(admin)
    sockets = {}
    try:
        for name, caller in callers.items():
            sockets[name] = ws = await _open(api, caller)
            await _subscribe(ws, name, NOTES)
        high, low, everyone = sockets["high"], sockets["low"], sockets["everyone"]

        # a field the role may not read is not in its schema
        await low.send_json({"id": "x", "type": "subscribe",
                             "payload": {"query": "subscription { notes_mutated { data { secret } } }"}})
        error = await _recv(low)
        assert error["type"] == "error" and error["payload"][0]["extensions"]["code"] == "INVALID_QUERY"

        key = (await admin.post("/api/items/notes", json={"title": "n", "secret": "s", "score": 5})).data["id"]
        assert (await _next(low, "low"))["notes_mutated"] == {
            "event": "create", "key": str(key), "data": {"id": key, "title": "n", "score": 5}}
        assert (await _next(everyone, "everyone"))["notes_mutated"]["event"] == "create"
        await _nothing_within(high, 0.3)

        await admin.patch(f"/api/items/notes/{key}", json={"score": 50})  # low -> high
        assert (await _next(low, "low"))["notes_mutated"] == {"event": "delete", "key": str(key), "data": None}
        assert (await _next(high, "high"))["notes_mutated"] == {
            "event": "create", "key": str(key), "data": {"id": key, "title": "n", "score": 50}}
        assert (await _next(everyone, "everyone"))["notes_mutated"]["event"] == "update"

        await admin.patch(f"/api/items/notes/{key}", json={"title": "m"})  # stays with high
        got = (await _next(high, "high"))["notes_mutated"]
        assert (got["event"], got["data"]["title"]) == ("update", "m")
        await _nothing_within(low, 0.3)
        assert (await _next(everyone, "everyone"))["notes_mutated"]["event"] == "update"

        await admin.delete(f"/api/items/notes/{key}")
        assert (await _next(high, "high"))["notes_mutated"]["event"] == "delete"
        assert (await _next(everyone, "everyone"))["notes_mutated"]["event"] == "delete"
        await _nothing_within(low, 0.3)  # low never saw the row as it was: no delete for it

        # the role loses read access: its subscription ends with an error
        r = await admin.get("/api/permissions", params={"role": roles["low"]})
        for permission in r.data:
            assert (await admin.delete(f"/api/permissions/{permission['id']}")).status in (200, 204)
        error = await _recv(low)
        assert (error["type"], error["id"]) == ("error", "low"), error
        assert error["payload"][0]["extensions"]["code"] == "FORBIDDEN"
    finally:
        for ws in sockets.values():
            await ws.close()


async def test_filter_and_event_arguments(api: Any) -> None:
    await _setup(api)
    admin = api.as_admin()
    ws = await _open(api)
    try:
        await _subscribe(ws, "big", "subscription { notes_mutated(filter: {score: {_gte: 10}}) { event data { score } } }")
        await _subscribe(ws, "updates", """subscription($kind: EventEnum, $f: notes_Filter) {
                                               notes_mutated(event: $kind, filter: $f) { event key } }""",
                         {"kind": "update", "f": {"title": {"_starts_with": "a"}}})
        small = (await admin.post("/api/items/notes", json={"title": "a1", "score": 1})).data["id"]
        big = (await admin.post("/api/items/notes", json={"title": "b1", "score": 20})).data["id"]
        assert await _next(ws, "big") == {"notes_mutated": {"event": "create", "data": {"score": 20}}}
        await admin.patch(f"/api/items/notes/{small}", json={"score": 2})
        assert await _next(ws, "updates") == {"notes_mutated": {"event": "update", "key": str(small)}}
        await admin.patch(f"/api/items/notes/{big}", json={"score": 30})  # not an "a…" title
        assert await _next(ws, "big") == {"notes_mutated": {"event": "update", "data": {"score": 30}}}
        await _nothing_within(ws, 0.3)

        for query, variables in (
                ('subscription { notes_mutated(filter: {nope: {_eq: 1}}) { key } }', None),
                ('subscription { notes_mutated(event: explode) { key } }', None),
                ('subscription($k: EventEnum) { notes_mutated(event: $k) { key } }', {"k": "explode"})):
            await ws.send_json({"id": "bad", "type": "subscribe",
                                "payload": {"query": query, "variables": variables}})
            error = await _recv(ws)
            assert (error["type"], error["id"]) == ("error", "bad"), (query, error)
            assert error["payload"][0]["extensions"]["code"] == "INVALID_QUERY", (query, error)
    finally:
        await ws.close()


async def test_a_collection_the_role_cannot_read_is_an_error(api: Any) -> None:
    await _setup(api)
    role = str((await api.as_admin().post("/api/roles", json={"name": "nobody"})).data["id"])
    for caller in (f"role:{role}:n", None):
        ws = await _open(api, caller)
        try:
            await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": NOTES}})
            error = await _recv(ws)
            assert (error["type"], error["id"]) == ("error", "1"), error
            assert error["payload"][0]["extensions"]["code"] == "INVALID_QUERY"
            assert set(error["payload"][0]) <= {"message", "locations", "path", "extensions"}
            await _synced(ws)  # an error is a message, not a disconnect
        finally:
            await ws.close()


async def test_ping_pong_and_complete_stops_events(api: Any) -> None:
    await _setup(api)
    admin = api.as_admin()
    ws = await _connect(api)
    try:
        await ws.send_json({"type": "ping", "payload": {"t": 1}})  # allowed before connection_init
        assert await _recv(ws) == {"type": "pong", "payload": {"t": 1}}
        await ws.send_json({"type": "pong"})  # an unsolicited pong is a heartbeat: no reply
        await ws.send_json({"type": "connection_init"})
        assert await _recv(ws) == {"type": "connection_ack"}
        await _subscribe(ws, "a", "subscription { notes_mutated { key } }")
        await _subscribe(ws, "b", "subscription { notes_mutated(event: create) { event } }")
        await admin.post("/api/items/notes", json={"title": "one"})
        got = {}
        for _ in range(2):
            message = await _recv(ws)
            got[message["id"]] = message["payload"]["data"]
        assert got["b"] == {"notes_mutated": {"event": "create"}} and "key" in got["a"]["notes_mutated"]

        await ws.send_json({"id": "a", "type": "complete"})
        await ws.send_json({"id": "unknown", "type": "complete"})  # nothing to stop: ignored
        await _synced(ws)
        await admin.post("/api/items/notes", json={"title": "two"})
        message = await _recv(ws)
        assert message["id"] == "b"  # a's events stopped
        await _nothing_within(ws, 0.3)
        # the id of a completed subscription can be used again
        await _subscribe(ws, "a", "subscription { notes_mutated { key } }")
        await admin.post("/api/items/notes", json={"title": "three"})
        assert {(await _recv(ws))["id"], (await _recv(ws))["id"]} == {"a", "b"}
    finally:
        await ws.close()
    from workeros.http.keys import SERVICES

    services = api.server.app[SERVICES]
    for _ in range(50):
        if services.realtime.subscriber_count() == 0 and not services.realtime.connections:
            break
        await asyncio.sleep(0.05)
    assert services.realtime.subscriber_count() == 0  # closing the socket ended its subscriptions
    assert not services.realtime.connections


async def test_queries_and_mutations_over_the_socket(api: Any) -> None:
    await _setup(api)
    ws = await _open(api)
    try:
        await ws.send_json({"id": "m", "type": "subscribe", "payload": {
            "query": 'mutation($t: String) { create_notes_item(data: {title: $t}) { title } }',
            "variables": {"t": "hi"}}})
        assert await _recv(ws) == {"id": "m", "type": "next", "payload": {"data": {"create_notes_item": {"title": "hi"}}}}
        assert await _recv(ws) == {"id": "m", "type": "complete"}
        await ws.send_json({"id": "q", "type": "subscribe", "payload": {"query": "{ notes { title } }"}})
        assert await _recv(ws) == {"id": "q", "type": "next", "payload": {"data": {"notes": [{"title": "hi"}]}}}
        assert await _recv(ws) == {"id": "q", "type": "complete"}

        deep = "{ notes { owner { notes { owner { notes { owner { notes { owner { notes { owner { notes { id } } } } } } } } } } } }"
        for query, code in ((deep, "INVALID_QUERY"), ("{ notes { nope } }", "INVALID_QUERY"), ("{ notes {", "INVALID_QUERY"),
                            ("", "INVALID_QUERY"),
                            ('mutation { create_notes_item(data: {score: "x"}) { id } }', "INVALID_QUERY")):
            await ws.send_json({"id": "e", "type": "subscribe", "payload": {"query": query}})
            error = await _recv(ws)
            assert (error["type"], error["id"]) == ("error", "e"), (query, error)
            assert error["payload"][0]["extensions"]["code"] == code, (query, error)
        # an execution error comes in the result, beside data, as over HTTP
        await ws.send_json({"id": "x", "type": "subscribe", "payload": {
            "query": "mutation { update_notes_item(id: 999, data: {title: \"z\"}) { id } }"}})
        result = await _recv(ws)
        assert result["type"] == "next" and result["payload"]["errors"][0]["extensions"]["code"] == "NOT_FOUND"
        assert await _recv(ws) == {"id": "x", "type": "complete"}
    finally:
        await ws.close()


async def test_http_does_not_run_subscriptions(api: Any) -> None:
    await _setup(api)
    r = await api.as_admin().post("/api/graphql", json={"query": NOTES})
    assert r.status == 405 and r.code == "METHOD_NOT_ALLOWED"
    r = await api.as_admin().get("/api/graphql", params={"query": NOTES})
    assert r.status == 405


@pytest.mark.parametrize(("messages", "code"), [
    (['{"id": "1", "type": "subscribe", "payload": {"query": "{ notes { id } }"}}'], 4401),  # before init
    (["{not json"], 4400),
    (['["connection_init"]'], 4400),
    (['{"type": "dance"}'], 4400),
    (['{"type": "connection_init"}', '{"type": "connection_init"}'], 4429),
    (['{"type": "connection_init", "payload": "x"}'], 4400),
    (['{"type": "connection_init"}', '{"type": "subscribe", "payload": {"query": "{ notes { id } }"}}'], 4400),
    (['{"type": "connection_init"}', '{"id": "1", "type": "subscribe"}'], 4400),
    (['{"type": "connection_init"}', '{"id": "1", "type": "next", "payload": {}}'], 4400),
    (['{"type": "connection_init"}',
      '{"id": "1", "type": "subscribe", "payload": {"query": "subscription { notes_mutated { key } }"}}',
      '{"id": "1", "type": "subscribe", "payload": {"query": "subscription { notes_mutated { key } }"}}'], 4409),
    (['{"type": "connection_init", "payload": {"access_token": "garbage"}}'], 4403),
    (['{"type": "connection_init", "payload": {"Authorization": "Bearer garbage"}}'], 4403),
])
async def test_protocol_errors_close_the_socket(api: Any, messages: list[str], code: int) -> None:
    await _setup(api)
    ws = await _connect(api)
    for message in messages:
        await ws.send_str(message)
    assert await _closed(ws) == code


async def test_binary_frames_and_a_missing_subprotocol_close_the_socket(api: Any) -> None:
    ws = await _connect(api)
    await ws.send_bytes(b'{"type": "connection_init"}')
    assert await _closed(ws) == 4400
    ws = await api.client.ws_connect("/api/graphql", headers={TEST_CALLER: "admin"})
    assert await _closed(ws) == 4406


async def test_connection_init_timeout(make_server: Any) -> None:
    from aiohttp.test_utils import TestClient
    from callers import Api, TestCallers

    async with make_server(TestCallers(), graphql__connection_init_timeout_s=0.3) as server, \
            TestClient(server) as client:
        ws = await _connect(Api(client))
        assert await _closed(ws) == 4408


async def test_sign_in_by_connection_init_and_token_expiry(make_server: Any) -> None:
    """A token in ``connection_init`` signs in (a bad one closes 4403); a bad
    Bearer header on the upgrade is refused (401) before any socket; the
    connection ends (4403) when the token it runs on expires."""
    from aiohttp import WSServerHandshakeError
    from aiohttp.test_utils import TestClient
    from callers import Api

    credentials = {"email": "a@example.com", "password": "correct horse battery", "mode": "json"}
    async with make_server(auth__access_token_ttl=3) as server, TestClient(server) as client:
        api = Api(client)
        r = await api.post("/api/auth/sign-up", json={"email": "a@example.com", "password": "correct horse battery"})
        assert r.status in (200, 201), r

        async def bearer() -> dict[str, str]:  # a fresh token: a slow machine spends none of its life
            return {"Authorization": f"Bearer {(await api.post('/api/auth/login', json=credentials)).data['access_token']}"}

        assert (await api.post("/api/collections", headers=await bearer(), json={"collection": "notes", "fields": [
            {"field": "title", "type": "string"}]})).status == 201

        with pytest.raises(WSServerHandshakeError) as info:
            await client.ws_connect("/api/graphql", protocols=(PROTOCOL,), headers={"Authorization": "Bearer nope"})
        assert info.value.status == 401

        async with client.ws_connect("/api/graphql", protocols=(PROTOCOL,)) as ws:  # anonymous: public
            await ws.send_json({"type": "connection_init"})
            assert await _recv(ws) == {"type": "connection_ack"}
            await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": NOTES}})
            assert (await _recv(ws))["type"] == "error"

        token = (await api.post("/api/auth/login", json=credentials)).data["access_token"]
        async with client.ws_connect("/api/graphql", protocols=(PROTOCOL,)) as ws:
            await ws.send_json({"type": "connection_init", "payload": {"access_token": token}})
            assert await _recv(ws) == {"type": "connection_ack"}
            await _subscribe(ws, "1", "subscription { notes_mutated { event data { title } } }")
            await api.post("/api/items/notes", headers=await bearer(), json={"title": "seen"})
            assert await _next(ws, "1") == {"notes_mutated": {"event": "create", "data": {"title": "seen"}}}
            assert await _closed(ws) == 4403  # the token's 3 seconds ran out


async def test_heartbeat_connection_limit_and_shutdown(make_server: Any) -> None:
    """The server pings idle sockets; a user's connections count against the
    realtime limit (429 on the upgrade); shutting down closes sockets with 1001."""
    from aiohttp import WSServerHandshakeError
    from aiohttp.test_utils import TestClient
    from callers import Api, TestCallers

    async with make_server(TestCallers(), realtime__heartbeat_s=0.2, realtime__max_connections_per_user=1) as server:
        async with TestClient(server) as client:
            api = Api(client)
            await _setup(api)
            ws = await _open(api)
            message = await asyncio.wait_for(ws.receive(), 5)
            assert json.loads(message.data) == {"type": "ping"}
            await ws.send_json({"type": "pong"})
            with pytest.raises(WSServerHandshakeError) as info:
                await _connect(api)
            assert info.value.status == 429
            await _subscribe(ws, "1", NOTES)
            closing = asyncio.ensure_future(server.close())
            assert await _closed(ws) == 1001
            await closing
