"""Webhooks: their definitions (admin CRUD), the outbox rows written in the
transaction of each change, and the delivery log.

A delivery row is inserted on the connection of the write that caused it
(``workeros_items_committing``, or the auth event's transaction), so it
commits or rolls back with the change: a committed change always gets its
delivery and a rolled-back one never does. The dispatcher
(:mod:`workeros_webhooks.dispatcher`) sends what is due.

Which webhooks a change goes to is cached per instance (the active webhooks,
then the targets of each event and collection). A webhook change forgets the
cache on its own instance as it is written and again once it commits, and on
every other instance through the event bus (channel ``webhooks``); each cache
is also read again at least every ``webhooks.cache_seconds``. A write that
starts after a webhook change is known on its instance queues for the new
set. On another instance that is the bus's delay (milliseconds; at most
``webhooks.cache_seconds`` if a bus message is lost), the same window as the
other caches of definitions (flows, permissions). ``webhooks.cache_seconds``
0 reads the active webhooks in every write's transaction instead.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from workeros.api import (
    Accountability,
    Forbidden,
    InvalidPayload,
    NotFound,
    Services,
    dumps_str,
    jsonable,
    now,
    random_token,
    setting_or,
    users,
)

from .tables import attempts, deliveries, webhooks

log = logging.getLogger("workeros.webhooks")

#: Event bus channel: a webhook was created, changed or deleted somewhere.
CHANNEL = "webhooks"
#: Event bus channel: deliveries were queued by an instance that does not send
#: them itself (``webhooks.dispatch`` off); wakes the dispatchers elsewhere.
QUEUED = "webhooks_queued"

ITEM_EVENTS = ("items.create", "items.update", "items.delete")
AUTH_EVENTS = ("auth.login", "auth.signup", "auth.logout", "auth.password_reset")
EVENTS = ITEM_EVENTS + AUTH_EVENTS
FIELDS = ("name", "url", "events", "collections", "headers", "active")
#: Headers the delivery sets itself; a webhook's own headers cannot replace them.
RESERVED_HEADERS = re.compile(r"^(workeros-.*|content-type|content-length|host|transfer-encoding)$", re.I)
HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$")
PUBLIC = ("id", *FIELDS, "created_at", "updated_at")
#: The active webhooks, read in a write's transaction when the cache is cold: built once, so a
#: write does not construct and hash a new statement.
_ACTIVE = (sa.select(webhooks.c.id, webhooks.c.events, webhooks.c.collections)
           .where(webhooks.c.active.is_(True)).order_by(webhooks.c.id))


def _public(row: Mapping[str, Any]) -> dict[str, Any]:
    return jsonable({k: row[k] for k in PUBLIC})


def check_payload(data: Any, *, partial: bool) -> dict[str, Any]:
    """A webhook definition from a request body (400 naming what is wrong)."""
    if not isinstance(data, dict):
        raise InvalidPayload("Expected a JSON object")
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise InvalidPayload(f"Unknown webhook field {unknown[0]!r}")
    if not partial:
        for required in ("name", "url", "events"):
            if required not in data:
                raise InvalidPayload(f"{required!r} is required")
    out: dict[str, Any] = {}
    if "name" in data:
        if not isinstance(data["name"], str) or not 0 < len(data["name"].strip()) <= 255:
            raise InvalidPayload("'name' must be a non-empty string of at most 255 characters")
        out["name"] = data["name"].strip()
    if "url" in data:
        url = data["url"]
        if not isinstance(url, str) or len(url) > 2048 or not re.match(r"^https?://[^\s/]+", url):
            raise InvalidPayload("'url' must be an http or https URL")
        out["url"] = url
    if "events" in data:
        events = data["events"]
        if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
            raise InvalidPayload("'events' must be a non-empty list of event names")
        for event in events:
            if event not in EVENTS:
                raise InvalidPayload(f"Unknown event {event[:64]!r}; events are {', '.join(EVENTS)}")
        out["events"] = sorted(set(events), key=EVENTS.index)
    if "collections" in data:
        collections = data["collections"]
        if collections is not None and (not isinstance(collections, list)
                                        or not all(isinstance(c, str) and c for c in collections)):
            raise InvalidPayload("'collections' must be a list of collection names, or null for all")
        out["collections"] = collections
    if "headers" in data:
        headers = data["headers"] or {}
        if not isinstance(headers, dict):
            raise InvalidPayload("'headers' must be an object of header names to string values")
        for name, value in headers.items():
            if not HEADER_NAME.match(name) or RESERVED_HEADERS.match(name):
                raise InvalidPayload(f"Header {name[:64]!r} cannot be set")
            if not isinstance(value, str) or "\r" in value or "\n" in value or len(value) > 4096:
                raise InvalidPayload(f"Header {name[:64]!r} must be a single-line string")
        out["headers"] = headers
    if "active" in data:
        if not isinstance(data["active"], bool):
            raise InvalidPayload("'active' must be true or false")
        out["active"] = data["active"]
    return out


def _match(active: Sequence[tuple[str, frozenset[str], frozenset[str] | None]], event: str,
           collection: str | None) -> list[str]:
    return [hook for hook, events, collections in active if event in events
            and (collections is None or (collection is not None and collection in collections))]


class WebhooksService:
    """``services.get("webhooks")``."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.db = services.db
        #: Called after a commit that queued deliveries (the dispatcher's wake-up).
        self.on_queued: Callable[[], None] | None = None
        self.cache_seconds = float(self.setting("webhooks.cache_seconds", 5.0))
        #: The active webhooks as (id, events, collections or None), when cached.
        self._active: list[tuple[str, frozenset[str], frozenset[str] | None]] | None = None
        self._loaded_at = 0.0
        #: Bumped whenever the cache is forgotten: a load that overlapped a
        #: change is used for its own write but not kept.
        self._generation = 0
        #: Targets by (event, collection), derived from ``_active``.
        self._targets: dict[tuple[str, str | None], list[str]] = {}
        self._unsubscribe: Any = None
        self._insert = deliveries.insert()
        #: Without a dispatcher here, commits that queued deliveries are announced
        #: on the bus (one message at a time; commits meanwhile share the next).
        self.announce = not bool(self.setting("webhooks.dispatch", True))
        self._announcing: Any = None
        self._announce_again = False

    @classmethod
    async def open(cls, services: Services) -> WebhooksService:
        service = cls(services)
        service._unsubscribe = services.events.subscribe(CHANNEL, service._changed_elsewhere)
        return service

    async def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._announcing is not None:
            await self._announcing

    def _queued(self) -> None:
        """After a commit that queued deliveries: wake the local dispatcher, or
        announce them to the dispatchers of other processes."""
        if self.on_queued is not None:
            self.on_queued()
        elif self.announce:
            if self._announcing is not None:
                self._announce_again = True
            else:
                self._announcing = self.services.background.spawn(self._announce(), name="webhooks-announce")

    async def _announce(self) -> None:
        try:
            while True:
                self._announce_again = False
                await self.services.events.publish(QUEUED, {})
                if not self._announce_again:
                    return
        except Exception:  # the dispatchers still poll every webhooks.poll_seconds
            log.exception("announcing queued webhook deliveries failed")
        finally:
            self._announcing = None

    # -- the cache of active webhooks ----------------------------------------------------
    def forget(self) -> None:
        """Drop the cached webhooks (read again by the next write)."""
        self._generation += 1
        self._active = None
        self._targets = {}

    def _changed_elsewhere(self, message: dict[str, Any]) -> None:
        self.forget()

    @asynccontextmanager
    async def _change(self) -> AsyncIterator[AsyncConnection]:
        """The transaction of a webhook change. The cache is forgotten as it
        starts (a write after it in the same group commit reads the change on
        the shared connection), if it fails, and once it commits, here and on
        every instance."""
        try:
            async with self.db.transaction() as conn:
                self.forget()
                self.db.after_commit(conn, self._committed)
                yield conn
        except BaseException:
            self.forget()
            raise

    async def _committed(self) -> None:
        self.forget()
        try:
            await self.services.events.publish(CHANNEL, {"changed": True})
        except Exception:  # other instances still read again within webhooks.cache_seconds
            log.exception("publishing a webhook change failed")

    async def _targets_of(self, conn: AsyncConnection, event: str, collection: str | None) -> list[str]:
        """Ids of the active webhooks ``event`` on ``collection`` goes to."""
        if self._active is not None and time.monotonic() - self._loaded_at < self.cache_seconds:
            key = (event, collection)
            found = self._targets.get(key)
            if found is None:
                found = self._targets[key] = _match(self._active, event, collection)
            return found
        generation = self._generation
        rows = (await conn.execute(_ACTIVE)).all()
        active = [(r.id, frozenset(r.events or ()), None if r.collections is None else frozenset(r.collections))
                  for r in rows]
        if self.cache_seconds > 0 and generation == self._generation:
            self._active, self._loaded_at, self._targets = active, time.monotonic(), {}
        return _match(active, event, collection)

    def setting(self, name: str, default: Any) -> Any:
        return setting_or(self.services.settings, name, default)

    # -- definitions (admin) -------------------------------------------------------------
    @staticmethod
    def _admin(acc: Accountability) -> None:
        if not acc.admin:
            raise Forbidden()

    async def list(self, acc: Accountability) -> list[dict[str, Any]]:
        self._admin(acc)
        async with self.db.read() as conn:
            rows = (await conn.execute(sa.select(webhooks).order_by(webhooks.c.created_at, webhooks.c.id))).mappings()
            return [_public(r) for r in rows]

    async def _row(self, conn: AsyncConnection, key: str) -> Mapping[str, Any]:
        try:
            uuid.UUID(str(key))
        except ValueError:
            raise NotFound("Webhook not found") from None
        row = (await conn.execute(sa.select(webhooks).where(webhooks.c.id == str(key)))).mappings().first()
        if row is None:
            raise NotFound("Webhook not found")
        return row

    async def get(self, acc: Accountability, key: str) -> dict[str, Any]:
        self._admin(acc)
        async with self.db.read() as conn:
            return _public(await self._row(conn, key))

    async def create(self, acc: Accountability, data: Any) -> dict[str, Any]:
        """Create a webhook; the answer carries its ``secret``, the only time it is shown."""
        self._admin(acc)
        values = check_payload(data, partial=False)
        self.services.outbound.check_url(values["url"])
        t = now()
        row = {"id": str(uuid.uuid4()), "collections": None, "headers": {}, "active": True, **values,
               "secret": random_token("whsec_"), "created_at": t, "updated_at": t}
        async with self._change() as conn:
            await conn.execute(webhooks.insert().values(**row))
        return {**_public(row), "secret": row["secret"]}

    async def update(self, acc: Accountability, key: str, data: Any) -> dict[str, Any]:
        self._admin(acc)
        values = check_payload(data, partial=True)
        if "url" in values:
            self.services.outbound.check_url(values["url"])
        async with self._change() as conn:
            await self._row(conn, key)
            if values:
                await conn.execute(webhooks.update().where(webhooks.c.id == str(key))
                                   .values(**values, updated_at=now()))
            return _public(await self._row(conn, key))

    async def delete(self, acc: Accountability, key: str) -> None:
        self._admin(acc)
        async with self._change() as conn:
            await self._row(conn, key)
            delivery_ids = sa.select(deliveries.c.id).where(deliveries.c.webhook == str(key))
            await conn.execute(attempts.delete().where(attempts.c.delivery.in_(delivery_ids)))
            await conn.execute(deliveries.delete().where(deliveries.c.webhook == str(key)))
            await conn.execute(webhooks.delete().where(webhooks.c.id == str(key)))

    async def deliveries(self, acc: Accountability, key: str, *, limit: int = 100, offset: int = 0,
                         status: str | None = None) -> list[dict[str, Any]]:
        """The webhook's deliveries, newest first, each with its attempts."""
        self._admin(acc)
        async with self.db.read() as conn:
            await self._row(conn, key)
            q = sa.select(deliveries).where(deliveries.c.webhook == str(key))
            if status:
                q = q.where(deliveries.c.status == status)
            q = q.order_by(deliveries.c.created_at.desc(), deliveries.c.id).limit(limit).offset(offset)
            rows = [dict(r) for r in (await conn.execute(q)).mappings()]
            log: dict[str, list[dict[str, Any]]] = {r["id"]: [] for r in rows}
            if rows:
                q = (sa.select(attempts).where(attempts.c.delivery.in_(list(log)))
                     .order_by(attempts.c.delivery, attempts.c.attempt, attempts.c.id))
                for a in (await conn.execute(q)).mappings():
                    log[a["delivery"]].append({"attempt": a["attempt"], "status_code": a["status_code"],
                                               "error": a["error"], "latency_ms": a["latency_ms"], "at": a["at"]})
        return jsonable([{
            "id": r["id"], "event": r["event"], "collection": r["collection"], "status": r["status"],
            "attempt_count": r["attempts"], "response_status": r["response_status"], "error": r["error"],
            "created_at": r["created_at"], "next_attempt_at": r["next_attempt_at"] if r["status"] == "pending"
            else None, "finished_at": r["finished_at"], "attempts": log[r["id"]],
        } for r in rows])

    # -- the outbox ----------------------------------------------------------------------
    async def backlog(self) -> int:
        """Deliveries waiting to be sent (the outbox's depth; read by the metrics plugin)."""
        async with self.db.read() as conn:
            query = sa.select(sa.func.count()).select_from(deliveries).where(deliveries.c.status == "pending")
            return int((await conn.execute(query)).scalar() or 0)

    async def enqueue(self, conn: AsyncConnection, event: str, collection: str | None,
                      entries: Iterable[tuple[list[Any], Any]]) -> int:
        """Queue one delivery per matching active webhook and per entry
        (``keys``, ``payload`` — ``payload`` ``...`` leaves it out) on ``conn``,
        the change's own transaction. Returns how many rows were written."""
        targets = await self._targets_of(conn, event, collection)
        if not targets:
            return 0
        t = now()
        stamp = jsonable(t)
        rows = []
        for keys, payload in entries:
            # One JSON text per entry, shared by its deliveries: each body is
            # '{"id":"<its delivery id>",' followed by the rest of that text.
            body: dict[str, Any] = {"event": event, "collection": collection, "keys": keys}
            if payload is not ...:
                body["payload"] = payload
            body["timestamp"] = stamp
            rest = dumps_str(body)[1:]
            for target in targets:
                delivery = str(uuid.uuid4())
                rows.append({"id": delivery, "webhook": target, "event": event, "collection": collection,
                             "body": f'{{"id":"{delivery}",{rest}', "status": "pending", "attempts": 0,
                             "next_attempt_at": t, "created_at": t})
        if rows:
            await conn.execute(self._insert, rows)
            if self.on_queued is not None or self.announce:
                self.db.after_commit(conn, self._queued)
        return len(rows)

    async def enqueue_items(self, mutation: Any) -> None:
        action = mutation.action
        if action == "delete":
            entries: Sequence[tuple[list[Any], Any]] = [([key], ...) for key in mutation.keys]
        else:
            entries = [([key], row) for key, row in zip(mutation.keys, mutation.after or (), strict=False)]
        await self.enqueue(mutation.connection, f"items.{action}", mutation.collection, entries)

    async def enqueue_auth(self, event: Any) -> None:
        email = event.email
        if email is None and event.user:  # sign-in events name the user only
            email = (await event.connection.execute(sa.select(users.c.email).where(users.c.id == event.user))).scalar()
        payload = {"user": event.user, "email": email, "provider": event.provider}
        await self.enqueue(event.connection, f"auth.{event.name}", "wos_users",
                           [([event.user] if event.user else [], payload)])
