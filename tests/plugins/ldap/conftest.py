"""A real OpenLDAP server (Debian's slapd) on loopback, one per test module,
with a temporary configuration and database (see slapd_server.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.accounts_setup import FAST_HASH, make_server, password, sign_up  # noqa: F401
from tests.plugins.ldap.slapd_server import Slapd, slapd_missing


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Any:
    reason = slapd_missing()
    if reason:
        pytest.skip(reason)
    server = Slapd(tmp_path_factory.mktemp("slapd"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def ldap_settings(slapd: Slapd) -> dict[str, Any]:
    """Search-then-bind with the read-only service account; groups from memberOf."""
    return {
        "ldap.url": slapd.url,
        "ldap.bind_dn": slapd.service_dn,
        "ldap.bind_password": slapd.service_password,
        "ldap.user_base_dn": f"ou=people,{slapd.suffix}",
        "ldap.disabled_filter": "(employeeType=disabled)",
        "ldap.timeout": 5.0,
    }


@pytest.fixture
def wos_settings_overrides(ldap_settings: dict[str, Any]) -> dict[str, Any]:
    return {**FAST_HASH, **ldap_settings}
