"""A cheap password hash, a real SMTP server and a public URL for these tests."""

from __future__ import annotations

from typing import Any

import pytest

PASSWORD = "correct horse 42"


@pytest.fixture
def wos_settings_overrides(smtp_inbox: Any) -> dict[str, Any]:
    return {"auth.password.argon2_time_cost": 1, "auth.password.argon2_memory_kib": 1024,
            **smtp_inbox.settings(), "server.public_url": "http://wos.test"}


@pytest.fixture
def password() -> str:
    return PASSWORD


@pytest.fixture
def sign_up(api: Any) -> Any:
    async def run(email: str, password: str = PASSWORD) -> Any:
        r = await api.anonymous().post("/api/auth/sign-up", json={"email": email, "password": password})
        assert r.status == 201, r
        return r.data

    return run
