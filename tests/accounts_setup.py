"""Fixtures for tests that sign people in: a cheap argon2 cost (the policy, not
the cost, is under test), a real SMTP server and a public URL for mailed links,
``password`` and ``sign_up``. A folder's conftest imports them::

    from tests.accounts_setup import make_server, password, sign_up, wos_settings_overrides  # noqa: F401
"""

from __future__ import annotations

from typing import Any

import pytest

#: Cheap argon2id parameters for tests; production defaults are far higher.
FAST_HASH = {"auth.password.argon2_time_cost": 1, "auth.password.argon2_memory_kib": 1024}
PASSWORD = "correct horse 42"


@pytest.fixture
def wos_settings_overrides(smtp_inbox: Any) -> dict[str, Any]:
    return {**FAST_HASH, **smtp_inbox.settings(), "server.public_url": "http://wos.test"}


@pytest.fixture
def password() -> str:
    return PASSWORD


@pytest.fixture
def sign_up(api: Any) -> Any:
    """``await sign_up(email, password=..., **fields)`` → the new user (asserts 201)."""

    async def run(email: str, password: str = PASSWORD, **extra: Any) -> Any:
        r = await api.anonymous().post("/api/auth/sign-up", json={"email": email, "password": password, **extra})
        assert r.status == 201, r
        return r.data

    return run


@pytest.fixture
def make_server(make_server: Any) -> Any:
    """Servers with the cheap password hash (overrides win over the settings)."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def run(*extra: Any, **overrides: Any) -> Any:
        fast = {k.replace(".", "__"): v for k, v in FAST_HASH.items()}
        async with make_server(*extra, **{**fast, **overrides}) as server:
            yield server

    return run
