"""One tartiflette engine per (schema version, permissions version, role),
built once, shared by concurrent requests, kept in a small LRU cache.

A schema or permission change makes the old engines unreachable: they are
dropped from the cache and from tartiflette's schema registry (which would
otherwise keep every schema ever built). The engines of the ``admin`` and
``public`` roles are rebuilt in the background once changes heard on the event
bus pause (``SETTLE_S``), so the first request after a change rarely waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import logging
import time
from collections import OrderedDict
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from workeros.api import PERMISSIONS, SCHEMA, Accountability, WorkerosError

from .sdl import Built, RoleRules, build_sdl

# tartiflette (its parsers, lark, the C parser through cffi) is imported by the
# first schema build, not at start: a server that never answers GraphQL never
# loads it.
if TYPE_CHECKING:
    from workeros.api import Services

    from .resolve import Resolver

log = logging.getLogger("workeros.graphql")
_names = itertools.count(1)
#: Quiet time after a schema or permission change before the background rebuild.
SETTLE_S = 0.05


_paused = 0


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """A build allocates a few hundred thousand long-lived objects; each of
    them would count towards Python's cyclic collector, which then walks the
    whole process heap several times over — about three quarters of a build's
    time in a running server. The collector waits for the build (nested builds
    share one pause) and runs as usual afterwards."""
    global _paused
    if _paused == 0 and not gc.isenabled():
        yield  # switched off by someone else: leave it so
        return
    _paused += 1
    gc.disable()
    try:
        yield
    finally:
        _paused -= 1
        if _paused == 0:
            gc.enable()


class _JSON:
    def coerce_output(self, value: Any) -> Any:
        return value

    def coerce_input(self, value: Any) -> Any:
        return value

    def parse_literal(self, ast: Any) -> Any:
        from .resolve import value_from_ast

        return value_from_ast(ast, {})


class _BigInt(_JSON):
    def coerce_input(self, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise TypeError("BigInt takes an integer or a string of digits")
        return int(value)


class Entry:
    def __init__(self, engine: Any, built: Built, name: str, seconds: float, *, admin: bool,
                 role_names: frozenset[str], resolver: Resolver) -> None:
        self.engine = engine
        self.built = built
        self.name = name
        self.seconds = seconds
        #: The role's id and name, matched against ``graphql.introspection_roles``.
        self.role_names = role_names
        self.admin = admin
        self.resolver = resolver
        #: (query, operation name) -> the plain plan of direct.py, or None
        self.plans: dict[tuple[str, str | None], Any] = {}


class Engines:
    def __init__(self, services: Services, *, size: int = 16, realtime: bool = True) -> None:
        self.services = services
        self.size = size
        #: Whether schemas have a Subscription type (the runtime holds streams).
        self.realtime = realtime
        self.cache: OrderedDict[tuple, Entry] = OrderedDict()
        self.pending: dict[tuple, asyncio.Future[Entry]] = {}
        self.permissions_version = 0
        self.builds = 0
        self._unsubscribe: list[Any] = []
        self._background: set[asyncio.Task[Any]] = set()
        self._refresh: asyncio.Task[None] | None = None
        self._extensions: list[Any] | None = None

    def start(self) -> None:
        events = self.services.events
        self._unsubscribe = [events.subscribe(SCHEMA, self._on_change),
                             events.subscribe(PERMISSIONS, self._on_permissions)]

    async def close(self) -> None:
        for stop in self._unsubscribe:
            stop()
        background = list(self._background)
        for task in background:
            task.cancel()
        # Wait for them: a build cancelled mid-read must finish unwinding before the
        # database closes, or it is left pending on a closed loop.
        await asyncio.gather(*background, return_exceptions=True)
        for key in list(self.cache):
            self._drop(key)

    # -- keys ---------------------------------------------------------------------------
    def key(self, acc: Accountability) -> tuple:
        version = self.services.schema.current().version
        return (version, self.permissions_version, "admin" if acc.admin else acc.role)

    async def _on_change(self, _: Any = None) -> None:
        self._evict_stale()
        if self._refresh is None:
            self._refresh = asyncio.create_task(self._refresh_when_settled())
            self._background.add(self._refresh)
            self._refresh.add_done_callback(self._background.discard)

    async def settled(self) -> None:
        """Wait until no background rebuild is pending (tests, benchmarks)."""
        while self._refresh is not None:
            await asyncio.wait({self._refresh})

    def _versions(self) -> tuple:
        return self.services.schema.current().version, self.permissions_version

    async def _refresh_when_settled(self) -> None:
        """Build the admin's and public's engines once changes stop arriving for
        ``SETTLE_S``: a burst of changes (a snapshot applied, a script creating
        200 collections) costs one build per burst, not one per change."""
        try:
            while True:
                versions = self._versions()
                await asyncio.sleep(SETTLE_S)
                if self._versions() != versions:
                    continue
                results = await asyncio.gather(*(self.get(acc) for acc in (
                    Accountability.system(), Accountability.anonymous())), return_exceptions=True)
                for result in results:
                    if isinstance(result, Exception):
                        log.warning("GraphQL schema rebuild failed: %s", result)
                if self._versions() == versions:
                    return
        finally:
            self._refresh = None

    async def _on_permissions(self, _: Any = None) -> None:
        self.permissions_version += 1
        await self._on_change()

    def _evict_stale(self) -> None:
        version = self.services.schema.current().version
        for key in [k for k in self.cache if k[0] != version or k[1] != self.permissions_version]:
            self._drop(key)

    def _drop(self, key: tuple) -> None:
        entry = self.cache.pop(key, None)
        if entry is not None:
            from tartiflette.schema.registry import SchemaRegistry

            SchemaRegistry._schemas.pop(entry.name, None)

    # -- getting an engine -----------------------------------------------------------------
    async def get(self, acc: Accountability) -> Entry:
        key = self.key(acc)
        entry = self.cache.get(key)
        if entry is not None:
            self.cache.move_to_end(key)
            return entry
        future = self.pending.get(key)
        if future is None:
            future = asyncio.get_running_loop().create_future()
            self.pending[key] = future
            try:
                entry = await self._build(acc)
            except asyncio.CancelledError:
                future.cancel()  # waiters see the build cancelled, not a TypeError
                raise
            except BaseException as exc:
                future.set_exception(exc)
                future.exception()  # retrieved: waiters re-raise it
                raise
            finally:
                self.pending.pop(key, None)
            if key[0] == self.services.schema.current().version and key[1] == self.permissions_version:
                self.cache[key] = entry
                while len(self.cache) > self.size:
                    self._drop(next(iter(self.cache)))
            future.set_result(entry)
            return entry
        return await asyncio.shield(future)

    def extensions(self) -> list[Any]:
        """Root query fields other plugins add (``workeros_register_graphql_queries``)."""
        if self._extensions is None:
            self._extensions = [q for _, entries in self.services.plugins.collect("workeros_register_graphql_queries")
                                for q in entries or ()]
        return self._extensions

    async def rules(self, acc: Accountability) -> RoleRules:
        schema = self.services.schema.current()
        if acc.admin:
            everything = {name: None for name in schema.collections}
            return RoleRules(read=everything, create=everything, update=everything, delete=everything)
        permissions = self.services.permissions
        out: dict[str, dict[str, Any]] = {"read": {}, "create": {}, "update": {}, "delete": {}}
        if permissions is None:
            return RoleRules(read={})
        for name in schema.collections:
            for action in out:
                rule = await permissions.rule(acc, name, action)
                if rule is not None:
                    out[action][name] = None if rule.fields is None else frozenset(rule.fields)
        return RoleRules(**out)

    async def _build(self, acc: Accountability) -> Entry:
        from tartiflette import Scalar, create_engine
        from tartiflette.schema.registry import SchemaRegistry

        from . import document, subscriptions
        from .resolve import Resolver, error_coercer

        document.install()
        start = time.perf_counter()
        schema = self.services.schema.current()
        built = build_sdl(schema, await self.rules(acc), subscriptions=self.realtime,
                          extensions=self.extensions())
        name = f"workeros_{next(_names)}"
        Scalar("JSON", schema_name=name)(_JSON)
        Scalar("BigInt", schema_name=name)(_BigInt)
        subscriptions.register(built, name)
        resolver = Resolver(built)
        # tartiflette's SDL parser would take nearly all of the build; ours reads
        # the SDL build_sdl wrote (its blocks are separated by blank lines).
        try:
            with _collector_paused():
                document.prepared(name, built.sdl, document.read(built.sdl.split("\n\n")))
                # Resolving field by field in order: a task per field and per list
                # item (tartiflette's default) costs more than the fields themselves,
                # which are read from rows already loaded.
                engine = await create_engine(built.sdl, schema_name=name, custom_default_resolver=resolver,
                                             error_coercer=error_coercer, coerce_list_concurrently=False,
                                             coerce_parent_concurrently=False)
        except Exception:
            SchemaRegistry._schemas.pop(name, None)
            raise
        finally:
            document.forget(name)
        self.builds += 1
        seconds = time.perf_counter() - start
        log.info("GraphQL schema for %s built in %.3fs", "admin" if acc.admin else acc.role, seconds)
        return Entry(engine, built, name, seconds, admin=acc.admin, role_names=await self._role_names(acc),
                     resolver=resolver)

    async def _role_names(self, acc: Accountability) -> frozenset[str]:
        names: set[str] = set()
        if acc.role and not acc.admin:
            names.add(acc.role)
            try:
                role = await self.services.permissions.get_role(Accountability.system(), acc.role)
            except WorkerosError:
                role = {}
            if isinstance(role.get("name"), str):
                names.add(role["name"])
        return frozenset(names)
