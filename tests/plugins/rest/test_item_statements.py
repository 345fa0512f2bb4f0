"""How many statements an items request costs (both dialects): a list compiles
its filter once for its rows and its counts; an update reads its rows once
(the locking SELECT; the rows after come back from UPDATE ... RETURNING); a
create or an update does not re-select what RETURNING gave back unless the
caller's read rule has a row filter that must be applied to the answer."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa

from tests.plugins.rest.items_setup import expect
from workeros.http.keys import SERVICES
from workeros.items import reads

pytest.importorskip("workeros.permissions")


@contextmanager
def statements(api: Any) -> Iterator[list[tuple[Any, str]]]:
    """(task, SQL) of every statement the database runs inside the block (on
    SQLite, reads and write transactions have engines of their own)."""
    db = api.server.app[SERVICES].db
    engines = {id(e): e for e in (db.engine, getattr(db, "write_engine", db.engine))}.values()
    issued: list[tuple[Any, str]] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        issued.append((asyncio.current_task(), " ".join(statement.split())))

    for engine in engines:
        sa.event.listen(engine.sync_engine, "before_cursor_execute", count)
    try:
        yield issued
    finally:
        for engine in engines:
            sa.event.remove(engine.sync_engine, "before_cursor_execute", count)


def on_notes(issued: list[tuple[Any, str]], verb: str) -> list[str]:
    """The request's statements of kind ``verb`` on c_notes (a plugin's
    background work runs in other tasks)."""
    task = next(task for task, sql in issued if "c_notes" in sql)
    return [sql for t, sql in issued if t is task and sql.upper().startswith(verb) and "c_notes" in sql]


async def notes(api: Any, *, read_filter: Any = None) -> Any:
    """A ``notes`` collection with two rows and a ``writer`` role that reads
    (under ``read_filter``), creates and updates notes."""
    admin = api.as_admin()
    await expect(await admin.post("/api/collections", json={"collection": "notes", "fields": [
        {"field": "title", "type": "string"}, {"field": "score", "type": "integer"},
        {"field": "secret", "type": "string"}]}), 201)
    await expect(await admin.post("/api/items/notes", json=[{"title": "a", "score": 1, "secret": "s"},
                                                            {"title": "b", "score": 2, "secret": "t"}]), 200)
    role = (await expect(await admin.post("/api/roles", json={"name": "writer"}), 201)).data["id"]
    for action, rule in (("read", {"fields": ["id", "title", "score"],
                                   **({"filter": read_filter} if read_filter else {})}),
                         ("create", {"fields": ["title", "score"]}),
                         ("update", {"fields": ["title", "score"]})):
        await expect(await admin.post("/api/permissions", json={"role": role, "collection": "notes",
                                                                "action": action, **rule}), 201)
    return api.as_role(role, user="u1")


async def test_a_list_compiles_its_filter_once(api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    writer = await notes(api)
    parsed: list[Any] = []
    parse = reads.Reader.parse

    def counting(self: Any, collection: Any, raw: Any) -> Any:
        if raw is not None:
            parsed.append(raw)
        return parse(self, collection, raw)

    monkeypatch.setattr(reads.Reader, "parse", counting)
    r = await writer.get("/api/items/notes", params={"filter[score][_gte]": "2", "meta": "*"})
    assert r.status == 200, r
    assert [n["title"] for n in r.data] == ["b"] and r.json["meta"] == {"total_count": 2, "filter_count": 1}
    assert parsed == [{"score": {"_gte": "2"}}]  # rows and filter_count share one compiled filter
    parsed.clear()
    r = await writer.get("/api/items/notes", params={"filter[score][_gte]": "1", "aggregate[count]": "*",
                                                     "meta": "filter_count"})
    assert r.status == 200 and r.data == [{"count": 2}] and r.json["meta"] == {"filter_count": 2}, r
    assert len(parsed) == 1


@pytest.mark.parametrize("who", ["admin", "writer"])
async def test_an_update_reads_its_rows_once(api: Any, who: str) -> None:
    writer = await notes(api)
    caller = api.as_admin() if who == "admin" else writer
    with statements(api) as issued:
        r = await caller.patch("/api/items/notes/1", json={"score": 5})
    assert r.status == 200, r
    assert r.data["score"] == 5 and r.data["title"] == "a"
    assert ("secret" in r.data) is (who == "admin")
    assert len(on_notes(issued, "SELECT")) == 1, issued  # the locking read; no re-read after the UPDATE
    assert len(on_notes(issued, "UPDATE")) == 1
    r = await api.as_admin().get("/api/items/notes/1")
    assert r.data == {"id": 1, "title": "a", "score": 5, "secret": "s"}


async def test_a_create_answers_from_insert_returning(api: Any) -> None:
    writer = await notes(api)
    with statements(api) as issued:
        r = await writer.post("/api/items/notes", json={"title": "c", "score": 3})
    assert r.status == 200, r
    assert r.data == {"id": 3, "title": "c", "score": 3}  # shaped by the read rule's fields
    assert on_notes(issued, "SELECT") == [], issued
    assert len(on_notes(issued, "INSERT")) == 1


async def test_a_read_row_filter_still_applies_to_the_answer(api: Any) -> None:
    writer = await notes(api, read_filter={"score": {"_lt": 10}})
    with statements(api) as issued:
        r = await writer.post("/api/items/notes", json={"title": "c", "score": 3})
    assert r.status == 200 and r.data == {"id": 3, "title": "c", "score": 3}, r
    assert len(on_notes(issued, "SELECT")) == 1, issued  # the answer is read under the row filter
    # A row the caller may write but not read comes back as its key only.
    r = await writer.post("/api/items/notes", json={"title": "d", "score": 50})
    assert r.status == 200 and r.data == {"id": 4}, r
    with statements(api) as issued:
        r = await writer.patch("/api/items/notes/1", json={"score": 60})
    assert r.status == 200 and r.data == {"id": 1}, r
    assert len(on_notes(issued, "SELECT")) == 2, issued  # the locking read, then the answer under the filter
