"""Sign-in through an outside proof of identity (OAuth/OIDC, passkeys, SAML,
LDAP, SCIM provisioning): find or create the account, then issue the same
session as a password sign-in. Part of the accounts service.

Rules every such provider shares:

- An existing account is linked by email only when the provider vouches that the
  address is verified; otherwise the sign-in is refused (``email_unverified``), so
  nobody takes over an account by claiming its address at a lax provider.
- A new account follows ``auth.sign_up`` (closed and invite-only instances refuse
  strangers) and gets ``auth.default_role`` unless the provider's mapping names a
  role; the very first account is admin whichever way it signs up (the count and
  the insert share one locked transaction, as in password sign-up).
- The outside provider stands in for the password and the second factor: a TOTP
  second factor is not asked for.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from workeros.accounts.users import USERS_LOCK_KEY, normalize_email
from workeros.clock import now
from workeros.db import activity
from workeros.db.tables.access import roles
from workeros.db.tables.accounts import users
from workeros.errors import Forbidden, InvalidCredentials, ServiceUnavailable

#: Called inside the sign-in transaction with the user's id (to store a link).
OnUser = Callable[[AsyncConnection, str], Awaitable[None]]

PROFILE_FIELDS = ("first_name", "last_name")


class ExternalAccounts:
    """Mixin of the accounts service (needs ``db``, ``settings``, ``services``,
    ``auth_before``, ``auth_after``, ``_actor``, ``issue_session`` and ``changed``)."""

    db: Any
    settings: Any

    async def login_failed(self, *, provider: str, reason: str, user: str | None = None, email: str | None = None,
                           ip: str | None = None, user_agent: str | None = None) -> None:
        """Record a refused sign-in (an ``auth.login_failed`` activity row)."""
        async with self.db.transaction() as conn:
            await activity.record(conn, action="auth.login_failed", collection="wos_users", item=user,
                                  accountability=self._actor(user, ip, user_agent),  # type: ignore[attr-defined]
                                  meta={"provider": provider[:32], "email": (email or "")[:255], "reason": reason})

    async def create_external_user(self, conn: AsyncConnection, *, provider: str, email: Any,
                                   email_verified: bool, role: str | None = None,
                                   profile: Mapping[str, Any] | None = None, ip: str | None = None,
                                   user_agent: str | None = None, admin_override: bool = False,
                                   user_id: str | None = None) -> str:
        """Create an account without a password in ``conn``'s transaction and
        return its id. The first account is admin; ``auth.sign_up`` is obeyed
        (``admin_override`` skips it, for provisioning by an administrator's
        token); ``role`` (a provider mapping) replaces ``auth.default_role``;
        ``user_id`` is the new account's id when the provider already handed it
        out (a passkey's user handle)."""
        email = normalize_email(email)
        await self.db.lock(conn, USERS_LOCK_KEY)
        count = (await conn.execute(sa.select(sa.func.count()).select_from(users))).scalar_one()
        mode = self.settings["auth.sign_up"]
        if count == 0:
            role = "admin"
        elif not admin_override and mode != "open":
            raise Forbidden("Sign-up is closed" if mode == "closed" else "Sign-up needs an invitation")
        elif role is None:
            role = self.settings["auth.default_role"]
        if (await conn.execute(sa.select(users.c.id).where(users.c.email == email))).first() is not None:
            raise InvalidCredentials("An account with this email already exists", reason="account_exists")
        if role is not None and (await conn.execute(sa.select(roles.c.id).where(roles.c.id == role))
                                 ).first() is None:
            raise ServiceUnavailable("Sign-up is misconfigured: the role for new users does not exist")
        extra = {k: str(v)[:128] for k, v in (profile or {}).items() if k in PROFILE_FIELDS and v}
        event = await self.auth_before("signup", conn, email=email, provider=provider,  # type: ignore[attr-defined]
                                       ip=ip, user_agent=user_agent, data=extra)
        extra = {k: str(event.data[k])[:128] for k in PROFILE_FIELDS if event.data.get(k)}
        user_id = user_id or str(uuid.uuid4())
        await conn.execute(users.insert().values(id=user_id, email=email, role=role, status="active",
                                                 email_verified=bool(email_verified), created_at=now(), **extra))
        await activity.record(conn, action="auth.sign_up", collection="wos_users", item=user_id,
                              accountability=self._actor(user_id, ip, user_agent),  # type: ignore[attr-defined]
                              meta={"role": role, "provider": provider[:32]})
        event.user = user_id
        self.auth_after(event)  # type: ignore[attr-defined]
        return user_id

    async def external_login(self, *, provider: str, user: str | None = None, email: Any = None,
                             email_verified: bool = False, role: str | None = None,
                             profile: Mapping[str, Any] | None = None, create: bool = True,
                             on_user: OnUser | None = None, ip: str | None = None, user_agent: str | None = None,
                             browser: bool = True, new_user_id: str | None = None) -> Any:
        """Sign in the account an outside provider vouched for and return the
        :class:`Session`. ``user`` is an account the provider already linked;
        otherwise ``email`` finds one (linked only when ``email_verified``) or,
        with ``create``, a new one is made. ``role`` (from the provider's
        mapping) is set on the account when given. ``on_user(conn, user_id)``
        runs in the same transaction (to remember the link). Suspended or
        unknown accounts get 401."""
        async with self.db.transaction() as conn:
            row = None
            if user is not None:
                row = (await conn.execute(sa.select(users).where(users.c.id == user))).mappings().first()
                if row is None:
                    raise InvalidCredentials("This account no longer exists")
            elif email is not None:
                address = normalize_email(email)
                row = (await conn.execute(sa.select(users).where(users.c.email == address))).mappings().first()
                if row is not None and not email_verified:
                    raise InvalidCredentials("An account with this email exists; the provider did not verify the "
                                             "address, so it cannot be linked", reason="email_unverified")
            if row is None:
                if not create or email is None:
                    raise InvalidCredentials("No account is linked to this sign-in")
                user_id = await self.create_external_user(conn, provider=provider, email=email,
                                                          email_verified=email_verified, role=role,
                                                          profile=profile, ip=ip, user_agent=user_agent,
                                                          user_id=new_user_id)
            else:
                user_id = row["id"]
                if row["status"] != "active":
                    raise InvalidCredentials("This account is not active")
                values: dict[str, Any] = {}
                if role is not None and role != row["role"] and row["role"] != "admin":
                    if (await conn.execute(sa.select(roles.c.id).where(roles.c.id == role))).first() is not None:
                        values["role"] = role
                if email_verified and email is not None and not row["email_verified"]:
                    values["email_verified"] = True
                if values:
                    await conn.execute(users.update().where(users.c.id == user_id).values(**values))
            if on_user is not None:
                await on_user(conn, user_id)
            session = await self.issue_session(user_id, provider=provider, ip=ip,  # type: ignore[attr-defined]
                                               user_agent=user_agent, conn=conn, browser=browser)
        await self.changed()  # type: ignore[attr-defined]
        return session
