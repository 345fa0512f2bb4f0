"""``workeros serve``: one aiohttp process, or N workers sharing the port.

SIGTERM shuts down gracefully: the listening socket closes, in-flight requests get
``server.shutdown_timeout`` seconds to finish, then connections close and the
cleanup contexts (database, bus) tear down.

Connections are guarded (:class:`ConnectionGuard`): a new connection has
``server.header_timeout`` seconds to send its first request's headers (a
client trickling a header byte at a time is closed, not held), at most
``server.max_connections`` are open at once (the next is answered 503 and
closed), and when ``accept()`` fails because the process is out of file
descriptors one line is logged per ``server.accept_error_log_interval``, not
a traceback per attempt.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, cast

from aiohttp import web

from workeros.config import Settings
from workeros.errors import StartupError
from workeros.http.access_log import AccessLogger
from workeros.plugins import Plugins

log = logging.getLogger("workeros.server")


def serve(settings: Settings, plugins: Plugins, *, reuse_port: bool = False) -> int:
    Path(settings["data_dir"]).mkdir(parents=True, exist_ok=True)
    workers = settings["server.workers"]
    if workers > 1:
        return _supervise(settings, plugins, workers)
    host, port = settings["server.host"], settings["server.port"]
    log.info("workeros starting on http://%s:%s (database: %s)", host, port, settings["database.url"].split("://")[0])
    loop = new_event_loop(settings)
    _handle_signals_once(loop)
    AcceptErrors(float(settings["server.accept_error_log_interval"])).install(loop)
    main = loop.create_task(_run(settings, plugins, reuse_port=reuse_port))
    supervisor = os.environ.get(SUPERVISOR_ENV)
    if supervisor and supervisor.isdigit():
        loop.create_task(_exit_with_supervisor(int(supervisor)))
    try:
        loop.run_until_complete(main)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
            reason = {errno.EADDRINUSE: "is already in use (another server is listening there?)",
                      errno.EACCES: "needs privileges this user does not have",
                      errno.EADDRNOTAVAIL: "is not an address of this machine"}[exc.errno]
            raise StartupError(f"cannot listen on {host}:{port}: the address {reason}; "
                               "choose another with --port / --host or WORKEROS_SERVER_PORT") from None
        raise
    finally:
        main.cancel()
        loop.run_until_complete(asyncio.gather(main, return_exceptions=True))
        rest = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in rest:
            task.cancel()
        if rest:
            loop.run_until_complete(asyncio.gather(*rest, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
    return 0


def new_event_loop(settings: Settings) -> asyncio.AbstractEventLoop:
    """The event loop ``server.event_loop`` names: asyncio's own (the default),
    uvloop, or uvloop where installed (``auto``). uvloop's transports and timers
    cut the per-request cost of the network side, but it reports a failed
    ``accept()`` its own way, past :class:`AcceptErrors`."""
    choice = settings["server.event_loop"]
    if choice != "asyncio":
        try:
            import uvloop
        except ImportError:
            if choice == "uvloop":
                raise StartupError("server.event_loop = uvloop, but uvloop is not installed") from None
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


#: Set by ``serve --workers N`` for its workers: the supervisor's process id.
SUPERVISOR_ENV = "WORKEROS_SUPERVISOR_PID"


async def _exit_with_supervisor(supervisor: int, every: float = 1.0) -> None:
    """A worker whose supervisor is gone (killed with SIGKILL, crashed: its
    signals never come) shuts down gracefully instead of serving on alone."""
    while os.getppid() == supervisor:
        await asyncio.sleep(every)
    log.warning("the supervisor (process %s) is gone; shutting down", supervisor)
    os.kill(os.getpid(), signal.SIGTERM)


async def _run(settings: Settings, plugins: Plugins, *, reuse_port: bool) -> None:
    """Serve until cancelled (a signal ends the loop), then shut down gracefully."""
    from workeros.http.app import create_app

    runner = GuardedRunner(
        await create_app(settings, plugins=plugins),
        handle_signals=False,
        shutdown_timeout=settings["server.shutdown_timeout"],
        access_log=logging.getLogger("workeros.access") if settings["log.access"] else None,
        access_log_class=AccessLogger,
        header_timeout=float(settings["server.header_timeout"]),
        max_connections=int(settings["server.max_connections"]),
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings["server.host"], settings["server.port"], reuse_port=reuse_port or None)
        await site.start()
        settle_heap()
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


#: Allocations (net of frees) between two youngest-generation collections of the
#: cyclic garbage collector (Python's default is 700).
GC_THRESHOLD = 10_000


def settle_heap() -> None:
    """Once the server is up: what startup built (modules, the schema, SQL
    metadata, plugins — most of the heap) lives as long as the process, so it is
    moved out of the cyclic garbage collector's sight (``gc.freeze``), and the
    youngest generation is collected less often. A full collection then walks
    only what requests and connections made since, instead of pausing the event
    loop for the whole heap while, say, an event fans out to thousands of
    streams."""
    gc.collect()
    gc.freeze()
    _, second, third = gc.get_threshold()
    gc.set_threshold(max(GC_THRESHOLD, gc.get_threshold()[0]), second, third)


class GuardedRunner(web.AppRunner):
    """An :class:`aiohttp.web.AppRunner` whose connections go through a
    :class:`ConnectionGuard`."""

    def __init__(self, app: web.Application, *, header_timeout: float, max_connections: int, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._guard_options = {"header_timeout": header_timeout, "max_connections": max_connections}

    async def _make_server(self) -> Any:
        return ConnectionGuard(await super()._make_server(), **self._guard_options)


class ConnectionGuard:
    """The protocol factory the listening socket uses: aiohttp's, with a
    header-read deadline per new connection and a cap on open connections.
    Everything else (shutdown, the list of connections) is aiohttp's server's."""

    def __init__(self, server: Any, *, header_timeout: float, max_connections: int) -> None:
        self.server = server
        self.header_timeout = header_timeout
        self.max_connections = max_connections
        self.open = 0
        self.refused = 0
        self.timed_out = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.server, name)

    def __call__(self) -> asyncio.Protocol:
        if self.max_connections and self.open >= self.max_connections:
            self.refused += 1
            return _Refuse()
        return _Guarded(self, self.server())


_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
         b"Retry-After: 1\r\nContent-Length: 91\r\n\r\n"
         b'{"errors":[{"message":"Too many connections","extensions":{"code":"SERVICE_UNAVAILABLE"}}]}')
_HEAD_END = b"\r\n\r\n"


class _Refuse(asyncio.Protocol):
    """Over the connection cap: answer 503 and close."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (uvloop's transports are not asyncio.Transport subclasses, only alike.)
        transport = cast(asyncio.Transport, transport)
        transport.write(_BUSY)
        transport.close()


