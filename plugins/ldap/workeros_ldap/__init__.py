"""Sign in against an LDAP directory or Active Directory.

``POST /api/auth/ldap/login {username, password, otp?, mode?}`` finds the user in
the directory (search-then-bind with a service account, or a direct bind from a
DN template), checks the password by binding as them, refuses accounts the
directory marks disabled, maps their groups to a role and signs them in like a
password login (the account is created at the first sign-in; the very first
account is admin). Wrong user names and wrong passwords get one answer (401);
attempts count against the ``login`` rate limits. See ``docs/auth.md``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from workeros.api import (
    Accountability,
    ExternalIdentity,
    InvalidCredentials,
    InvalidPayload,
    ServiceUnavailable,
    activity,
    client,
    identity_login,
    read_object,
    services,
    session_response,
    wants_cookies,
)
from workeros.hookspecs import hookimpl
from workeros.hookspecs.auth import AuthProvider
from workeros.hookspecs.lifecycle import ConfigKey

from .directory import Directory, DirectoryUnavailable, DirectoryUser

NAME = "ldap"
log = logging.getLogger("workeros.ldap")
MAX_USERNAME = 256
MAX_PASSWORD = 4096
routes = web.RouteTableDef()


def _text(data: dict[str, Any], name: str, limit: int) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value.strip():
        raise InvalidPayload(f"{name} is required", field=name)
    if len(value) > limit or "\x00" in value:
        raise InvalidPayload(f"{name} is not valid", field=name)
    return value


def map_role(groups: list[str], mapping: dict[str, Any]) -> str | None:
    """The role of the first ``ldap.role_map`` entry naming one of ``groups``
    (by DN or by its first RDN's value, case-insensitively)."""
    names: set[str] = set()
    for dn in groups:
        names.add(dn.strip().lower())
        first = dn.split(",", 1)[0]
        if "=" in first:
            names.add(first.split("=", 1)[1].strip().lower())
    for group, role in (mapping or {}).items():
        if str(group).strip().lower() in names and isinstance(role, str) and role:
            return role
    return None


async def _failed(svc: Any, username: str, reason: str, ip: str | None, user_agent: str | None) -> None:
    async with svc.db.transaction() as conn:
        await activity.record(conn, action="auth.login_failed", collection="wos_users", item=None,
                              accountability=Accountability(user=None, role=None, ip=ip, user_agent=user_agent,
                                                            origin="auth"),
                              meta={"provider": NAME, "username": username[:255], "reason": reason})


def _identity(user: DirectoryUser, username: str, settings: Any) -> ExternalIdentity:
    email = user.first(settings["ldap.email_attribute"])
    if not email and settings["ldap.email_domain"]:
        email = f"{username.strip().lower()}@{settings['ldap.email_domain']}"
    if not email:
        raise InvalidCredentials("The directory has no email address for this account")
    return ExternalIdentity(provider=NAME, subject=user.dn, email=email,
                            first_name=user.first(settings["ldap.first_name_attribute"]),
                            last_name=user.first(settings["ldap.last_name_attribute"]),
                            role=map_role(user.groups, settings["ldap.role_map"]))


async def login(svc: Any, data: dict[str, Any], *, ip: str | None, user_agent: str | None,
                browser: bool = True) -> Any:
    """Check ``{username, password}`` against the directory and sign the user in
    (a ``Session``). For transports other than HTTP too."""
    username = _text(data, "username", MAX_USERNAME).strip()
    password = _text(data, "password", MAX_PASSWORD)  # never empty: an empty password is an anonymous bind
    otp = data.get("otp")
    directory: Directory | None = svc.accounts.providers.get(NAME)
    if directory is None or not directory.url:
        raise ServiceUnavailable("LDAP sign-in is not configured (set ldap.url)")
    await svc.accounts.limiter.hit("login", account=f"{NAME}:{username.lower()}", ip=ip)
    try:
        user = await asyncio.to_thread(directory.authenticate, username, password)
    except DirectoryUnavailable as exc:
        raise ServiceUnavailable(f"The directory cannot be reached ({exc})") from None
    except Exception:  # ldap3 raises a wide range of its own errors on odd answers
        log.exception("LDAP: unexpected error while signing %r in", username)
        raise ServiceUnavailable("The directory gave an unexpected answer") from None
    if user is None:
        await _failed(svc, username, "credentials", ip, user_agent)
        raise InvalidCredentials("Invalid username or password")
    if user.disabled:
        await _failed(svc, username, "disabled", ip, user_agent)
        raise InvalidCredentials("This account is disabled in the directory")
    identity = _identity(user, username, svc.settings)
    return await identity_login(svc.accounts, identity, ip=ip, user_agent=user_agent, browser=browser,
                                create=svc.settings["ldap.create_users"], sync_role=svc.settings["ldap.sync_role"],
                                otp=otp if isinstance(otp, str) else None)


@routes.post("/ldap/login")
async def login_route(request: web.Request) -> web.Response:
    data = await read_object(request)
    cookies = wants_cookies(data)
    session = await login(services(request), data, browser=cookies, **client(request))
    return session_response(request, session, cookies=cookies)


@hookimpl
def workeros_register_config_keys() -> list[ConfigKey]:
    return [
        ConfigKey("ldap.url", "str", None, "Directory URL: ldap://host:389 or ldaps://host:636 (unset: LDAP "
                  "sign-in is off)"),
        ConfigKey("ldap.start_tls", "bool", False, "Upgrade an ldap:// connection with StartTLS"),
        ConfigKey("ldap.tls_verify", "bool", True, "Verify the directory's TLS certificate (ldaps:// and StartTLS)"),
        ConfigKey("ldap.tls_ca_file", "str", None, "CA certificates (PEM) to verify the directory with "
                  "(default: the system's)"),
        ConfigKey("ldap.timeout", "float", 10.0, "Seconds to wait for the directory"),
        ConfigKey("ldap.bind_dn", "str", None, "Service account that searches for users (unset: anonymous search)"),
        ConfigKey("ldap.bind_password", "str", None, "The service account's password", secret=True),
        ConfigKey("ldap.user_base_dn", "str", None, "Where users are searched for (search-then-bind)"),
        ConfigKey("ldap.user_filter", "str", "(|(uid={username})(mail={username}))",
                  "Filter finding the user; {username} is replaced, escaped (AD: (sAMAccountName={username}))"),
        ConfigKey("ldap.user_dn_template", "str", None,
                  "Bind directly as this DN instead of searching, e.g. uid={username},ou=people,dc=example,dc=org "
                  "(used when ldap.user_base_dn is unset)"),
        ConfigKey("ldap.email_attribute", "str", "mail", "Attribute holding the user's email address"),
        ConfigKey("ldap.email_domain", "str", None,
                  "Address users without an email attribute get: <username>@<this> (unset: they cannot sign in)"),
        ConfigKey("ldap.first_name_attribute", "str", "givenName", "Attribute holding the first name"),
        ConfigKey("ldap.last_name_attribute", "str", "sn", "Attribute holding the last name"),
        ConfigKey("ldap.group_attribute", "str", "memberOf", "Attribute of the user listing their groups' DNs "
                  "(AD, OpenLDAP memberof overlay)"),
        ConfigKey("ldap.group_base_dn", "str", None, "Also search here for groups listing the user (groupOfNames)"),
        ConfigKey("ldap.group_filter", "str", "(|(member={dn})(uniqueMember={dn}))",
                  "Filter finding a user's groups under ldap.group_base_dn; {dn} is the member's DN, escaped"),
        ConfigKey("ldap.nested_groups", "bool", False, "Follow groups that are members of groups "
                  "(with ldap.group_base_dn)"),
        ConfigKey("ldap.role_map", "dict", {}, "Group DN or name -> role id or name; the first group that matches "
                  "gives the role (no match: auth.default_role)"),
        ConfigKey("ldap.disabled_filter", "str", None, "Filter that matches disabled user entries, e.g. "
                  "(employeeType=disabled) (AD's userAccountControl, pwdAccountLockedTime and nsAccountLock "
                  "are always honoured)"),
        ConfigKey("ldap.create_users", "bool", True, "Create an account at a directory user's first sign-in"),
        ConfigKey("ldap.sync_role", "bool", True, "Apply the mapped role at every sign-in (when a group matches)"),
    ]


def _ready(svc: Any) -> str | None:
    s = svc.settings
    if not s["ldap.url"]:
        return "ldap.url is not set"
    if not s["ldap.user_base_dn"] and not s["ldap.user_dn_template"]:
        return "set ldap.user_base_dn (search-then-bind) or ldap.user_dn_template (direct bind)"
    return None


@hookimpl
def workeros_register_auth_providers() -> list[AuthProvider]:
    return [AuthProvider(name=NAME, kind="credential", routes=lambda: routes,
                         factory=lambda svc: Directory(svc.settings), ready=_ready,
                         start_url="/api/auth/ldap/login", description="LDAP / Active Directory")]
