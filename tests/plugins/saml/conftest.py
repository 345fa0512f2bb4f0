"""A test identity provider (saml_idp.py) on loopback, configured as ``test``."""

from __future__ import annotations

from typing import Any

import pytest

from tests.accounts_setup import FAST_HASH, make_server, password, sign_up  # noqa: F401
from tests.plugins.saml.saml_idp import TestIdP

PUBLIC = "http://wos.test"
SP_ENTITY = f"{PUBLIC}/api/auth/saml/test/metadata"
ACS = f"{PUBLIC}/api/auth/saml/test/acs"


@pytest.fixture
async def idp() -> Any:
    server = TestIdP(sp_entity_id=SP_ENTITY, acs_url=ACS)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def idp_config(idp: TestIdP, **extra: Any) -> dict[str, Any]:
    return {"entity_id": idp.entity_id, "sso_url": f"{idp.url}/sso", "x509cert": idp.cert_pem.decode(),
            "label": "Test IdP", **extra}


@pytest.fixture
def wos_settings_overrides(idp: TestIdP) -> dict[str, Any]:
    return {**FAST_HASH, "server.public_url": PUBLIC, "saml.idps": {"test": idp_config(idp)},
            "saml.redirect_allowlist": ["https://app.example.org/"]}
