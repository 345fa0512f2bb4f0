"""Atom feeds list the newest items the reader may read; on SQLite and
PostgreSQL."""

from xml.etree import ElementTree as ET

import pytest

ADMIN = {"email": "admin@example.com", "password": "correct horse 1"}
NS = {"a": "http://www.w3.org/2005/Atom"}


@pytest.fixture
def wos_settings_overrides():
    return {"admin.email": ADMIN["email"], "admin.password": ADMIN["password"], "feeds.limit": 2,
            "auth.password.argon2_time_cost": 1, "auth.password.argon2_memory_kib": 8192}


async def test_a_feed_of_the_newest_items(wos_client):
    login = await wos_client.post("/api/auth/login", json={**ADMIN, "mode": "json"})
    headers = {"Authorization": "Bearer " + (await login.json())["data"]["access_token"]}
    r = await wos_client.post("/api/collections", headers=headers, json={"collection": "news", "fields": [
        {"field": "title", "type": "string"}]})
    assert r.status == 201, await r.text()
    for title in ("first", "second", "third <&>"):
        assert (await wos_client.post("/api/items/news", json={"title": title}, headers=headers)).status == 200

    response = await wos_client.get("/feeds/news", headers=headers)
    assert response.status == 200 and response.content_type == "application/atom+xml"
    feed = ET.fromstring(await response.read())
    assert [e.text for e in feed.findall("a:entry/a:title", NS)] == ["third <&>", "second"]
    assert feed.find("a:entry/a:id", NS).text.endswith("/api/items/news/3")

    # An anonymous reader gets what the public role may read: nothing here.
    anonymous = await wos_client.get("/feeds/news")
    assert anonymous.status == 403
    assert (await anonymous.json())["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_unknown_and_system_collections_are_404(wos_client):
    for name in ("nothing", "wos_users"):
        response = await wos_client.get(f"/feeds/{name}")
        assert response.status == 404
        assert (await response.json())["errors"][0]["extensions"]["code"] == "NOT_FOUND"
