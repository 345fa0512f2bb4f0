"""The realtime hub: item events fanned out to subscribers, each event checked
against each subscriber's permissions in this process (DESIGN §4).

Every transport (SSE, WebSocket, GraphQL subscriptions) registers a
:class:`Subscription` here. The hub listens on the ``items`` channel of the
event bus, so a change made on any instance reaches subscribers on every
instance. For each event:

- subscribers are grouped by what decides visibility — the collection, the
  role's read rule (per user when the rule names the user), the subscription's
  own filter and the fields asked for — so the work per event grows with the
  number of distinct groups, not of subscribers;
- scalar predicates are matched in memory against the rows the event carries
  (before and after the change): no database read;
- a predicate that needs related rows is checked by one batched query per
  event per group, against the rows after the change; which rows a relational
  group could see before is what the hub has told it (see ``Group.visible``);
- visibility transitions: an update that moves a row out of a group's view is
  sent as ``delete``, one that moves a row into view as ``create``; a delete
  goes only to groups that could see the row;
- payloads carry only the fields the role may read and the subscriber asked for.

Every open connection of a transport is a :class:`Stream`: it holds the
caller's connection count, the credential the caller signed in with and the
subscriptions made on it. The hub ends a stream — a ``closed`` message on each
of its subscriptions, and :meth:`Stream.wait` returns the reason — when

- its credential expires (an access token's ``exp``, an API key's
  ``expires_at``, a session cookie's end): reason ``expired: …``;
- its credential stops working: an API key revoked, a session ended (logout,
  refresh-token replay), the user suspended or deleted. Every such change is
  published on the ``accounts`` channel of the event bus, so each instance
  checks its open streams' credentials again (one database read per distinct
  credential) within moments: reason ``revoked: …``;
- the server shuts down: reason ``shutdown``.

A credential that still works but now names another role (or admin access) is
taken up: the stream's subscriptions are placed again under the new role's
rules, and those the new role may not make end with ``forbidden: …``.

Each subscriber has a bounded queue; one that cannot keep up is closed with a
reason instead of growing memory. A bounded buffer of recent events per
collection lets a reconnecting subscriber resume from ``Last-Event-ID``; an id
older than the buffer (or from another instance) is reported as a gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from workeros.accountability import Accountability
from workeros.bus.events import ACCOUNTS, ITEMS, PERMISSIONS, SCHEMA, ItemEvent
from workeros.config import setting_or
from workeros.errors import Forbidden, InvalidQuery, RateLimited, WorkerosError
from workeros.hookspecs.lifecycle import ConfigKey
from workeros.serialize import dumps_str

if TYPE_CHECKING:
    from workeros.schema.model import Collection, Schema
    from workeros.services import Services

log = logging.getLogger("workeros.realtime")


@dataclass(frozen=True)
class Message:
    """One delivery: ``event`` is ``create``, ``update`` or ``delete`` (rows in
    ``data``), or a control event: ``gap``, ``closed`` (``reason`` says why)."""

    event: str
    collection: str
    data: list[dict[str, Any]]
    id: str | None = None
    reason: str | None = None

    # One message goes to every member of a group: it is encoded once, on first
    # use, and the text shared by every stream that sends it.
    @functools.cached_property
    def data_json(self) -> str:
        return dumps_str(self.data)

    @functools.cached_property
    def json(self) -> str:
        body = f'{{"event":{dumps_str(self.event)},"collection":{dumps_str(self.collection)},"data":{self.data_json}'
        if self.reason:
            body += f',"reason":{dumps_str(self.reason)}'
        return body + "}"

    def encoded(self, kind: str, build: Callable[[Message], bytes]) -> bytes:
        """``build(self)``, computed once per message and ``kind``: a transport
        whose frame is the same for every stream (SSE) encodes it once, and
        every member of the group sends the same bytes."""
        cache: dict[str, bytes] = self.__dict__.setdefault("_encoded", {})
        frame = cache.get(kind)
        if frame is None:
            frame = cache[kind] = build(self)
        return frame


@dataclass(eq=False)
class Subscription:
    """One subscriber. Read :attr:`queue` until a ``closed`` message arrives."""

    acc: Accountability
    collection: str
    filter: Any = None
    fields: tuple[str, ...] | None = None
    queue: asyncio.Queue[Message] = field(default_factory=asyncio.Queue)
    closed: bool = False
    group: Group | None = None
    stream: Stream | None = None

    def deliver(self, message: Message) -> bool:
        if self.closed:
            return False
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            return False
        return True


@dataclass(eq=False)
class Group:
    """Subscribers that see exactly the same events."""

    key: tuple
    collection: str
    acc: Accountability  # the first member's: same role (and user, when the rule names it)
    condition: Any  # the role's read filter AND the subscription filter (parsed), or None
    relational: bool
    fields: frozenset[str] | None  # payload fields (None: all the role may read = all)
    members: set[Subscription] = field(default_factory=set)
    #: Keys this group was told about as visible (relational groups only).
    visible: set[Any] = field(default_factory=set)


@dataclass(frozen=True)
class Credential:
    """What a stream signed in with, kept so the hub can check it again: the
    ``Authorization`` header (an access token or API key) or the session
    cookie."""

    authorization: str | None = None
    cookie: str | None = None

    @property
    def kind(self) -> str:
        if self.cookie is not None:
            return "session"
        token = bearer_token(self.authorization) or ""
        return "API key" if token.startswith("pak_") else "access token"


@dataclass(eq=False)
class Stream:
    """One open connection of a transport (an SSE response, a WebSocket).
    Opened by :meth:`RealtimeHub.open_stream`, closed by
    :meth:`RealtimeHub.close_stream`; :meth:`wait` returns why the hub ended it."""

    hub: RealtimeHub
    acc: Accountability
    credential: Credential | None
    slot: str
    subscriptions: set[Subscription] = field(default_factory=set)
    reason: str | None = None
    #: Seconds the stream stays open after its credential expires, for the
    #: client to sign in again in place (0: it ends at once).
    grace: float = 0.0
    #: Called when the credential expires and the grace period starts (the
    #: transport tells the client and holds its events until it signs in again).
    on_expiring: Callable[[], None] | None = None
    #: In the grace period: the credential expired, events are not to be sent.
    expiring: bool = False
    _ended: asyncio.Event = field(default_factory=asyncio.Event)
    _timer: asyncio.TimerHandle | None = None

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    async def wait(self) -> str:
        """The reason, once the hub ends the stream: ``expired: …``,
        ``revoked: …`` or ``shutdown``."""
        await self._ended.wait()
        return self.reason or "closed"

    def renew(self, acc: Accountability, credential: Credential | None) -> None:
        """The caller signed in again inside the stream (a WebSocket ``auth``
        message, a GraphQL ``connection_init`` token): count the connection for
        the new user (429 over the limit) and watch the new credential. The
        transport ends subscriptions made as another user."""
        key = self.hub.connection_key(acc)
        if key != self.slot:
            slot = self.hub.acquire(acc)
            self.hub.release(self.slot)
            self.slot = slot
        self.acc = acc
        self.credential = credential if acc.user is not None else None
        self.expiring = False
        for sub in self.subscriptions:
            sub.acc = acc
        self.hub._watch_expiry(self)


class RealtimeHub:
    config_keys = (
        ConfigKey("realtime.queue_size", "int", 1000,
                  "Events buffered per subscriber; one that falls further behind is disconnected"),
        ConfigKey("realtime.replay_size", "int", 1000, "Recent events kept per collection for Last-Event-ID resume"),
        ConfigKey("realtime.max_connections_per_user", "int", 20,
                  "Open realtime connections per user (per IP for anonymous callers)"),
        ConfigKey("realtime.heartbeat_s", "float", 15.0, "Seconds between keep-alive messages on idle streams"),
        ConfigKey("realtime.auth_grace_s", "float", 30.0,
                  "Seconds a WebSocket stays open after its access token expires, for the client to send a fresh "
                  "one (events are held meanwhile); 0 closes it at once"),
        ConfigKey("realtime.allowed_origins", "list", [],
                  "Origins (scheme://host[:port]) whose pages may open WebSockets signed in by the session cookie, "
                  "besides the server's own origin and server.public_url's; \"*\" allows any"),
    )

    def __init__(self, services: Services) -> None:
        self.services = services
        settings = services.settings
        self.queue_size = int(setting_or(settings, "realtime.queue_size", 1000))
        self.replay_size = int(setting_or(settings, "realtime.replay_size", 1000))
        self.max_per_user = int(setting_or(settings, "realtime.max_connections_per_user", 20))
        self.heartbeat_s = float(setting_or(settings, "realtime.heartbeat_s", 15.0))
        self.auth_grace_s = float(setting_or(settings, "realtime.auth_grace_s", 30.0))
        self.groups: dict[str, dict[tuple, Group]] = defaultdict(dict)
        self.connections: dict[str, int] = defaultdict(int)
        #: Event ids are ``<epoch>-<sequence>``: unique to this process's life.
        self.epoch = format(time.time_ns(), "x")
        self._seq = itertools.count(1)
        self.replay: dict[str, deque[tuple[int, ItemEvent]]] = defaultdict(lambda: deque(maxlen=self.replay_size))
        self._unsubscribe: list[Any] = []
        self.delivered = 0
        #: Bumped on every change of roles, permissions or schema; a regrouping
        #: that sees it move on starts over.
        self._access_version = 0
        self.streams: set[Stream] = set()
        self._recheck_lock = asyncio.Lock()
        self._recheck_pending = False

    @classmethod
    async def open(cls, services: Services) -> RealtimeHub:
        hub = cls(services)
        # The permissions and schema services subscribe first (they open first),
        # so their caches are cleared before the hub checks subscriptions again.
        hub._unsubscribe = [services.events.subscribe(ITEMS, hub._on_message),
                            services.events.subscribe(PERMISSIONS, hub._on_permissions_changed),
                            services.events.subscribe(SCHEMA, hub._on_access_changed),
                            services.events.subscribe(ACCOUNTS, hub._on_accounts_changed)]
        return hub

    async def close(self) -> None:
        for stop in self._unsubscribe:
            stop()
        self._unsubscribe = []
        self.close_all("shutdown")

    def close_all(self, reason: str) -> None:
        """End every stream and subscription with a ``closed`` message (server
        shutdown). The kernel calls it when the server starts shutting down."""
        for stream in list(self.streams):
            self._end(stream, reason)
        for groups in list(self.groups.values()):
            for group in list(groups.values()):
                for sub in list(group.members):
                    self._close(sub, reason)
        self.groups.clear()

    # -- streams -----------------------------------------------------------------------
    def credential(self, headers: Mapping[str, str], cookies: Mapping[str, str],
                   acc: Accountability) -> Credential | None:
        """The credential a request signed in with (``None`` for anonymous
        callers, who have none to revoke)."""
        if acc.user is None:
            return None
        header = headers.get("Authorization")
        if header:
            return Credential(authorization=header)
        cookie = cookies.get(str(setting_or(self.services.settings, "auth.cookie_name", "wos_session")))
        return Credential(cookie=cookie) if cookie else None

    def check_origin(self, headers: Mapping[str, str], credential: Credential | None, *, own: str) -> None:
        """Refuse (403) a WebSocket upgrade signed in by the session cookie from
        a page of another origin: browsers send the cookie on cross-site
        WebSocket upgrades, and no CORS rule guards them (cross-site WebSocket
        hijacking). ``own`` is this server's origin as the request reached it
        (``scheme://host``). Allowed: that origin, ``server.public_url``'s, and
        ``realtime.allowed_origins``. Upgrades without an ``Origin`` header (not
        from a browser) and those signed in by a Bearer token or API key (which
        a foreign page cannot send) are not affected."""
        if credential is None or credential.cookie is None:
            return
        origin = headers.get("Origin")
        if origin is None:
            return
        allowed = {own.lower(), *(str(o).rstrip("/").lower() for o in
                                  setting_or(self.services.settings, "realtime.allowed_origins", None) or ())}
        public = setting_or(self.services.settings, "server.public_url", None)
        if public:
            from urllib.parse import urlsplit

            parts = urlsplit(str(public))
            allowed.add(f"{parts.scheme}://{parts.netloc}".lower())
        if "*" in allowed or origin.rstrip("/").lower() in allowed:
            return
        raise Forbidden(f"Origin {origin[:100]!r} may not open a WebSocket signed in by the session cookie "
                        "(see realtime.allowed_origins)")

    def open_stream(self, acc: Accountability, credential: Credential | None = None, *, grace: float = 0.0,
                    on_expiring: Callable[[], None] | None = None) -> Stream:
        """Count one connection for the caller (429 over the limit) and watch
        its credential. With ``grace`` and ``on_expiring``, an expiring
        credential first calls ``on_expiring`` and ends the stream only if it is
        not renewed within ``grace`` seconds. Pair with :meth:`close_stream`."""
        stream = Stream(hub=self, acc=acc, credential=credential, slot=self.acquire(acc), grace=grace,
                        on_expiring=on_expiring)
        self.streams.add(stream)
        self._watch_expiry(stream)
        return stream

    def close_stream(self, stream: Stream) -> None:
        """The connection is gone: end its subscriptions and give back its count."""
        self.streams.discard(stream)
        if stream._timer is not None:
            stream._timer.cancel()
            stream._timer = None
        for sub in list(stream.subscriptions):
            self.unsubscribe(sub)
        if not stream.ended:
            stream.reason = "closed"
            stream._ended.set()
        if stream.slot:
            self.release(stream.slot)
            stream.slot = ""

    def _end(self, stream: Stream, reason: str) -> None:
        if stream.ended:
            return
        stream.reason = reason
        stream._ended.set()
        if stream._timer is not None:
            stream._timer.cancel()
            stream._timer = None
        for sub in list(stream.subscriptions):
            self._close(sub, reason)

    def _watch_expiry(self, stream: Stream) -> None:
        if stream._timer is not None:
            stream._timer.cancel()
            stream._timer = None
        at = stream.acc.expires_at
        if at is None or stream.ended:
            return
        loop = asyncio.get_running_loop()
        stream._timer = loop.call_later(max(0.0, at - time.time()), self._expire, stream)

    def _expire(self, stream: Stream) -> None:
        stream._timer = None
        at = stream.acc.expires_at
        if at is None:
            return
        if at - time.time() > 0.01:  # renewed meanwhile
            self._watch_expiry(stream)
            return
        if stream.grace > 0 and stream.on_expiring is not None and not stream.expiring:
            stream.expiring = True
            stream.on_expiring()
            stream._timer = asyncio.get_running_loop().call_later(stream.grace, self._expire, stream)
            return
        kind = stream.credential.kind if stream.credential is not None else "credential"
        self._end(stream, f"expired: the {kind} expired")

    async def _on_accounts_changed(self, _message: Any = None) -> None:
        """Users, sessions or API keys changed (here or on another instance)."""
        if await self.recheck_streams():
            await self._on_access_changed()

    async def _on_permissions_changed(self, message: Any = None) -> None:
        """Roles (admin access) or permissions changed: credentials first, then
        every subscription placed again."""
        await self.recheck_streams()
        await self._on_access_changed(message)

    async def recheck_streams(self) -> bool:
        """Check the credential of every open stream again, reading the
        database (one read per distinct credential). One that no longer works
        ends its stream (``revoked: …``, or ``expired: …``); one that now names
        another role, admin access or user row is taken up by the stream and its
        subscriptions. True when a stream's caller changed that way (the caller
        then places the subscriptions again). Changes arriving while a check runs
        are folded into one more check."""
        self._recheck_pending = True
        async with self._recheck_lock:
            if not self._recheck_pending:
                return False  # a check that started after this request covered it
            self._recheck_pending = False
            return await self._recheck()

    async def _recheck(self) -> bool:
        accounts = self.services.accounts
        if accounts is None:
            return False
        results: dict[Credential, Accountability | WorkerosError] = {}
        changed = False
        for stream in list(self.streams):
            credential = stream.credential
            if credential is None or stream.ended:
                continue
            found = results.get(credential)
            if found is None:
                headers = {"Authorization": credential.authorization} if credential.authorization else {}
                cookies = {str(setting_or(self.services.settings, "auth.cookie_name", "wos_session")):
                           credential.cookie} if credential.cookie else {}
                try:
                    found = await accounts.authenticate(headers=headers, cookies=cookies, method="GET",
                                                        ip=stream.acc.ip, user_agent=stream.acc.user_agent,
                                                        fresh=True)
                except WorkerosError as error:
                    found = error
                results[credential] = found
            if stream.ended or stream not in self.streams:
                continue
            if isinstance(found, WorkerosError):
                code = found.to_error()["extensions"]["code"]
                self._end(stream, f"{'expired' if code == 'TOKEN_EXPIRED' else 'revoked'}: {found.message}")
                continue
            if found.user != stream.acc.user:
                self._end(stream, f"revoked: the {credential.kind} has ended")
                continue
            acc = replace(found, ip=stream.acc.ip, user_agent=stream.acc.user_agent, origin=stream.acc.origin)
            old = stream.acc
            if (acc.role, acc.admin, acc.api_key, acc.mcp_read_only, acc.mcp_tools, acc.user_fields) != \
                    (old.role, old.admin, old.api_key, old.mcp_read_only, old.mcp_tools, old.user_fields):
                changed = True
                for sub in stream.subscriptions:
                    sub.acc = acc
            stream.acc = acc
            if acc.expires_at != old.expires_at:
                self._watch_expiry(stream)
        return changed

    # -- subscribing -----------------------------------------------------------------
    def connection_key(self, acc: Accountability) -> str:
        return f"user:{acc.user}" if acc.user else f"ip:{acc.ip}"

    def acquire(self, acc: Accountability) -> str:
        """Count one connection for the caller: 429 over the limit. Pair with
        :meth:`release`."""
        key = self.connection_key(acc)
        if self.connections[key] >= self.max_per_user:
            raise RateLimited(f"At most {self.max_per_user} realtime connections per user", retry_after=5)
        self.connections[key] += 1
        return key

    def release(self, key: str) -> None:
        self.connections[key] -= 1
        if self.connections[key] <= 0:
            del self.connections[key]

    async def subscribe(self, acc: Accountability, collection: str, *, filter: Any = None,
                        fields: Iterable[str] | None = None, stream: Stream | None = None) -> Subscription:
        """Check the caller may read ``collection`` (403), the filter and the
        fields (400/403) and register a subscription, on ``stream`` when given
        (it ends with the stream)."""
        if stream is not None:
            if stream.ended:
                raise Forbidden(f"The stream has ended: {stream.reason}")
            acc = stream.acc
        items = self.services.items
        reader = await items.reader(acc)
        c, rule = reader.collection(collection)
        wanted: tuple[str, ...] | None = None
        if fields is not None:
            names = [f.strip() for f in fields if f.strip()]
            if not names or "*" in names:
                wanted = None
            else:
                for name in names:
                    if "." in name:
                        raise InvalidQuery("Realtime payloads carry the collection's own fields; "
                                           f"{name[:80]!r} is a relational path")
                    f = reader.field(c, name, rule)
                    if f.alias:
                        raise InvalidQuery(f"Field {name!r} is a relational alias and has no value in events")
                wanted = tuple(dict.fromkeys(names))
        parsed = reader.parse(c, filter) if filter else None
        sub = Subscription(acc=acc, collection=collection, filter=filter, fields=wanted,
                           queue=asyncio.Queue(maxsize=self.queue_size), stream=stream)
        if stream is not None:
            if stream.ended:  # it ended while the rules were read
                raise Forbidden(f"The stream has ended: {stream.reason}")
            stream.subscriptions.add(sub)
        self._join(sub, c, rule, parsed, reader)
        return sub

    def _join(self, sub: Subscription, c: Collection, rule: Any, parsed: Any, reader: Any) -> None:
        acc = sub.acc
        rule_filter = rule.filter
        # Variables ($CURRENT_USER, $user.<field>) make a filter mean something
        # else per user: such groups hold one user's subscriptions only.
        per_user = not acc.admin and (rule_filter is not None or "$" in dumps_str(sub.filter or {}))
        readable = None if rule.fields is None else frozenset(rule.fields)
        if sub.fields is None:
            payload_fields = readable
        else:
            payload_fields = frozenset(sub.fields) | {c.primary_key}
            if readable is not None:
                payload_fields &= readable | {c.primary_key}
        key = (acc.admin, acc.role, acc.user if per_user else None, dumps_str(sub.filter) if sub.filter else None,
               tuple(sorted(payload_fields)) if payload_fields is not None else None)
        groups = self.groups[c.name]
        group = groups.get(key)
        if group is None:
            condition = rule_filter.and_(parsed) if rule_filter is not None and parsed is not None \
                else (rule_filter if rule_filter is not None else parsed)
            group = Group(key=key, collection=c.name, acc=acc, condition=condition,
                          relational=bool(condition is not None and condition.relational),
                          fields=payload_fields)
            groups[key] = group
        group.members.add(sub)
        sub.group = group

    async def _on_access_changed(self, _message: Any = None) -> None:
        """Roles, permissions or the schema changed (here or on another instance):
        check every open subscription again as if it were new. One its caller may
        no longer make ends with a ``closed`` message (reason ``forbidden: …``);
        the others move to the group their new rule gives, so the next event is
        filtered and cut by the rule in force."""
        self._access_version += 1
        version = self._access_version
        placed: dict[Subscription, Any] = {}
        readers: dict[tuple, Any] = {}
        while True:
            pending = [sub for groups in self.groups.values() for g in groups.values() for sub in g.members
                       if sub not in placed]
            if not pending:
                break
            for sub in pending:
                placed[sub] = await self._place(sub, readers)
                if self._access_version != version:
                    return  # a newer change regroups with the newer rules
        # Swap in one synchronous step: no event is dispatched against half a regrouping.
        old, self.groups = self.groups, defaultdict(dict)
        for sub, found in placed.items():
            if sub.closed:
                continue
            if isinstance(found, WorkerosError):
                sub.group = None
                self._close(sub, f"forbidden: {found.message}")
                continue
            c, rule, parsed, reader = found
            self._join(sub, c, rule, parsed, reader)
        old.clear()

    async def _place(self, sub: Subscription, readers: dict[tuple, Any]) -> Any:
        acc = sub.acc
        key = (acc.admin, acc.role, acc.user)
        try:
            reader = readers.get(key)
            if reader is None:
                reader = readers[key] = await self.services.items.reader(acc)
            c, rule = reader.collection(sub.collection)
            for name in sub.fields or ():
                reader.field(c, name, rule)
            parsed = reader.parse(c, sub.filter) if sub.filter else None
        except WorkerosError as error:
            return error
        return c, rule, parsed, reader

    def unsubscribe(self, sub: Subscription) -> None:
        sub.closed = True
        if sub.stream is not None:
            sub.stream.subscriptions.discard(sub)
        group = sub.group
        if group is None:
            return
        group.members.discard(sub)
        if not group.members:
            groups = self.groups.get(group.collection, {})
            if groups.get(group.key) is group:
                del groups[group.key]
                if not groups:
                    self.groups.pop(group.collection, None)

    def _close(self, sub: Subscription, reason: str) -> None:
        if sub.closed:
            return
        try:
            sub.queue.put_nowait(Message("closed", sub.collection, [], reason=reason))
        except asyncio.QueueFull:
            # make room for the reason: the subscriber is going away anyway
            with contextlib.suppress(asyncio.QueueEmpty):
                sub.queue.get_nowait()
            sub.queue.put_nowait(Message("closed", sub.collection, [], reason=reason))
        self.unsubscribe(sub)

    def subscriber_count(self) -> int:
        return sum(len(g.members) for groups in self.groups.values() for g in groups.values())

    # -- resume ----------------------------------------------------------------------
    def replay_since(self, sub: Subscription, last_event_id: str) -> bool:
        """Queue the events after ``last_event_id`` for ``sub``, as it would have
        seen them. False when they are no longer known (a gap)."""
        epoch, _, seq = last_event_id.partition("-")
        if epoch != self.epoch or not seq.isdigit():
            return False
        last = int(seq)
        buffer = self.replay.get(sub.collection)
        if not buffer:
            return True  # this process has seen no event on the collection since
        if buffer[0][0] > last + 1:
            return False
        schema = self.services.schema.current()
        for number, event in list(buffer):
            if number > last and sub.group is not None:
                for message in self._messages_for(sub.group, event, schema, f"{self.epoch}-{number}", None):
                    sub.deliver(message)
        return True

    def last_event_id(self, collection: str) -> str | None:
        buffer = self.replay.get(collection)
        return f"{self.epoch}-{buffer[-1][0]}" if buffer else None

    # -- fan-out ---------------------------------------------------------------------
    async def _on_message(self, message: dict[str, Any]) -> None:
        event = ItemEvent.from_message(message)
        number = next(self._seq)
        self.replay[event.collection].append((number, event))
        groups = self.groups.get(event.collection)
        if not groups:
            return
        await self.dispatch(event, f"{self.epoch}-{number}", list(groups.values()))

    async def dispatch(self, event: ItemEvent, event_id: str, groups: list[Group]) -> None:
        schema = self.services.schema.current()
        c = schema.get(event.collection)
        if c is None:
            return
        for group in groups:
            visible_after = None
            if group.relational and event.after:
                visible_after = await self._visible_in_database(group, c, schema, event.after)
            for message in self._messages_for(group, event, schema, event_id, visible_after):
                for sub in list(group.members):
                    if sub.deliver(message):
                        self.delivered += 1
                    elif not sub.closed:
                        self._close(sub, "too slow: the event queue is full")

    def _messages_for(self, group: Group, event: ItemEvent, schema: Schema, event_id: str,
                      visible_after: set[Any] | None) -> list[Message]:
        c = schema.collections[event.collection]
        pk = c.primary_key
        before = {r[pk]: r for r in (event.before or ())}
        after = {r[pk]: r for r in (event.after or ())}
        out: dict[str, list[dict[str, Any]]] = {"create": [], "update": [], "delete": []}
        for key in event.keys:
            was = self._was_visible(group, before.get(key), key, schema)
            now = self._is_visible(group, after.get(key), key, schema, visible_after)
            if event.action == "delete":
                now = False
            if was and now:
                out["update"].append(self._cut(group, after[key]))
            elif now:
                out["create"].append(self._cut(group, after[key]))
            elif was:
                out["delete"].append({pk: key})
            if group.relational:
                if now:
                    group.visible.add(key)
                else:
                    group.visible.discard(key)
        return [Message(kind, event.collection, rows, id=event_id) for kind, rows in out.items() if rows]

    def _was_visible(self, group: Group, row: Mapping[str, Any] | None, key: Any, schema: Schema) -> bool:
        if row is None:
            return False
        if group.condition is None:
            return True
        if group.relational:
            return key in group.visible
        return self._match(group, row, schema)

    def _is_visible(self, group: Group, row: Mapping[str, Any] | None, key: Any, schema: Schema,
                    visible_after: set[Any] | None) -> bool:
        if row is None:
            return False
        if group.condition is None:
            return True
        if group.relational:
            return visible_after is not None and key in visible_after
        return self._match(group, row, schema)

    def _match(self, group: Group, row: Mapping[str, Any], schema: Schema) -> bool:
        from workeros.items.reads import permissions_module

        module = permissions_module()
        return bool(module.match_filter(group.condition, row, schema=schema, collection=group.collection,
                                        variables=module.Variables.for_accountability(group.acc)))

    async def _visible_in_database(self, group: Group, c: Collection, schema: Schema,
                                   rows: list[dict[str, Any]]) -> set[Any]:
        """One query: which of ``rows`` match the group's condition now."""
        from workeros.items.reads import permissions_module

        module = permissions_module()
        keys = [r[c.primary_key] for r in rows]
        from workeros.items.writes import key_of as _key

        db_keys = [_key(c, k) for k in keys]
        condition = module.compile_filter(group.condition, schema=schema, collection=c.name,
                                          variables=module.Variables.for_accountability(group.acc))
        async with self.services.db.read() as conn:
            found = {r[0] for r in await conn.execute(
                sa.select(c.pk_column).where(c.pk_column.in_(db_keys), condition))}
        by_db = dict(zip(db_keys, keys, strict=True))
        return {by_db[k] for k in found if k in by_db}

    def _cut(self, group: Group, row: Mapping[str, Any]) -> dict[str, Any]:
        if group.fields is None:
            return dict(row)
        return {k: v for k, v in row.items() if k in group.fields}


def bearer_token(header: str | None) -> str | None:
    if header and header[:7].lower() == "bearer ":
        return header[7:].strip()
    return None


async def authenticate_token(services: Services, token: str, *, ip: str | None,
                             user_agent: str | None) -> Accountability:
    """The caller a credential sent inside an open stream names (a WebSocket
    ``auth`` message, a GraphQL ``connection_init`` payload), checked as a Bearer
    header would be: a bad or expired one raises (401), never anonymous."""
    headers = {"Authorization": f"Bearer {token}"}
    if user_agent:
        headers["User-Agent"] = user_agent
    return await services.authenticate(headers=headers, cookies={}, method="GET", ip=ip)
