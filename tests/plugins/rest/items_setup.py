"""A small blog schema and data set for the items tests (through the API)."""

from __future__ import annotations

from typing import Any

AUTHORS = [
    {"name": "Ada", "email": "ada@example.com"},
    {"name": "Brian", "email": "brian@example.com"},
    {"name": "Cleo", "email": None},
]

POSTS = [
    {"title": "Hello", "body": "first post", "score": 10, "rating": "4.50", "published": True,
     "published_at": "2024-01-02T03:04:05Z", "meta": {"k": 1}, "author": 1},
    {"title": "Second", "body": "Mixed CASE body", "score": 5, "rating": "3.25", "published": False,
     "published_at": None, "meta": None, "author": 1},
    {"title": "Third 100%", "body": None, "score": None, "rating": None, "published": True,
     "published_at": "2024-03-01T00:00:00Z", "meta": [1, 2], "author": 2},
    {"title": "fourth_post", "body": "under_score", "score": 20, "rating": "1.00", "published": True,
     "published_at": "2023-12-31T23:59:59.5Z", "meta": None, "author": None},
]


async def expect(response: Any, status: int) -> Any:
    assert response.status == status, response
    return response


async def create_blog(api: Any, *, data: bool = True) -> None:
    admin = api.as_admin()
    await expect(await admin.post("/api/collections", json={"collection": "authors", "fields": [
        {"field": "name", "type": "string", "nullable": False},
        {"field": "email", "type": "string", "unique": True},
    ]}), 201)
    await expect(await admin.post("/api/collections", json={"collection": "posts", "fields": [
        {"field": "title", "type": "string", "nullable": False},
        {"field": "body", "type": "text"},
        {"field": "score", "type": "integer"},
        {"field": "rating", "type": "decimal", "options": {"precision": 6, "scale": 2}},
        {"field": "published", "type": "boolean", "default": False},
        {"field": "published_at", "type": "datetime"},
        {"field": "meta", "type": "json"},
    ]}), 201)
    await expect(await admin.post("/api/collections", json={"collection": "tags", "fields": [
        {"field": "label", "type": "string"},
    ]}), 201)
    await expect(await admin.post("/api/relations", json={
        "collection": "posts", "field": "author", "related_collection": "authors", "one_field": "posts"}), 201)
    await expect(await admin.post("/api/relations", json={
        "kind": "m2m", "collection": "posts", "field": "tags", "related_collection": "tags",
        "one_field": "posts"}), 201)
    if not data:
        return
    await expect(await admin.post("/api/items/authors", json=AUTHORS), 200)
    await expect(await admin.post("/api/items/posts", json=POSTS), 200)
    await expect(await admin.post("/api/items/tags", json=[{"label": "a"}, {"label": "b"}]), 200)
    await expect(await admin.post("/api/items/posts_tags", json=[
        {"posts_id": 1, "tags_id": 1}, {"posts_id": 1, "tags_id": 2}, {"posts_id": 3, "tags_id": 2}]), 200)
