"""An OpenID Connect provider on loopback (``oidc_idp.py``), shared by the module,
and a workeros server whose ``oauth.providers`` point at it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from oidc_idp import TestIdP

from tests.accounts_setup import FAST_HASH, password, sign_up  # noqa: F401


@pytest.fixture(scope="module")
def idp() -> Iterator[TestIdP]:
    server = TestIdP().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def wos_settings_overrides(idp: TestIdP) -> dict[str, Any]:
    idp.misbehave = None
    return {**FAST_HASH, "server.public_url": "http://wos.test",
            "oauth.providers": {"test": idp.settings(), "hub": idp.github_settings(),
                                "groups": idp.settings(label="Groups IdP", role_claim="groups",
                                                       role_map={"wos-editors": "editor"}),
                                # nothing listens on the discard port: the provider is down
                                "down": {**idp.settings(), "issuer": "http://127.0.0.1:9"}},
            "oauth.redirect_allowlist": ["https://app.example.com/after"]}
