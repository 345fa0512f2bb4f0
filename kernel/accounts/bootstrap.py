"""First start of a server: the first admin from the environment, and a
warning when a fresh instance is reachable from other machines with open
sign-up (whoever signs up first becomes admin)."""

from __future__ import annotations

import ipaddress
import logging
from typing import TYPE_CHECKING

import sqlalchemy as sa

from workeros.accountability import Accountability
from workeros.db.tables.accounts import users
from workeros.errors import Conflict, StartupError, WorkerosError
from workeros.hookspecs.lifecycle import ConfigKey

if TYPE_CHECKING:
    from workeros.services import Services

log = logging.getLogger("workeros.accounts")

BOOTSTRAP_KEYS: tuple[ConfigKey, ...] = (
    ConfigKey("admin.email", "str", None,
              "Email of an admin created when the server starts, if no account has it yet "
              "(WORKEROS_ADMIN_EMAIL; with admin.password)"),
    ConfigKey("admin.password", "str", None, "Password of that admin (WORKEROS_ADMIN_PASSWORD; used only to "
              "create it, never to change an existing account)", secret=True),
)


async def ensure_admin(services: Services) -> str | None:
    """Create the admin named by ``admin.email``/``admin.password`` unless an
    account with that email exists (idempotent; several workers or instances
    starting at once create it once). Returns the new user's id, or None."""
    settings = services.settings
    email, password = settings.get("admin.email"), settings.get("admin.password")
    if not email and not password:
        return None
    if not email or not password:
        raise StartupError("admin.email and admin.password (WORKEROS_ADMIN_EMAIL, WORKEROS_ADMIN_PASSWORD) "
                           "must be set together")
    accounts = services.accounts
    if accounts is None:
        raise StartupError("admin.email is set but no accounts service is installed")
    existing = await accounts.find_user(email)
    if existing is not None:
        return None
    acc = Accountability.system().with_origin("bootstrap")
    try:
        user = await accounts.create_user(acc, {"email": email, "password": password, "role": "admin"})
    except Conflict:
        return None  # another worker or instance created it first
    except WorkerosError as exc:
        raise StartupError(f"cannot create the admin from admin.email/admin.password: {exc.message}") from None
    log.info("created admin %s from admin.email", user["email"])
    return str(user["id"])


def is_loopback(host: str) -> bool:
    """Whether ``server.host`` is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


async def warn_if_exposed(services: Services) -> bool:
    """Log a warning when serving beyond this machine with open sign-up and no
    account yet: the first visitor to sign up would become admin."""
    settings = services.settings
    host = str(settings["server.host"])
    if is_loopback(host) or settings.get("auth.sign_up") != "open" or services.accounts is None:
        return False
    async with services.db.read() as conn:
        count = (await conn.execute(sa.select(sa.func.count()).select_from(users))).scalar_one()
    if count:
        return False
    log.warning("serving on %s with auth.sign_up = open and no account yet: whoever signs up first becomes "
                "admin. Set WORKEROS_ADMIN_EMAIL and WORKEROS_ADMIN_PASSWORD, or run 'workeros create-user "
                "--admin', or set auth.sign_up = invite or closed", host)
    return True
