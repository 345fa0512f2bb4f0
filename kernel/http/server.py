"""``workeros serve``: one aiohttp process, or N workers sharing the port.

SIGTERM shuts down gracefully: the listening socket closes, in-flight requests get
``server.shutdown_timeout`` seconds to finish, then connections close and the
cleanup contexts (database, bus) tear down.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

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
    loop = asyncio.new_event_loop()
    _handle_signals_once(loop)
    try:
        _run(settings, plugins, loop, host, port, reuse_port)
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
            reason = {errno.EADDRINUSE: "is already in use (another server is listening there?)",
                      errno.EACCES: "needs privileges this user does not have",
                      errno.EADDRNOTAVAIL: "is not an address of this machine"}[exc.errno]
            raise StartupError(f"cannot listen on {host}:{port}: the address {reason}; "
                               "choose another with --port / --host or WORKEROS_SERVER_PORT") from None
        raise
    return 0


def _run(settings: Settings, plugins: Plugins, loop: asyncio.AbstractEventLoop, host: str, port: int,
         reuse_port: bool) -> None:
    from workeros.http.app import create_app

    web.run_app(
        create_app(settings, plugins=plugins),
        loop=loop,
        handle_signals=False,
        host=host,
        port=port,
        shutdown_timeout=settings["server.shutdown_timeout"],
        access_log=logging.getLogger("workeros.access") if settings["log.access"] else None,
        access_log_class=AccessLogger,
        reuse_port=reuse_port or None,
        print=None,
    )


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
    env = {**os.environ, "WORKEROS_DATABASE_MIGRATE_ON_START": "0"}
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
