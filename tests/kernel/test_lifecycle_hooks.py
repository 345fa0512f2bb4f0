"""Item and auth lifecycle hooks (filter before, committing, action after), over
real HTTP on both dialects: payload changes, refusals that leave nothing
written, rows written in the same transaction, action hooks that run only
after the commit and never hold the response."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient
from callers import Api, TestCallers

from tests.accounts_setup import FAST_HASH, PASSWORD
from workeros.errors import Forbidden, InvalidPayload
from workeros.hookspecs import hookimpl
from workeros.http.keys import SERVICES


@pytest.fixture
def wos_settings_overrides(smtp_inbox: Any) -> dict[str, Any]:
    return {**FAST_HASH, **smtp_inbox.settings(), "server.public_url": "http://wos.test"}


@pytest.fixture
def booted(make_server: Callable[..., Any]) -> Callable[..., Any]:
    """``async with booted(plugin) as (api, services):`` a server with the test
    plugin registered, an admin :class:`Api` and the app's services."""

    @asynccontextmanager
    async def run(*plugins: Any) -> AsyncIterator[tuple[Api, Any]]:
        async with make_server(TestCallers(), *plugins) as server, TestClient(server) as client:
            yield Api(client).as_admin(), server.app[SERVICES]

    return run


async def notes(admin: Api) -> None:
    r = await admin.post("/api/collections", json={"collection": "notes", "fields": [
        {"field": "title", "type": "string"}, {"field": "status", "type": "string"},
        {"field": "score", "type": "integer"}]})
    assert r.status in (200, 201), r
    r = await admin.post("/api/collections", json={"collection": "outbox", "fields": [
        {"field": "note", "type": "string"}, {"field": "action", "type": "string"}]})
    assert r.status in (200, 201), r


async def count(services: Any, collection: str) -> int:
    table = services.schema.current().collections[collection].table
    async with services.db.read() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one())


class Recorder:
    """Remembers what each hook saw."""

    name = "recorder"

    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []


async def test_hook_workeros_items_before_create(booted) -> None:
    class Slugs(Recorder):
        @hookimpl
        def workeros_items_before_create(self, mutation):
            self.seen.append((mutation.action, [dict(p) for p in mutation.payloads]))
            if mutation.collection != "notes":
                return
            for item in mutation.payloads:
                if item.get("title") == "forbidden":
                    raise InvalidPayload("Titles may not be 'forbidden'")
                item["status"] = "draft"

    plugin = Slugs()
    async with booted(plugin) as (admin, services):
        await notes(admin)
        r = await admin.post("/api/items/notes", json=[{"title": "a"}, {"title": "b", "status": "live"}])
        assert r.status == 200, r
        assert [i["status"] for i in r.data] == ["draft", "draft"]
        assert ("create", [{"title": "a"}, {"title": "b", "status": "live"}]) in plugin.seen
        refused = await admin.post("/api/items/notes", json=[{"title": "ok"}, {"title": "forbidden"}])
        assert (refused.status, refused.code) == (400, "INVALID_PAYLOAD")
        assert "forbidden" in refused.json["errors"][0]["message"]
        assert await count(services, "notes") == 2  # the whole call was refused


async def test_hook_workeros_items_before_update(booted) -> None:
    class Frozen(Recorder):
        @hookimpl
        async def workeros_items_before_update(self, mutation):
            await asyncio.sleep(0)  # async implementations are awaited
            self.seen.append(("update", (mutation.keys, [r["status"] for r in mutation.before])))
            if any(r["status"] == "shipped" for r in mutation.before):
                raise Forbidden("Shipped notes cannot change")
            mutation.payloads[0]["score"] = (mutation.payloads[0].get("score") or 0) + 1

    plugin = Frozen()
    async with booted(plugin) as (admin, services):
        await notes(admin)
        a = (await admin.post("/api/items/notes", json={"title": "a", "status": "open"})).data
        b = (await admin.post("/api/items/notes", json={"title": "b", "status": "shipped"})).data
        r = await admin.patch(f"/api/items/notes/{a['id']}", json={"score": 10})
        assert (r.status, r.data["score"]) == (200, 11)
        assert ("update", ([a["id"]], ["open"])) in plugin.seen
        refused = await admin.patch("/api/items/notes", json={"keys": [a["id"], b["id"]], "data": {"title": "x"}})
        assert (refused.status, refused.code) == (403, "FORBIDDEN")
        row = (await admin.get(f"/api/items/notes/{a['id']}")).data
        assert row["title"] == "a"  # nothing of the refused call was written


