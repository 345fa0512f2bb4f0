"""Signing in with a cheap password hash (see tests/accounts_setup.py) and an
MCP client — the ``mcp`` SDK's own, over streamable HTTP on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from tests.accounts_setup import make_server, password, sign_up, wos_settings_overrides  # noqa: F401


@asynccontextmanager
async def mcp_session(url: str, token: str | None) -> AsyncIterator[Any]:
    """An initialized ``mcp.ClientSession`` on ``url`` sending ``Bearer token``."""
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with create_mcp_http_client(headers=headers) as http, \
            streamable_http_client(url, http_client=http) as (read, write), \
            ClientSession(read, write) as session:
        await session.initialize()
        yield session


@pytest.fixture
def mcp_client(api: Any) -> Any:
    """``async with mcp_client(token, path="/mcp") as session:``."""

    def run(token: str | None, path: str = "/mcp") -> Any:
        return mcp_session(str(api.server.make_url(path)), token)

    return run
