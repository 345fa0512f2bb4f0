"""No oracles (issue 21, item 10), over HTTP on both dialects: a many-to-one
key of a hidden item gets the same answer as a key of no item; a
password-reset request answers as fast for an account as for no account, the
mail following in the background."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from workeros.http.keys import SERVICES


async def _books(admin: Any) -> str:
    """``authors`` (one ``public``, one ``secret``), ``books`` with an m2o
    ``author``; role ``writer`` reads only the public author, and reads,
    creates and updates books. Returns the role's test-caller header value."""
    for body in ({"collection": "authors", "fields": [{"field": "name", "type": "string"}]},
                 {"collection": "books", "fields": [{"field": "title", "type": "string"}]}):
        assert (await admin.post("/api/collections", json=body)).status == 201
    r = await admin.post("/api/relations", json={"collection": "books", "field": "author",
                                                 "related_collection": "authors"})
    assert r.status == 201, r
    assert (await admin.post("/api/items/authors", json=[{"name": "public"}, {"name": "secret"}])).status == 200
    role = str((await admin.post("/api/roles", json={"name": "writer"})).data["id"])
    for body in ({"collection": "authors", "action": "read", "filter": {"name": {"_eq": "public"}}},
                 {"collection": "books", "action": "read"}, {"collection": "books", "action": "create"},
                 {"collection": "books", "action": "update"}):
        r = await admin.post("/api/permissions", json={"role": role, "fields": ["*"], **body})
        assert r.status in (200, 201), r
    return role


async def test_a_hidden_related_item_answers_like_a_missing_one(api: Any) -> None:
    admin = api.as_admin()
    role = await _books(admin)
    writer = api.as_role(role, user="w")
    ok = await writer.post("/api/items/books", json={"title": "fine", "author": 1})
    assert ok.status in (200, 201), ok

    hidden = await writer.post("/api/items/books", json={"title": "x", "author": 2})  # exists, not readable
    missing = await writer.post("/api/items/books", json={"title": "x", "author": 999})  # does not exist
    assert (hidden.status, hidden.code) == (409, "CONFLICT"), hidden
    assert (hidden.status, hidden.json) == (missing.status, missing.json)

    key = ok.data["id"]
    hidden = await writer.patch(f"/api/items/books/{key}", json={"author": 2})
    missing = await writer.patch(f"/api/items/books/{key}", json={"author": 999})
    assert (hidden.status, hidden.code) == (409, "CONFLICT"), hidden
    assert (hidden.status, hidden.json) == (missing.status, missing.json)

    # GraphQL writes go the same way
    mutation = 'mutation { create_books_item(data: {title: "g", author: %s}) { id } }'
    answers = []
    for author in (2, 999):
        r = await writer.post("/api/graphql", json={"query": mutation % author})
        answers.append(r.json["errors"][0]["message"])
    assert answers[0] == answers[1]
    # nothing was written
    titles = sorted(b["title"] for b in (await admin.get("/api/items/books")).data)
    assert titles == ["fine"]
    # an admin still links to any author
    assert (await admin.post("/api/items/books", json={"title": "admin", "author": 2})).status in (200, 201)


@pytest.fixture
def slow_smtp(smtp_inbox: Any) -> Any:
    """The loopback SMTP server takes a second to accept each message."""
    original = smtp_inbox.handle_DATA

    async def slow(server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(1.0)
        return await original(server, session, envelope)

    smtp_inbox.handle_DATA = slow
    return smtp_inbox


async def test_a_reset_request_takes_as_long_for_an_account_as_for_none(api: Any, sign_up: Any,
                                                                        slow_smtp: Any) -> None:
    await sign_up("ada@example.com")
    anon = api.anonymous()

    async def timed(email: str) -> float:
        started = time.monotonic()
        r = await anon.post("/api/auth/password/request", json={"email": email})
        assert r.status == 204, r
        return time.monotonic() - started

    known, unknown = await timed("ada@example.com"), await timed("nobody@example.com")
    # The SMTP server takes a second: answering after sending would show it.
    assert known < 0.6 and unknown < 0.6, (known, unknown)
    await slow_smtp.wait_for("ada@example.com")
    await api.server.app[SERVICES].background.drain(10)
    assert len(slow_smtp.to("ada@example.com")) == 1 and slow_smtp.to("nobody@example.com") == []
