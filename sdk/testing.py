"""pytest plugin for workeros and plugin authors (loaded through ``pytest11``).

Fixtures (async ones need pytest-asyncio, ``asyncio_mode = "auto"``):

``wos_dialect``
    ``"sqlite"`` or ``"postgres"``: every test using a database runs on both. The
    PostgreSQL case carries the ``postgres`` marker and is skipped, with the reason
    shown, when no server answers at ``WOS_TEST_PG_URL`` (default
    ``postgresql://postgres@127.0.0.1:5432/postgres``). With
    ``WOS_TEST_REQUIRE_POSTGRES=1`` (CI) an absent server fails instead.
``wos_database_url``
    A fresh, empty database for the test: a file in ``tmp_path`` for SQLite, a new
    database (dropped afterwards) for PostgreSQL.
``wos_load_plugins``
    Entry-point plugin names to load (``None`` = every installed one). Override it
    in your ``conftest.py`` to keep unrelated installed plugins out.
``wos_settings_overrides``
    Extra settings as ``{"dotted.name": value}``; override to configure plugins.
``wos_settings``, ``wos_server``, ``wos_app``, ``wos_client``, ``wos_services``
    The settings, a running aiohttp ``TestServer`` (startup ran, services are
    open), its app, a ``TestClient`` on it, and the app's services.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
_pg_state: dict[str, Any] = {}


def pg_admin_url() -> str:
    return os.environ.get("WOS_TEST_PG_URL", DEFAULT_PG_URL)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "postgres: needs a PostgreSQL server")


async def _pg_unavailable_reason() -> str | None:
    if "reason" in _pg_state:
        return _pg_state["reason"]
    try:
        import asyncpg
    except ImportError:
        reason: str | None = "asyncpg is not installed"
    else:
        try:
            conn = await asyncio.wait_for(asyncpg.connect(_asyncpg_dsn(pg_admin_url())), timeout=5)
            await conn.close()
            reason = None
        except Exception as exc:  # any failure to connect means "no server here"
            reason = f"no PostgreSQL server answers at {_hide_password(pg_admin_url())} ({type(exc).__name__}: {exc})"
    _pg_state["reason"] = reason
    return reason


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def _hide_password(url: str) -> str:
    from workeros.config import mask_url

    return mask_url(url)


def _quote(name: str) -> str:
    from sqlalchemy.dialects import postgresql

    return postgresql.dialect().identifier_preparer.quote(name)


async def create_pg_database() -> str:
    """Create an empty database; return its URL."""
    import asyncpg

    name = "wos_t_" + uuid.uuid4().hex[:16]
    conn = await asyncpg.connect(_asyncpg_dsn(pg_admin_url()))
    try:
        await conn.execute("CREATE DATABASE " + _quote(name))
    finally:
        await conn.close()
    base, _, _ = pg_admin_url().rpartition("/")
    return f"{base}/{name}"


async def drop_pg_database(url: str) -> None:
    import asyncpg

    name = url.rpartition("/")[2]
    conn = await asyncpg.connect(_asyncpg_dsn(pg_admin_url()))
    try:
        await conn.execute("DROP DATABASE IF EXISTS " + _quote(name) + " WITH (FORCE)")
    finally:
        await conn.close()


async def require_postgres() -> None:
    reason = await _pg_unavailable_reason()
    if reason is not None:
        if os.environ.get("WOS_TEST_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required here: {reason}")
        pytest.skip(reason)


@pytest.fixture(params=[pytest.param("sqlite"), pytest.param("postgres", marks=pytest.mark.postgres)])
def wos_dialect(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
async def wos_database_url(wos_dialect: str, tmp_path: Path) -> AsyncIterator[str]:
    if wos_dialect == "sqlite":
        yield f"sqlite:///{tmp_path / 'data.db'}"
        return
    await require_postgres()
    url = await create_pg_database()
    try:
        yield url
    finally:
        await drop_pg_database(url)


@pytest.fixture
def wos_load_plugins() -> list[str] | None:
    return None


@pytest.fixture
def wos_settings_overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
def wos_settings(
    wos_database_url: str, tmp_path: Path, wos_load_plugins: list[str] | None, wos_settings_overrides: dict[str, Any]
) -> Any:
    from workeros.config import Settings

    cli: dict[str, Any] = {
        "data_dir": str(tmp_path),
        "database.url": wos_database_url,
        "database.pool_size": 5,
        "log.access": False,
        "load_plugins": wos_load_plugins,
    }
    cli.update(wos_settings_overrides)
    # The developer's own WORKEROS_* variables must not leak into tests.
    return Settings(env={}, cli=cli)


@pytest.fixture
async def wos_server(wos_settings: Any) -> AsyncIterator[Any]:
    """An aiohttp TestServer running the app (startup ran: services are open)."""
    from aiohttp.test_utils import TestServer

    from workeros.http.app import create_app

    server = TestServer(await create_app(wos_settings))
    await server.start_server()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
def wos_app(wos_server: Any) -> Any:
    return wos_server.app


@pytest.fixture
async def wos_client(wos_server: Any) -> AsyncIterator[Any]:
    """An aiohttp TestClient on ``wos_server``."""
    from aiohttp.test_utils import TestClient

    client = TestClient(wos_server)
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
def wos_services(wos_app: Any) -> Any:
    from workeros.http.keys import SERVICES

    return wos_app[SERVICES]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """``workeros serve`` in a child process, for tests that need a real server
    (signals, several instances, crashes)::

        with ServerProcess(data_dir=tmp_path, database_url=url) as server:
            requests.get(server.url + "/api/server/health")
    """

    def __init__(
        self,
        *,
        data_dir: str | Path,
        database_url: str | None = None,
        port: int | None = None,
        args: list[str] | None = None,
        env: dict[str, str] | None = None,
        startup_timeout: float = 30.0,
        python: str | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database_url = database_url
        self.args = args or []
        self.env = env or {}
        self.startup_timeout = startup_timeout
        self.python = python
        self.proc: Any = None
        self.log_path = self.data_dir / f"server-{self.port}.log"

    def start(self) -> ServerProcess:
        import subprocess
        import sys

        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = [self.python or sys.executable, "-m", "workeros", "--data-dir", str(self.data_dir), *self.args,
                "serve", "--port", str(self.port)]
        if self.database_url:
            argv += ["--database-url", self.database_url]
        env = {k: v for k, v in os.environ.items() if not k.startswith("WORKEROS_")}
        env.update({"WORKEROS_LOG_ACCESS": "0", **self.env})
        self._log = open(self.log_path, "ab")  # noqa: SIM115  (closed in stop)
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        self.wait_healthy()
        return self

    def wait_healthy(self) -> None:
        import time
        import urllib.request

        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + "/api/server/health", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"server not healthy after {self.startup_timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def terminate(self, timeout: float = 30.0) -> int:
        import signal

        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.terminate(timeout=15)
            except Exception:
                self.kill()
        if getattr(self, "_log", None) is not None:
            self._log.close()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
