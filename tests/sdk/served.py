"""Helpers of the client tests: a real ``workeros serve`` per database dialect,
shared by the tests of a module, and the Node toolchain for JavaScript clients."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from workeros.sdk.testing import ServerProcess, create_pg_database, drop_pg_database, require_postgres

NODE_DIR = Path(__file__).resolve().parents[1] / "sdk_node"
ACCESS_TOKEN_TTL = 3


DIALECTS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@contextmanager
def serving(dialect: str, data_dir: Path, extra_env: dict[str, str] | None = None) -> Iterator[ServerProcess]:
    """``workeros serve`` on a fresh database of ``dialect``, with short-lived
    access tokens (so token expiry happens inside a test)."""
    url = None
    if dialect == "postgres":
        asyncio.run(require_postgres())
        url = asyncio.run(create_pg_database())
    env = {"WORKEROS_AUTH_ACCESS_TOKEN_TTL": str(ACCESS_TOKEN_TTL), "WORKEROS_RATELIMIT_ENABLED": "0",
           "WORKEROS_AUTH_PASSWORD_ARGON2_TIME_COST": "1", "WORKEROS_AUTH_PASSWORD_ARGON2_MEMORY_KIB": "8192",
           **(extra_env or {})}
    server = ServerProcess(data_dir=data_dir, database_url=url, env=env, startup_timeout=120)
    try:
        with server:
            server.dialect = dialect  # type: ignore[attr-defined]
            yield server
    finally:
        if url is not None:
            asyncio.run(drop_pg_database(url))


@pytest.fixture(scope="module", params=DIALECTS)
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """``workeros serve`` on a fresh database of the parameter's dialect."""
    with serving(request.param, tmp_path_factory.mktemp(f"served-{request.param}")) as server:
        yield server


def node_ready() -> Path:
    """The Node test folder with its dependencies installed (``npm ci`` when
    ``node_modules`` is missing); skips when Node is not installed."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are needed for the JavaScript client tests")
    if not (NODE_DIR / "node_modules" / "@directus" / "sdk").is_dir():
        done = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
    return NODE_DIR


def call(server: ServerProcess, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
    """One JSON call on the server; the ``data`` of the answer."""
    request = urllib.request.Request(server.url + path, method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json",
                                              **({"Authorization": f"Bearer {token}"} if token else {})})
    with urllib.request.urlopen(request, timeout=30) as response:
        raw = response.read()
    return json.loads(raw)["data"] if raw else None
