"""A schema with every core field type and every relation kind (m2o, o2m, m2m),
and data in it, built through the API."""

from __future__ import annotations

from typing import Any

#: Every core field type, with options, defaults, constraints, notes and meta.
EVERY_TYPE = [
    {"field": "name", "type": "string", "options": {"length": 80}, "nullable": False, "note": "display name"},
    {"field": "bio", "type": "text"},
    {"field": "age", "type": "integer", "default": 18, "indexed": True},
    {"field": "big", "type": "bigint"},
    {"field": "ratio", "type": "float"},
    {"field": "price", "type": "decimal", "options": {"precision": 12, "scale": 3}},
    {"field": "active", "type": "boolean", "default": True},
    {"field": "data", "type": "json", "meta": {"widget": "code"}},
    {"field": "token", "type": "uuid", "unique": True},
    {"field": "seen_at", "type": "datetime"},
    {"field": "born", "type": "date"},
    {"field": "wakes", "type": "time"},
]

TEAMS = [{"title": "Red"}, {"title": "Blue"}, {"title": "Green"}]
TAGS = [{"label": "alpha"}, {"label": "beta"}]


def people(n: int = 6) -> list[dict[str, Any]]:
    """Rows with edge values: unicode, big numbers, decimals, nested JSON, NULLs."""
    rows = []
    for i in range(n):
        rows.append({
            "name": f"Person {i} ✓" if i % 2 else f"person-{i}",
            "bio": None if i == 3 else "line one\nline \"two\"\t" * (i + 1),
            "age": None if i == 4 else 20 + i,
            "big": 9_007_199_254_740_993 + i if i % 2 else -(2**62) + i,
            "ratio": 0.1 + i / 3,
            "price": None if i == 5 else f"{i * 1000 + 0.125:.3f}",
            "active": i % 3 != 0,
            "data": {"i": i, "nested": {"list": [1, "two", None, True]}, "u": "é"} if i != 2 else [i, {"k": None}],
            "token": f"00000000-0000-4000-8000-{i:012d}",
            "seen_at": None if i == 1 else f"2024-0{i + 1}-1{i}T0{i}:30:15.{i}25Z",
            "born": f"19{70 + i}-0{i + 1}-2{i}",
            "wakes": f"0{i}:1{i}:30",
            "team": None if i == 0 else (i % 3) + 1,
        })
    return rows


async def expect(response: Any, status: int) -> Any:
    assert response.status == status, response
    return response


async def create_schema(admin: Any) -> None:
    """``people`` (uuid primary key, every type), ``teams``, ``tags``, ``notes``:
    m2o people.team -> teams (alias teams.members), o2m teams.notes (created
    from the "one" side), m2m people.tags <-> tags.people (junction
    ``people_tags``)."""
    await expect(await admin.post("/api/collections", json={
        "collection": "teams", "note": "squads", "meta": {"icon": "group"},
        "fields": [{"field": "title", "type": "string", "nullable": False}]}), 201)
    await expect(await admin.post("/api/collections", json={
        "collection": "people", "pk_type": "uuid", "fields": EVERY_TYPE}), 201)
    await expect(await admin.post("/api/collections", json={
        "collection": "tags", "fields": [{"field": "label", "type": "string", "unique": True}]}), 201)
    await expect(await admin.post("/api/collections", json={
        "collection": "notes", "fields": [{"field": "body", "type": "text"},
                                          {"field": "team_id", "type": "integer"}]}), 201)
    await expect(await admin.post("/api/relations", json={
        "collection": "people", "field": "team", "related_collection": "teams", "one_field": "members",
        "meta": {"label": "Team"}}), 201)
    await expect(await admin.post("/api/relations", json={
        "kind": "o2m", "collection": "teams", "field": "notes", "related_collection": "notes",
        "related_field": "team_id", "on_delete": "cascade"}), 201)
    await expect(await admin.post("/api/relations", json={
        "kind": "m2m", "collection": "people", "field": "tags", "related_collection": "tags",
        "one_field": "people"}), 201)


async def fill(admin: Any, n: int = 6) -> dict[str, list[Any]]:
    """Rows in every collection; returns the people ids in insertion order."""
    await expect(await admin.post("/api/items/teams", json=TEAMS), 200)
    await expect(await admin.post("/api/items/tags", json=TAGS), 200)
    created = (await expect(await admin.post("/api/items/people", json=people(n)), 200)).data
    ids = [row["id"] for row in created]
    await expect(await admin.post("/api/items/notes", json=[
        {"body": "kick-off", "team_id": 1}, {"body": "retro", "team_id": 1}, {"body": "none", "team_id": None}]),
        200)
    await expect(await admin.post("/api/items/people_tags", json=[
        {"people_id": ids[0], "tags_id": 1}, {"people_id": ids[0], "tags_id": 2},
        {"people_id": ids[1], "tags_id": 2}]), 200)
    return {"people": ids}


async def all_rows(admin: Any, collection: str) -> list[dict[str, Any]]:
    r = await expect(await admin.get(f"/api/items/{collection}", params={"limit": "-1", "sort": "id"}), 200)
    return r.data
