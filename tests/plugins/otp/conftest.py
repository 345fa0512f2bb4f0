"""Signing in with a cheap password hash, a real SMTP server and a public URL
(see tests/accounts_setup.py)."""

from tests.accounts_setup import make_server, password, sign_up, wos_settings_overrides  # noqa: F401
