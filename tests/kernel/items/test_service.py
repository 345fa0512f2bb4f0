"""ItemsService called directly (as GraphQL, MCP, functions and flows do), on
both dialects."""

from __future__ import annotations

from typing import Any

import pytest

from workeros.accountability import Accountability
from workeros.errors import Forbidden, InvalidPayload, NotFound
from workeros.items.query import Query

ADMIN = Accountability(user="u-admin", role="admin", admin=True, origin="graphql")


@pytest.fixture
async def items(wos_services: Any) -> Any:
    schema = wos_services.schema
    await schema.create_collection(ADMIN, {"collection": "lists", "fields": [{"field": "name", "type": "string"}]})
    await schema.create_collection(ADMIN, {"collection": "todos", "fields": [
        {"field": "text", "type": "string", "nullable": False},
        {"field": "done", "type": "boolean", "default": False},
        {"field": "due", "type": "date"},
    ]})
    await schema.create_relation(ADMIN, {"collection": "todos", "field": "list", "related_collection": "lists",
                                         "one_field": "todos"})
    return wos_services.items


async def test_create_query_get_update_delete(items: Any) -> None:
    lists = await items.create(ADMIN, "lists", [{"name": "home"}, {"name": "work"}])
    assert [x["id"] for x in lists] == [1, 2]
    todo = await items.create(ADMIN, "todos", {"text": "a", "list": 1, "due": "2024-02-29"})
    assert todo == {"id": 1, "text": "a", "done": False, "due": "2024-02-29", "list": 1}
    await items.create(ADMIN, "todos", [{"text": f"t{i}", "list": 1 + i % 2} for i in range(5)])
    rows, meta = await items.query(ADMIN, "lists", Query(
        fields=("name", "todos.text"), deep={"todos": Query(sort=("-id",), limit=2)}, meta=frozenset({"total_count"})))
    assert rows == [{"name": "home", "todos": [{"text": "t4"}, {"text": "t2"}]},
                    {"name": "work", "todos": [{"text": "t3"}, {"text": "t1"}]}]
    assert meta == {"total_count": 2}
    assert await items.get(ADMIN, "todos", "1", Query(fields=("text", "list.name"))) == {
        "text": "a", "list": {"name": "home"}}
    updated = await items.update_many(ADMIN, "todos", [1, 2], {"done": True}, Query(fields=("id", "done")))
    assert updated == [{"id": 1, "done": True}, {"id": 2, "done": True}]
    await items.delete_many(ADMIN, "todos", [1, 2])
    with pytest.raises(NotFound):
        await items.get(ADMIN, "todos", 1)
    with pytest.raises(NotFound):
        await items.delete(ADMIN, "todos", 1)


async def test_errors_are_typed(items: Any) -> None:
    with pytest.raises(InvalidPayload) as info:
        await items.create(ADMIN, "todos", {"text": "x", "due": "2024-02-30"})
    assert "due" in info.value.message
    with pytest.raises(NotFound):
        await items.query(ADMIN, "nope", Query())


async def test_a_role_without_a_rule_is_refused(items: Any) -> None:
    someone = Accountability(user="u1", role="nobody-role")
    with pytest.raises(Forbidden):
        await items.query(someone, "todos", Query())
    with pytest.raises(Forbidden):
        await items.create(someone, "todos", {"text": "x"})
    with pytest.raises(Forbidden):
        await items.query(Accountability.anonymous(), "nope", Query())


async def test_export_reads_in_batches(items: Any) -> None:
    await items.create(ADMIN, "todos", [{"text": f"t{i}"} for i in range(25)])
    columns, batches = await items.export(ADMIN, "todos", Query(fields=("id", "text")), batch=10)
    assert columns == ["id", "text"]
    sizes = [len(b) async for b in batches]
    assert sizes == [10, 10, 5]
    columns, batches = await items.export(ADMIN, "todos", Query(fields=("id",), sort=("-id",), limit=12), batch=5)
    got = [row["id"] async for batch in batches for row in batch]
    assert got == list(range(25, 13, -1))
