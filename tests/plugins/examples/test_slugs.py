"""The example plugin ``examples/plugin-slugs``: lifecycle hooks from a
third-party plugin, over real HTTP on both dialects."""

from __future__ import annotations

import importlib
import logging
import sys

from aiohttp.test_utils import TestClient
from callers import Api, TestCallers

from tests.conftest import ROOT
from workeros.api import SERVICES


def slugs_plugin():
    sys.path.insert(0, str(ROOT / "examples" / "plugin-slugs"))
    try:
        return importlib.import_module("workeros_slugs")
    finally:
        sys.path.pop(0)


async def test_slugs_follow_titles_on_every_way_in(make_server, caplog) -> None:
    plugin = slugs_plugin()
    async with make_server(TestCallers(), plugin) as server, TestClient(server) as client:
        admin = Api(client).as_admin()
        r = await admin.post("/api/collections", json={"collection": "posts", "fields": [
            {"field": "title", "type": "string"}, {"field": "slug", "type": "string"}]})
        assert r.status == 201, r
        with caplog.at_level(logging.INFO, logger="workeros.slugs"):
            post = (await admin.post("/api/items/posts", json={"title": "Héllo, World!"})).data
        assert post["slug"] == "hello-world"
        r = await admin.patch(f"/api/items/posts/{post['id']}", json={"title": "Second take"})
        assert r.data["slug"] == "second-take"
        kept = await admin.patch(f"/api/items/posts/{post['id']}", json={"title": "Third", "slug": "custom"})
        assert kept.data["slug"] == "custom"
        # GraphQL writes pass the same hooks.
        q = 'mutation { create_posts_item(data: {title: "From GraphQL"}) { slug } }'
        r = await admin.post("/api/graphql", json={"query": q})
        assert r.json["data"]["create_posts_item"]["slug"] == "from-graphql", r
        bad = await admin.post("/api/items/posts", json={"title": "!!!"})
        assert (bad.status, bad.code) == (400, "INVALID_PAYLOAD")
        await server.app[SERVICES].background.drain(5)
    assert any("hello-world" in record.getMessage() for record in caplog.records)
