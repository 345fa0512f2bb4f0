"""The hooks feature plugins stand on: their own migrations, services, system
collections under the same permissions, field types, MCP tools, admin pages and
embedders — each through a booted app on both dialects."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient
from callers import Api, TestCallers

from workeros.db import migrate
from workeros.errors import StartupError
from workeros.hookspecs import hookimpl
from workeros.hookspecs.admin import AdminPage
from workeros.hookspecs.data import SystemCollection, SystemRelation
from workeros.hookspecs.lifecycle import Migrations, ServiceEntry
from workeros.hookspecs.mcp import McpTool
from workeros.hookspecs.vectors import EmbedderBackend
from workeros.http.keys import SERVICES
from workeros.schema.field_types import FieldType, UUIDString, coerce
from workeros.schema.model import Field

REVISION = '''"""hello: the wos_hello table

Revision ID: hello0001
Revises:
"""
import sqlalchemy as sa
from alembic import op
from workeros.api import UUIDString

revision = "hello0001"
down_revision = None
branch_labels = ("hello",)
depends_on = None


def upgrade():
    op.create_table("wos_hello",
        sa.Column("id", UUIDString(), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("owner", sa.String(36), sa.ForeignKey("wos_users.id", ondelete="SET NULL")),
        sa.Column("secret", sa.String(64)),
    )


def downgrade():
    op.drop_table("wos_hello")
'''


class Hello:
    """A plugin with a system table, described as the collection ``wos_hello``
    (its ``secret`` column is not described), and a field type pointing at it."""

    name = "hello"

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @hookimpl
    def workeros_register_migrations(self):
        return [Migrations("hello", str(self.folder))]

    @hookimpl
    def workeros_register_system_collections(self):
        return [SystemCollection("wos_hello", note="Greetings", fields=[
            Field("id", "uuid", nullable=False, primary_key=True),
            Field("name", "string", nullable=False),
            Field("owner", "string", options={"length": 36}),
        ], relations=[SystemRelation("owner", "wos_users")])]

    @hookimpl
    def workeros_register_field_types(self):
        return [FieldType("hello", sql=lambda o: UUIDString(), coerce=lambda v, o: coerce("uuid", v, o),
                          ordered=False, references="wos_hello")]


@pytest.fixture
def hello(tmp_path: Path) -> Hello:
    folder = tmp_path / "hello_migrations"
    folder.mkdir()
    (folder / "hello0001_hello.py").write_text(REVISION)
    return Hello(folder)


@pytest.fixture
def booted(make_server: Callable[..., Any]) -> Callable[..., Any]:
    @asynccontextmanager
    async def run(*plugins: Any, **settings: Any) -> AsyncIterator[tuple[Api, Any, Any]]:
        async with make_server(TestCallers(), *plugins, **settings) as server, TestClient(server) as client:
            yield Api(client), server.app[SERVICES], server

    return run


async def insert_hello(services: Any, name: str, owner: str | None = None, secret: str = "s3cr3t") -> str:
    key = str(uuid.uuid4())
    table = sa.table("wos_hello", sa.column("id"), sa.column("name"), sa.column("owner"), sa.column("secret"))
    async with services.db.transaction() as conn:
        await conn.execute(table.insert().values(id=key, name=name, owner=owner, secret=secret))
    return key


async def test_hook_workeros_register_migrations(booted, hello, wos_settings) -> None:
    chain = Migrations("hello", str(hello.folder))
    async with booted(hello) as (api, services, _):
        status = await migrate.status(services.db, services.plugins)
        # Every chain is at its head: the kernel's, this plugin's and the installed first-party plugins'.
        assert status["workeros"] == (migrate.head(), migrate.head()) and status["hello"] == ("hello0001", "hello0001")
        assert all(current == head for current, head in status.values()), status
        assert await migrate.current(services.db, chain) == "hello0001"
        async with services.db.read() as conn:
            tables = await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names())
        assert {"wos_hello", "wos_migrations_hello"} <= set(tables)
    async with booted(hello) as (api, services, _):  # a second start upgrades nothing and fails nothing
        assert await migrate.current(services.db, chain) == "hello0001"
    async with booted() as (api, services, _):  # without the plugin: its tables stay, the kernel still boots
        assert await migrate.current(services.db) == migrate.head()
        assert await migrate.current(services.db, chain) == "hello0001"


async def test_hook_workeros_register_services(booted) -> None:
    closed: list[str] = []

    class Greeter:
        def __init__(self, services: Any) -> None:
            self.services = services

        def greet(self, who: str) -> str:
            return f"hello, {who} (schema v{self.services.schema.current().version})"

        async def close(self) -> None:
            closed.append("greeter")

    class P:
        name = "greeter-plugin"

        @hookimpl
        def workeros_register_services(self):
            async def factory(services):
                return Greeter(services)
            return [ServiceEntry("greeter", factory)]

    async with booted(P()) as (api, services, _):
        assert services.get("greeter").greet("ada").startswith("hello, ada")
        assert services.get("absent") is None
        assert closed == []
    assert closed == ["greeter"]

    class Twice:
        name = "twice"

        @hookimpl
        def workeros_register_services(self):
            return [ServiceEntry("greeter", lambda services: object())]

    with pytest.raises(StartupError, match="greeter"):
        async with booted(P(), Twice()):
            pass


async def test_hook_workeros_register_system_collections(booted, hello) -> None:
    async with booted(hello) as (api, services, _):
        admin = api.as_admin()
        assert "wos_hello" not in [c["collection"] for c in (await admin.get("/api/collections")).data]
        listed = {c["collection"]: c for c in (await admin.get("/api/collections", params={"system": "true"})).data}
        assert listed["wos_hello"]["system"] is True and listed["wos_users"]["system"] is True
        assert [f["field"] for f in listed["wos_hello"]["fields"]] == ["id", "name", "owner"]  # no secret
        ada = (await api.anonymous().post("/api/auth/sign-up", json={"email": "ada@example.com",
                                                                     "password": "correct horse 42"})).data
        mine = await insert_hello(services, "from ada", owner=ada["id"])
        theirs = await insert_hello(services, "from nobody")

        # Read through the generic items API, with relations out of it.
        r = await admin.get("/api/items/wos_hello", params={"fields": "name,owner.email", "sort": "name"})
        assert r.data == [{"name": "from ada", "owner": {"email": "ada@example.com"}},
                          {"name": "from nobody", "owner": None}]
        assert (await admin.get("/api/items/wos_hello", params={"fields": "secret"})).code == "INVALID_QUERY"
        # Not written through /api/items, nor altered by the schema service.
        assert (await admin.post("/api/items/wos_hello", json={"name": "x"})).code == "FORBIDDEN"
        assert (await admin.delete(f"/api/items/wos_hello/{mine}")).code == "FORBIDDEN"
        assert (await admin.patch("/api/collections/wos_hello", json={"note": "x"})).code == "INVALID_PAYLOAD"
        assert (await admin.post("/api/fields/wos_hello", json={"field": "x", "type": "string"})).status == 400
        assert (await admin.delete("/api/collections/wos_users")).status == 400

        # Relations from user collections into system collections.
        r = await admin.post("/api/collections", json={"collection": "notes", "fields": [
            {"field": "title", "type": "string"}]})
        assert r.status in (200, 201), r
        r = await admin.post("/api/relations", json={"collection": "notes", "field": "greeting",
                                                     "related_collection": "wos_hello"})
        assert r.status in (200, 201), r
        r = await admin.post("/api/relations", json={"collection": "notes", "field": "author",
                                                     "related_collection": "wos_users"})
        assert r.status in (200, 201), r
        bad = await admin.post("/api/relations", json={"collection": "notes", "field": "g2",
                                                       "related_collection": "wos_hello", "one_field": "notes"})
        assert bad.code == "INVALID_PAYLOAD"
        note = (await admin.post("/api/items/notes", json={"title": "n", "greeting": mine,
                                                           "author": ada["id"]})).data
        r = await admin.get(f"/api/items/notes/{note['id']}", params={"fields": "title,greeting.name,author.email"})
        assert r.data == {"title": "n", "greeting": {"name": "from ada"}, "author": {"email": "ada@example.com"}}

        # The same permission rows govern it: a role reading only its own greetings.
        role = (await admin.post("/api/roles", json={"name": "reader"})).data["id"]
        for collection, rule in (("notes", None), ("wos_hello", {"owner": {"_eq": "$CURRENT_USER"}})):
            r = await admin.post("/api/permissions", json={"role": role, "collection": collection,
                                                           "action": "read", "filter": rule})
            assert r.status in (200, 201), r
        reader = api.as_role(role, ada["id"])
        r = await reader.get("/api/items/wos_hello", params={"fields": "id,name"})
        assert r.data == [{"id": mine, "name": "from ada"}]
        assert (await reader.get(f"/api/items/wos_hello/{theirs}")).status == 404
        # Relations into wos_users need a permission on wos_users too.
        assert (await reader.get("/api/items/notes", params={"fields": "author.email"})).code == "FORBIDDEN"

        # Snapshots leave system collections out (their plugins create them), keep the relations.
        doc = (await admin.get("/api/schema/snapshot")).data
        assert "wos_hello" not in [c["collection"] for c in doc["collections"]]
        assert {"notes"} <= {c["collection"] for c in doc["collections"]}


async def test_hook_workeros_register_field_types(booted, hello) -> None:
    async with booted(hello) as (api, services, _):
        admin = api.as_admin()
        greeting = await insert_hello(services, "hi")
        r = await admin.post("/api/collections", json={"collection": "cards", "fields": [
            {"field": "title", "type": "string"}, {"field": "greeting", "type": "hello"}]})
        assert r.status in (200, 201), r
        fields = {f["field"]: f for f in r.data["fields"]}
        assert fields["greeting"]["type"] == "hello"
        assert fields["greeting"]["relation"]["related_collection"] == "wos_hello"
        r = await admin.post("/api/fields/cards", json={"field": "other", "type": "hello"})
        assert r.status in (200, 201) and r.data["relation"]["related_collection"] == "wos_hello", r
        bad = await admin.post("/api/items/cards", json={"title": "x", "greeting": "not a uuid"})
        assert bad.code == "INVALID_PAYLOAD"
        missing = await admin.post("/api/items/cards", json={"title": "x", "greeting": str(uuid.uuid4())})
        assert missing.code == "CONFLICT"  # the key must exist in wos_hello
        card = (await admin.post("/api/items/cards", json={"title": "c", "greeting": greeting})).data
        r = await admin.get(f"/api/items/cards/{card['id']}", params={"fields": "greeting.name"})
        assert r.data == {"greeting": {"name": "hi"}}
        # Deleting the referenced row sets the field to null.
        async with services.db.transaction() as conn:
            await conn.execute(sa.text("DELETE FROM wos_hello"))
        assert (await admin.get(f"/api/items/cards/{card['id']}")).data["greeting"] is None

    class Clash:
        name = "clash"

        @hookimpl
        def workeros_register_field_types(self):
            return [FieldType("string", sql=lambda o: sa.Text(), coerce=lambda v, o: v)]

    with pytest.raises(StartupError, match="kernel type"):
        async with booted(Clash()):
            pass


async def test_hook_workeros_register_mcp_tools(booted) -> None:
    """The kernel carries the spec; the MCP transport (its own plugin) calls it.
    Here: a tool registered by a plugin is listed with its plugin."""

    class Tools:
        name = "tools"

        @hookimpl
        def workeros_register_mcp_tools(self):
            return [McpTool("hello_say", "Say hello", {"type": "object"}, lambda ctx, args: "hello",
                            read_only=True, group="hello")]

    async with booted(Tools()) as (api, services, _):
        tools = [t for _, entries in services.plugins.collect("workeros_register_mcp_tools") for t in entries]
        assert [t.name for t in tools if t.name == "hello_say"] == ["hello_say"]
        listing = {p["name"]: p for p in (await api.as_admin().get("/api/server/plugins")).data["plugins"]}
        assert "workeros_register_mcp_tools" in listing["tools"]["hooks"]


async def test_hook_workeros_register_admin_pages(booted, tmp_path) -> None:
    page = tmp_path / "hello.js"
    page.write_text("export default function render(el) { el.textContent = 'hello'; }\n")

    class Pages:
        name = "pages"

        @hookimpl
        def workeros_register_admin_pages(self):
            return [AdminPage("hello", "Hello", str(page), collection="wos_users")]

    async with booted(Pages()) as (api, services, _):
        pages = [p for _, entries in services.plugins.collect("workeros_register_admin_pages") for p in entries]
        assert [(p.name, Path(p.module).read_text()[:6]) for p in pages if p.name == "hello"] == [("hello", "export")]
        listing = {p["name"]: p for p in (await api.as_admin().get("/api/server/plugins")).data["plugins"]}
        assert "workeros_register_admin_pages" in listing["pages"]["hooks"]


async def test_hook_workeros_register_embedders(booted) -> None:
    class Letters:
        dimensions = 3

        async def embed(self, texts):
            return [[float(t.count("a")), float(t.count("b")), float(len(t))] for t in texts]

    class P:
        name = "letters"

        @hookimpl
        def workeros_register_embedders(self):
            return [EmbedderBackend(name="letters", factory=lambda settings: Letters())]

    # Named: the first-party vectors plugin's embedders would win the auto-selection.
    async with booted(P(), vectors__embedder="letters") as (api, services, _):
        assert await services.embedder.embed(["aab", "b"]) == [[2.0, 1.0, 3.0], [0.0, 1.0, 1.0]]
        backends = {p["name"]: p["backends"] for p in (await api.as_admin().get("/api/server/plugins")).data["plugins"]}
        assert {"area": "embedder", "name": "letters", "active": True} in backends["letters"]


async def test_hook_workeros_register_graphql_queries(booted) -> None:
    """The kernel carries the spec; the GraphQL transport calls it. Here: a
    root query field a plugin adds appears per readable collection and
    resolves through the plugin, with the selection's fields."""
    from workeros.api import Query
    from workeros.hookspecs.transport import GraphQLQuery

    seen: list[tuple[str, tuple[str, ...]]] = []

    async def newest(services, acc, slug, args, fields):
        seen.append((slug, fields))
        rows, _ = await services.items.query(acc, slug, Query(fields=fields, sort=("-id",), limit=args["take"]))
        return [{**row, "_rank": i} for i, row in enumerate(rows)]

    class Newest:
        name = "newest"

        @hookimpl
        def workeros_register_graphql_queries(self):
            return [GraphQLQuery("newest", applies=lambda c, readable: True, arguments=lambda slug, c: "take: Int!",
                                 resolve=newest, row_fields={"_rank": "Int"})]

    async with booted(Newest()) as (api, services, _):
        admin = api.as_admin()
        r = await admin.post("/api/collections", json={"collection": "notes", "fields": [
            {"field": "title", "type": "string"}]})
        assert r.status == 201, r
        assert (await admin.post("/api/items/notes", json=[{"title": "a"}, {"title": "b"}])).status == 200
        r = await admin.post("/api/graphql", json={"query": "{ notes_newest(take: 1) { title _rank } }"})
        assert r.json == {"data": {"notes_newest": [{"title": "b", "_rank": 0}]}}, r
        assert seen == [("notes", ("title",))]
