"""API keys cannot escalate (issue 21, item 3), over HTTP on both dialects: a
key creates keys only for its own user, inheriting its guards and expiry, and
cannot lift them; a read-only key (``mcp_read_only``) changes nothing on any way
in — REST, GraphQL over HTTP and over WebSocket — while reads still work."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

GQL = "graphql-transport-ws"


async def _admin_and_collection(api, sign_up, password):
    await sign_up("ada@example.com")
    admin = await api.sign_in("ada@example.com", password)
    r = await admin.post("/api/collections", json={"collection": "notes", "fields": [
        {"field": "title", "type": "string"}]})
    assert r.status == 201, r
    assert (await admin.post("/api/items/notes", json={"title": "first"})).status in (200, 201)
    return admin


async def test_a_key_cannot_mint_a_stronger_key_or_lift_its_guards(api, sign_up, password):
    admin = await _admin_and_collection(api, sign_up, password)
    bob = await sign_up("bob@example.com")
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    r = await admin.post("/api/api-keys", json={"name": "limited", "expires_at": soon.isoformat(),
                                                "mcp_tools": ["read_items"]})
    assert r.status == 201, r
    limited = api.with_token(r.data["key"])

    # the attack of the issue: a new key without guards or expiry
    for body in ({"name": "free", "mcp_tools": None},
                 {"name": "later", "expires_at": (soon + dt.timedelta(days=1)).isoformat()},
                 {"name": "more", "mcp_tools": ["read_items", "delete_items"]},
                 {"name": "other user", "user": bob["id"]}):
        refused = await limited.post("/api/api-keys", json=body)
        assert (refused.status, refused.code) == (403, "FORBIDDEN"), (body, refused)

    # asking for nothing inherits the key's guards and expiry
    child = await limited.post("/api/api-keys", json={"name": "child"})
    assert child.status == 201, child
    assert child.data["mcp_tools"] == ["read_items"]
    assert dt.datetime.fromisoformat(child.data["expires_at"].replace("Z", "+00:00")) <= soon
    # asking for less is fine
    less = await limited.post("/api/api-keys", json={"name": "less", "mcp_tools": [],
                                                    "expires_at": (soon - dt.timedelta(minutes=5)).isoformat()})
    assert less.status == 201 and less.data["mcp_tools"] == [], less

    # and it cannot lift the guards of itself or of another key
    for key_id in (r.data["id"], child.data["id"]):
        lifted = await limited.patch(f"/api/api-keys/{key_id}/mcp-guards", json={"mcp_tools": None})
        assert (lifted.status, lifted.code) == (403, "FORBIDDEN"), lifted
    listed = {k["id"]: k for k in (await admin.get("/api/api-keys")).data}
    assert listed[r.data["id"]]["mcp_tools"] == ["read_items"]
    assert set(listed) == {r.data["id"], child.data["id"], less.data["id"]}
    # a person signed in (not with a key) still manages keys freely
    assert (await admin.patch(f"/api/api-keys/{r.data['id']}/mcp-guards", json={"mcp_tools": None})).status == 200


async def test_a_read_only_key_changes_nothing_on_any_way_in(api, sign_up, password):
    admin = await _admin_and_collection(api, sign_up, password)
    r = await admin.post("/api/api-keys", json={"name": "ro", "mcp_read_only": True})
    assert r.status == 201, r
    ro = api.with_token(r.data["key"])

    # reads work
    assert (await ro.get("/api/items/notes")).status == 200
    query = await ro.post("/api/graphql", json={"query": "{ notes { title } }"})
    assert query.status == 200 and query.json["data"]["notes"] == [{"title": "first"}], query

    # every write is refused: items, schema, users, keys, roles
    writes = [
        ("post", "/api/items/notes", {"title": "x"}),
        ("patch", "/api/items/notes/1", {"title": "x"}),
        ("delete", "/api/items/notes/1", None),
        ("post", "/api/collections", {"collection": "more"}),
        ("patch", "/api/users/me", {"first_name": "Eve"}),
        ("post", "/api/api-keys", {"name": "escape"}),
        ("patch", f"/api/api-keys/{r.data['id']}/mcp-guards", {"mcp_read_only": False}),
        ("delete", f"/api/api-keys/{r.data['id']}", None),
        ("post", "/api/roles", {"name": "sneaky"}),
    ]
    for method, path, body in writes:
        kw = {"json": body} if body is not None else {}
        refused = await getattr(ro, method)(path, **kw)
        assert (refused.status, refused.code) == (403, "FORBIDDEN"), (method, path, refused)

    mutation = await ro.post("/api/graphql", json={"query": 'mutation { create_notes_item(data: {title: "x"}) '
                                                            "{ id } }"})
    assert mutation.json["errors"][0]["extensions"]["code"] == "FORBIDDEN", mutation

    # GraphQL over WebSocket, signed in by the key in connection_init
    async with api.client.ws_connect("/api/graphql", protocols=(GQL,)) as ws:
        await ws.send_json({"type": "connection_init", "payload": {"access_token": r.data["key"]}})
        assert json.loads((await asyncio.wait_for(ws.receive(), 10)).data) == {"type": "connection_ack"}
        await ws.send_json({"id": "m", "type": "subscribe", "payload": {
            "query": 'mutation { create_notes_item(data: {title: "x"}) { id } }'}})
        reply = json.loads((await asyncio.wait_for(ws.receive(), 10)).data)
        assert reply["type"] == "error" and reply["payload"][0]["extensions"]["code"] == "FORBIDDEN", reply

    # nothing changed
    rows = (await admin.get("/api/items/notes")).data
    assert [row["title"] for row in rows] == ["first"]
    assert [k["id"] for k in (await admin.get("/api/api-keys")).data] == [r.data["id"]]
    assert (await admin.get("/api/collections/more")).status in (403, 404)
