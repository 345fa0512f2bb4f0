"""Instances on a database URL of the test's choosing, for tests that move a
schema (or a whole archive) from one instance to another, across dialects."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from callers import Api, TestCallers

from tests.conftest import FIRST_PARTY
from workeros.sdk.testing import create_pg_database, drop_pg_database, require_postgres

DIALECT_PAIRS = [
    pytest.param(("sqlite", "postgres"), id="sqlite-to-postgres", marks=pytest.mark.postgres),
    pytest.param(("postgres", "sqlite"), id="postgres-to-sqlite", marks=pytest.mark.postgres),
]


def instance_settings(url: str, data_dir: Path) -> Any:
    from workeros.config import Settings

    data_dir.mkdir(parents=True, exist_ok=True)
    return Settings(env={}, cli={"data_dir": str(data_dir), "database.url": url, "database.pool_size": 5,
                                 "log.access": False, "load_plugins": FIRST_PARTY})


@asynccontextmanager
async def running(url: str, data_dir: Path) -> AsyncIterator[Api]:
    """The app on ``url``, and an anonymous :class:`Api` on it (``.services``
    holds the app's services)."""
    from aiohttp.test_utils import TestClient, TestServer

    from workeros.http.app import create_app
    from workeros.http.keys import SERVICES
    from workeros.plugins import Plugins

    settings = instance_settings(url, data_dir)
    plugins = Plugins(load=settings["load_plugins"], disable=(), strict=False, plugins_dir=None)
    plugins.load_all()
    plugins.register(TestCallers(), name="test-callers", distribution="test-fixtures")
    server = TestServer(await create_app(settings, plugins=plugins))
    async with TestClient(server) as client:
        api = Api(client)
        api.services = server.app[SERVICES]  # type: ignore[attr-defined]
        yield api


@pytest.fixture
async def make_url(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """``await make_url("sqlite" | "postgres", name)``: the URL of a fresh, empty
    database (PostgreSQL databases are dropped after the test)."""
    created: list[str] = []

    async def make(dialect: str, name: str) -> str:
        if dialect == "sqlite":
            return f"sqlite:///{tmp_path / f'{name}.db'}"
        await require_postgres()
        url = await create_pg_database()
        created.append(url)
        return url

    try:
        yield make
    finally:
        for url in created:
            await drop_pg_database(url)