class _Guarded(asyncio.Protocol):
    """aiohttp's protocol for one connection, closed unless the first
    request's headers are complete within the header timeout."""

    def __init__(self, guard: ConnectionGuard, inner: Any) -> None:
        self.guard = guard
        self.inner = inner
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.tail = b""
        self.counted = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.guard.open += 1
        self.counted = True
        if self.guard.header_timeout > 0:
            self.timer = asyncio.get_running_loop().call_later(self.guard.header_timeout, self._too_slow)
        self.inner.connection_made(transport)

    def _too_slow(self) -> None:
        self.timer = None
        self.guard.timed_out += 1
        if self.transport is not None:
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        if self.timer is not None:
            seen = self.tail + data
            if _HEAD_END in seen:
                self.timer.cancel()
                self.timer = None
            else:
                self.tail = seen[-3:]
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.counted:
            self.counted = False
            self.guard.open -= 1
        self.inner.connection_lost(exc)


class AcceptErrors:
    """The event loop's exception handler for a server out of file
    descriptors: asyncio reports every failed ``accept()`` with a traceback
    (it retries each second per listening socket, and every worker does); this
    logs one line per ``interval`` with how many failed since, and passes
    anything else to the default handler."""

    RESOURCE = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.last = float("-inf")
        self.suppressed = 0

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.set_exception_handler(self)

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in self.RESOURCE and "accept" in str(context.get("message", "")):
            now = time.monotonic()
            if now - self.last < self.interval:
                self.suppressed += 1
                return
            self.last = now
            more = f" ({self.suppressed} more since the last report)" if self.suppressed else ""
            self.suppressed = 0
            log.error("cannot accept connections: %s; raise the open-file limit (ulimit -n) or lower "
                      "server.max_connections%s", os.strerror(exc.errno or 0), more)
            return
        loop.default_exception_handler(context)


def _handle_signals_once(loop: asyncio.AbstractEventLoop) -> None:
    """SIGTERM/SIGINT start a graceful shutdown; a repeated signal while it runs is
    ignored, so a supervisor that signals twice cannot break the teardown."""
    state = {"stopping": False}

    def stop(signum: int) -> None:
        if state["stopping"]:
            log.info("already shutting down (signal %s ignored)", signum)
            return
        state["stopping"] = True
        log.info("shutting down gracefully (signal %s)", signum)
        raise web.GracefulExit()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop, signum)


def _supervise(settings: Settings, plugins: Plugins, workers: int) -> int:
    """Run migrations once, then start ``workers`` processes on one port
    (SO_REUSEPORT) and forward SIGTERM/SIGINT to them."""
    asyncio.run(_migrate_once(settings, plugins))
    env = {**os.environ, "WORKEROS_DATABASE_MIGRATE_ON_START": "0", SUPERVISOR_ENV: str(os.getpid())}
    argv = [sys.executable, "-m", "workeros"]
    for flag, key in (("--config", "config"), ("--data-dir", "data_dir"), ("--plugins-dir", "plugins_dir")):
        if settings[key] is not None:
            argv += [flag, str(settings[key])]
    argv += ["serve", "--workers", "1", "--reuse-port", "--host", settings["server.host"],
             "--port", str(settings["server.port"]), "--database-url", settings["database.url"]]
    children = [subprocess.Popen(argv, env=env) for _ in range(workers)]

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    codes = [child.wait() for child in children]
    return max(codes, default=0)


async def _migrate_once(settings: Settings, plugins: Plugins) -> None:
    from workeros.db import migrate
    from workeros.http.app import prepare
    from workeros.plugins import await_me_maybe

    plugins, registry = prepare(settings, plugins)
    if not settings["database.migrate_on_start"]:
        return
    db = await await_me_maybe(registry.get("db").factory(settings["database.url"], settings))
    try:
        await migrate.upgrade(db, plugins=plugins)
    finally:
        await db.close()
