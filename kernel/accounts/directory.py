"""Sign-in through an outside directory or identity provider (LDAP, SAML): the
provider hands over an :class:`ExternalIdentity`.

The provider has proved who the person is and hands over what the directory
says about them: an address, a name, and the role its group or attribute mapping
chose (or none). :func:`identity_login` finds the account by address or creates
it, and ends in :meth:`AccountsService.issue_session` like every other sign-in.

- The very first account is admin, however it is created (the count and the
  insert share one transaction under the users lock, as in sign-up).
- A new account gets the mapped role, else ``auth.default_role``. The directory
  decides who may sign in, so ``auth.sign_up`` does not apply; a provider that
  should not create accounts passes ``create=False``.
- ``sync_role``: a mapped role replaces the account's role at every sign-in (a
  change of groups in the directory takes effect at the next sign-in), except
  when it would take the admin role from the last active admin.
- A suspended account cannot sign in; an account's TOTP second factor is asked
  for when ``check_second_factor`` is set (a provider whose outside party does
  its own multi-factor check may leave it off).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from workeros.accounts.users import USERS_LOCK_KEY, _is_active_admin, normalize_email
from workeros.clock import now
from workeros.db import activity
from workeros.db.tables.access import roles
from workeros.db.tables.accounts import users
from workeros.errors import Forbidden, InvalidCredentials, ServiceUnavailable

if TYPE_CHECKING:
    from workeros.accounts.accounts_service import AccountsService, Session


@dataclass(frozen=True)
class ExternalIdentity:
    """What an outside provider vouches for. ``subject`` is the provider's own
    name for the person (an LDAP DN, a SAML NameID), kept in the account's
    ``meta.identities``; ``role`` is a role id or name, or ``None`` when no mapping
    matched."""

    provider: str
    subject: str
    email: str
    first_name: str | None = None
    last_name: str | None = None
    role: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


async def resolve_role(conn: AsyncConnection, role: str | None) -> str | None:
    """A role id from its id or name; ``None`` when there is no such role."""
    if not role:
        return None
    row = (await conn.execute(sa.select(roles.c.id).where(roles.c.id == role))).first()
    if row is None:
        row = (await conn.execute(sa.select(roles.c.id).where(roles.c.name == role).order_by(roles.c.id))).first()
    return row.id if row else None


def _short(value: str | None) -> str | None:
    return value[:128] if isinstance(value, str) and value else None


async def identity_login(accounts: AccountsService, identity: ExternalIdentity, *, ip: str | None = None,
                         user_agent: str | None = None, browser: bool = True, create: bool = True,
                         sync_role: bool = True, otp: str | None = None,
                         check_second_factor: bool = True) -> Session:
    """Sign the person ``identity`` names in (creating their account when
    needed); see the module docstring. 401 for a suspended account or a missing
    second factor, 403 when the account does not exist and ``create`` is off."""
    email = normalize_email(identity.email)
    provider = identity.provider
    existing = await accounts.find_user(email)
    if existing is not None:
        if existing["status"] != "active":
            raise InvalidCredentials("This account is not active")
        if check_second_factor:
            row = await accounts.user_row(existing["id"])
            if row is not None:
                await accounts.check_second_factor(row, otp)
    async with accounts.db.transaction() as conn:
        await accounts.db.lock(conn, USERS_LOCK_KEY)
        row = (await conn.execute(sa.select(users).where(users.c.email == email))).mappings().first()
        mapped = await resolve_role(conn, identity.role)
        if identity.role and mapped is None:
            # A mapping naming a role that is not there is a set-up mistake: say so
            # rather than quietly handing out the default role.
            raise ServiceUnavailable(f"The {provider} role mapping names a role that does not exist")
        role_changed = False
        if row is None:
            user_id = await _create(accounts, conn, identity, email, mapped, create=create, ip=ip,
                                    user_agent=user_agent)
        else:
            user_id = row["id"]
            if row["status"] != "active":
                raise InvalidCredentials("This account is not active")
            role_changed = await _update(conn, dict(row), identity, mapped, sync_role=sync_role)
        session = await accounts.issue_session(user_id, provider=provider, ip=ip, user_agent=user_agent,
                                               conn=conn, browser=browser)
    if role_changed:
        await accounts.changed()  # other instances drop what they cached of this user's role
    return session


async def _create(accounts: AccountsService, conn: AsyncConnection, identity: ExternalIdentity, email: str,
                  mapped: str | None, *, create: bool, ip: str | None, user_agent: str | None) -> str:
    count = (await conn.execute(sa.select(sa.func.count()).select_from(users))).scalar_one()
    if count == 0:
        role: str | None = "admin"
    elif not create:
        raise Forbidden(f"No account for this {identity.provider} user, and {identity.provider} "
                        "does not create accounts here")
    else:
        role = mapped or accounts.settings["auth.default_role"] or None
        if role is not None and await resolve_role(conn, role) is None:
            raise ServiceUnavailable("Sign-up is misconfigured: the role for new users does not exist")
    data = {k: v for k, v in (("first_name", _short(identity.first_name)),
                              ("last_name", _short(identity.last_name))) if v}
    event = await accounts.auth_before("signup", conn, email=email, provider=identity.provider, ip=ip,
                                       user_agent=user_agent, data=data)
    data = {k: _short(event.data[k]) for k in ("first_name", "last_name") if event.data.get(k)}
    user_id = str(uuid.uuid4())
    await conn.execute(users.insert().values(
        id=user_id, email=email, password_hash=None, role=role, status="active", email_verified=True,
        created_at=now(), meta={"identities": {identity.provider: identity.subject[:1024]}}, **data))
    await activity.record(conn, action="auth.sign_up", collection="wos_users", item=user_id,
                          accountability=accounts._actor(user_id, ip, user_agent),
                          meta={"role": role, "provider": identity.provider})
    event.user = user_id
    accounts.auth_after(event)
    return user_id


async def _update(conn: AsyncConnection, row: dict[str, Any], identity: ExternalIdentity, mapped: str | None, *,
                  sync_role: bool) -> bool:
    """Record the identity, fill in missing names and (``sync_role``) apply the
    mapped role; whether the role changed."""
    values: dict[str, Any] = {}
    meta = dict(row["meta"] or {})
    identities = dict(meta.get("identities") or {})
    if identities.get(identity.provider) != identity.subject[:1024]:
        identities[identity.provider] = identity.subject[:1024]
        values["meta"] = {**meta, "identities": identities}
    if sync_role and mapped is not None and mapped != row["role"]:
        losing_admin = await _is_active_admin(conn, row["id"])
        if losing_admin:
            admins = (await conn.execute(
                sa.select(sa.func.count()).select_from(users.join(roles, roles.c.id == users.c.role))
                .where(users.c.status == "active", roles.c.admin_access.is_(True)))).scalar_one()
            gains_admin = (await conn.execute(sa.select(roles.c.admin_access).where(roles.c.id == mapped))
                           ).scalar_one_or_none()
            if admins <= 1 and not gains_admin:
                mapped = row["role"]  # never take the admin role from the last admin
        if mapped != row["role"]:
            values["role"] = mapped
    for name in ("first_name", "last_name"):
        value = _short(getattr(identity, name))
        if value and not row[name]:
            values[name] = value
    if values:
        await conn.execute(users.update().where(users.c.id == row["id"]).values(**values))
    return "role" in values
