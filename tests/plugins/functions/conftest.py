from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from callers import Api, TestCallers

from workeros.http.keys import SERVICES


@pytest.fixture
def booted(make_server: Callable[..., Any]) -> Callable[..., Any]:
    """``async with booted(**settings) as (admin, services, client):`` an app on
    the test's dialect and an admin :class:`Api` on it."""

    @asynccontextmanager
    async def run(*plugins: Any, **settings: Any) -> AsyncIterator[tuple[Api, Any, TestClient]]:
        async with make_server(TestCallers(), *plugins, **settings) as server, TestClient(server) as client:
            yield Api(client).as_admin(), server.app[SERVICES], client

    return run