async def test_hook_workeros_items_before_delete(booted) -> None:
    class Keep(Recorder):
        @hookimpl
        def workeros_items_before_delete(self, mutation):
            self.seen.append(("delete", [r["title"] for r in mutation.before]))
            if any(r["title"] == "keep" for r in mutation.before):
                raise Forbidden("That note is kept")

    plugin = Keep()
    async with booted(plugin) as (admin, services):
        await notes(admin)
        keep = (await admin.post("/api/items/notes", json={"title": "keep"})).data
        drop = (await admin.post("/api/items/notes", json={"title": "drop"})).data
        refused = await admin.delete("/api/items/notes", json=[drop["id"], keep["id"]])
        assert (refused.status, refused.code) == (403, "FORBIDDEN")
        assert await count(services, "notes") == 2
        assert (await admin.delete(f"/api/items/notes/{drop['id']}")).status == 204
        assert plugin.seen[-1] == ("delete", ["drop"])
        assert await count(services, "notes") == 1


async def test_hook_workeros_items_committing(booted) -> None:
    class Outbox(Recorder):
        @hookimpl
        async def workeros_items_committing(self, mutation):
            if mutation.collection != "notes":
                return
            services = mutation.services
            table = services.schema.current().collections["outbox"].table
            await mutation.connection.execute(table.insert(), [
                {"note": str(k), "action": mutation.action} for k in mutation.keys])
            self.seen.append((mutation.action, mutation.keys, mutation.after))
            if any((r or {}).get("title") == "boom" for r in (mutation.after or [])):
                raise InvalidPayload("boom refused after the write")

    plugin = Outbox()
    async with booted(plugin) as (admin, services):
        await notes(admin)
        created = (await admin.post("/api/items/notes", json={"title": "a"})).data
        assert plugin.seen[-1][0:2] == ("create", [created["id"]])
        assert plugin.seen[-1][2][0]["title"] == "a"  # the rows after the write
        assert await count(services, "outbox") == 1
        refused = await admin.post("/api/items/notes", json={"title": "boom"})
        assert (refused.status, refused.code) == (400, "INVALID_PAYLOAD")
        # The change and the outbox row rolled back together.
        assert (await count(services, "notes"), await count(services, "outbox")) == (1, 1)
        assert (await admin.delete(f"/api/items/notes/{created['id']}")).status == 204
        assert (await count(services, "notes"), await count(services, "outbox")) == (0, 2)


