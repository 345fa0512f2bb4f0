"""SCIM provisioning with its own bearer token; group "Editors" maps to the role
named "editor"."""

from __future__ import annotations

from typing import Any

import pytest

from tests.accounts_setup import FAST_HASH, password, sign_up  # noqa: F401

SCIM_TOKEN = "scim-test-token-0123456789abcdef"


@pytest.fixture
def wos_settings_overrides() -> dict[str, Any]:
    return {**FAST_HASH, "server.public_url": "http://wos.test", "scim.token": SCIM_TOKEN,
            "scim.group_roles": {"Editors": "editor"}}
