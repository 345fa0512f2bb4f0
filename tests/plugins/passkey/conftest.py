"""Passkeys against a software authenticator (soft-webauthn), ``server.public_url``
http://wos.test as the relying party."""

from __future__ import annotations

from typing import Any

import pytest

from tests.accounts_setup import FAST_HASH, password, sign_up  # noqa: F401


@pytest.fixture
def wos_settings_overrides() -> dict[str, Any]:
    return {**FAST_HASH, "server.public_url": "http://wos.test"}