class Gate(Recorder):
    """An action hook that waits for the test to open a gate: if the response
    waited for the hook, the request would never finish."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.done = asyncio.Event()

    async def after(self, mutation: Any) -> None:
        assert mutation.connection is None
        await self.gate.wait()
        # After the commit: another connection sees the committed rows.
        services = mutation.services
        table = services.schema.current().collections[mutation.collection].table
        async with services.db.read() as conn:
            rows = (await conn.execute(sa.select(table.c.id).where(table.c.id.in_(mutation.keys)))).all()
        self.seen.append((mutation.action, mutation.keys, len(rows)))
        self.done.set()


async def _action_hook_case(booted, action: str) -> None:
    class Hook(Gate):
        pass

    def impl(self, mutation):
        if mutation.collection == "notes":
            return self.after(mutation)
        return None

    setattr(Hook, f"workeros_items_after_{action}", hookimpl(impl, specname=f"workeros_items_after_{action}"))
    plugin = Hook()
    async with booted(plugin) as (admin, services):
        await notes(admin)
        first = (await admin.post("/api/items/notes", json={"title": "a"})).data
        if action == "create":  # the create above started the hook; let it finish
            plugin.gate.set()
            await asyncio.wait_for(plugin.done.wait(), 10)
            plugin.gate.clear()
            plugin.done.clear()
            plugin.seen.clear()
        request = {"create": lambda: admin.post("/api/items/notes", json={"title": "b"}),
                   "update": lambda: admin.patch(f"/api/items/notes/{first['id']}", json={"title": "c"}),
                   "delete": lambda: admin.delete(f"/api/items/notes/{first['id']}")}[action]
        r = await asyncio.wait_for(request(), 10)  # answered while the hook still waits for the gate
        assert r.status in (200, 204), r
        assert plugin.seen == [] and not plugin.done.is_set()
        plugin.gate.set()
        await asyncio.wait_for(plugin.done.wait(), 10)
        seen_action, keys, visible = plugin.seen[0]
        assert seen_action == action
        assert visible == (0 if action == "delete" else 1)  # it ran after the commit
        # A refused write runs no action hook.
        plugin.seen.clear()
        plugin.done.clear()
        refused = {"create": lambda: admin.post("/api/items/notes", json={"score": "x"}),
                   "update": lambda: admin.patch("/api/items/notes/424242", json={"title": "x"}),
                   "delete": lambda: admin.delete("/api/items/notes/424242")}[action]
        assert (await refused()).status in (400, 404)
        await services.background.drain(5)
        assert plugin.seen == []


async def test_hook_workeros_items_after_create(booted) -> None:
    await _action_hook_case(booted, "create")


async def test_hook_workeros_items_after_update(booted) -> None:
    await _action_hook_case(booted, "update")


async def test_hook_workeros_items_after_delete(booted) -> None:
    await _action_hook_case(booted, "delete")


async def test_lifecycle_hooks_run_for_restores(booted) -> None:
    """A restore is an ordinary write: the same filter hooks see it (and may refuse it)."""

    class Watch(Recorder):
        @hookimpl
        def workeros_items_before_update(self, mutation):
            self.seen.append(("update", mutation.meta))
            if mutation.meta.get("restore") and mutation.payloads[0].get("title") == "v1":
                raise Forbidden("Not back to v1")

    plugin = Watch()
    async with booted(plugin) as (admin, services):
        await notes(admin)
        item = (await admin.post("/api/items/notes", json={"title": "v1"})).data
        await admin.patch(f"/api/items/notes/{item['id']}", json={"title": "v2"})
        revisions = (await admin.get("/api/revisions", params={"collection": "notes", "item": str(item["id"])})).data
        first = min(revisions, key=lambda r: r["id"])
        refused = await admin.post(f"/api/revisions/{first['id']}/restore")
        assert (refused.status, refused.code) == (403, "FORBIDDEN")
        assert ("update", {"restore": {"revision": first["id"]}}) in plugin.seen
        assert (await admin.get(f"/api/items/notes/{item['id']}")).data["title"] == "v2"


# -- auth ---------------------------------------------------------------------------------

class AuthRecorder(Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.after_seen = asyncio.Queue()


def _auth_plugin(name: str, before: Callable[[Any], Any] | None = None) -> AuthRecorder:
    class Hooks(AuthRecorder):
        pass

    def before_impl(self, event):
        assert event.connection is not None and event.name == name
        self.seen.append((name, event.user, event.email, event.provider))
        if before is not None:
            return before(event)
        return None

    def after_impl(self, event):
        assert event.connection is None
        self.after_seen.put_nowait((name, event.user, event.email, event.provider))

    setattr(Hooks, f"workeros_auth_before_{name}",
            hookimpl(before_impl, specname=f"workeros_auth_before_{name}"))
    setattr(Hooks, f"workeros_auth_after_{name}", hookimpl(after_impl, specname=f"workeros_auth_after_{name}"))
    return Hooks()


async def _sign_up(admin: Api, email: str, **extra: Any) -> Any:
    return await admin.anonymous().post("/api/auth/sign-up", json={"email": email, "password": PASSWORD, **extra})


async def test_hook_workeros_auth_before_login(booted) -> None:
    def refuse(event):
        if event.user and event.services and event.provider == "password" and LOCKED:
            raise Forbidden("This account is locked")

    LOCKED: list[str] = []
    plugin = _auth_plugin("login", refuse)
    async with booted(plugin) as (admin, services):
        user = (await _sign_up(admin, "ada@example.com")).data
        assert (await admin.sign_in("ada@example.com", PASSWORD)).session["access_token"]
        assert plugin.seen[-1] == ("login", user["id"], None, "password")
        LOCKED.append(user["id"])
        r = await admin.anonymous().post("/api/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
        assert (r.status, r.code) == (403, "FORBIDDEN")


async def test_hook_workeros_auth_after_login(booted) -> None:
    plugin = _auth_plugin("login")
    async with booted(plugin) as (admin, services):
        user = (await _sign_up(admin, "ada@example.com")).data
        await admin.sign_in("ada@example.com", PASSWORD)
        assert await asyncio.wait_for(plugin.after_seen.get(), 10) == ("login", user["id"], None, "password")


async def test_hook_workeros_auth_before_signup(booted) -> None:
    def shape(event):
        if not event.email.endswith("@example.com"):
            raise Forbidden("Sign-up is for example.com addresses")
        event.data["first_name"] = event.data.get("first_name", "").title() or "Friend"

    plugin = _auth_plugin("signup", shape)
    async with booted(plugin) as (admin, services):
        r = await _sign_up(admin, "ada@example.com", first_name="ada")
        assert r.status == 201 and r.data["first_name"] == "Ada"
        assert plugin.seen[-1] == ("signup", None, "ada@example.com", "password")
        refused = await _sign_up(admin, "eve@elsewhere.test")
        assert (refused.status, refused.code) == (403, "FORBIDDEN")
        users = (await admin.get("/api/users")).data
        assert [u["email"] for u in users] == ["ada@example.com"]


async def test_hook_workeros_auth_after_signup(booted) -> None:
    plugin = _auth_plugin("signup")
    async with booted(plugin) as (admin, services):
        user = (await _sign_up(admin, "ada@example.com")).data
        assert await asyncio.wait_for(plugin.after_seen.get(), 10) == ("signup", user["id"], "ada@example.com",
                                                                        "password")


async def test_hook_workeros_auth_before_logout(booted) -> None:
    def refuse(event):
        raise Forbidden("Stay a while")

    plugin = _auth_plugin("logout", refuse)
    async with booted(plugin) as (admin, services):
        user = (await _sign_up(admin, "ada@example.com")).data
        ada = await admin.sign_in("ada@example.com", PASSWORD)
        r = await ada.post("/api/auth/logout", json={"refresh_token": ada.session["refresh_token"]})
        assert (r.status, r.code) == (403, "FORBIDDEN")
        assert plugin.seen[-1] == ("logout", user["id"], None, None)
        assert (await ada.get("/api/users/me")).status == 200  # still signed in


async def test_hook_workeros_auth_after_logout(booted) -> None:
    plugin = _auth_plugin("logout")
    async with booted(plugin) as (admin, services):
        user = (await _sign_up(admin, "ada@example.com")).data
        ada = await admin.sign_in("ada@example.com", PASSWORD)
        r = await ada.post("/api/auth/logout", json={"refresh_token": ada.session["refresh_token"]})
        assert r.status == 204
        assert await asyncio.wait_for(plugin.after_seen.get(), 10) == ("logout", user["id"], None, None)


async def _reset_token(admin: Api, inbox: Any, email: str) -> str:
    import re
    from urllib.parse import parse_qs, urlparse

    assert (await admin.anonymous().post("/api/auth/password/request", json={"email": email})).status == 204
    for _ in range(100):
        if inbox.to(email):
            break
        await asyncio.sleep(0.05)
    url = re.search(r"https?://\S+", inbox.text(inbox.last(email))).group(0)
    return parse_qs(urlparse(url).query)["token"][0]


async def test_hook_workeros_auth_before_password_reset(booted, smtp_inbox) -> None:
    def refuse(event):
        raise Forbidden("Resets are frozen")

    plugin = _auth_plugin("password_reset", refuse)
    async with booted(plugin) as (admin, services):
        user = (await _sign_up(admin, "ada@example.com")).data
        token = await _reset_token(admin, smtp_inbox, "ada@example.com")
        r = await admin.anonymous().post("/api/auth/password/reset", json={"token": token, "password": "new pass 1234"})
        assert (r.status, r.code) == (403, "FORBIDDEN")
        assert plugin.seen[-1] == ("password_reset", user["id"], "ada@example.com", None)
        assert (await admin.sign_in("ada@example.com", PASSWORD)).session  # the old password still works


async def test_hook_workeros_auth_after_password_reset(booted, smtp_inbox) -> None:
    plugin = _auth_plugin("password_reset")
    async with booted(plugin) as (admin, services):
        user = (await _sign_up(admin, "ada@example.com")).data
        token = await _reset_token(admin, smtp_inbox, "ada@example.com")
        r = await admin.anonymous().post("/api/auth/password/reset", json={"token": token, "password": "new pass 1234"})
        assert r.status == 204
        assert await asyncio.wait_for(plugin.after_seen.get(), 10) == ("password_reset", user["id"],
                                                                        "ada@example.com", None)
