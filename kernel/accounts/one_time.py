"""One-time tokens and the flows that mail them: password reset, email
verification, invitations. Part of the accounts service.

Tokens are stored only as hashes in ``wos_one_time_tokens``; they expire, work
once, and a new one for the same address voids the unused older ones.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from workeros.accountability import Accountability
from workeros.accounts import mail
from workeros.accounts.tokens import random_token, sha256_hex
from workeros.accounts.users import normalize_email, require_admin
from workeros.clock import now
from workeros.db import activity
from workeros.db.tables.accounts import one_time_tokens, users
from workeros.errors import InvalidCredentials, InvalidPayload, ServiceUnavailable, TokenExpired
from workeros.hookspecs.email import EmailMessage

log = logging.getLogger("workeros.accounts")




class OneTimeTokens:
    """Mixin of the accounts service: needs ``db``, ``settings``, ``services``,
    ``passwords``, ``limiter``, ``find_user``, ``check_password``,
    ``revoke_sessions``, ``_role_exists``, ``_actor`` and ``changed``."""

    db: Any
    settings: Any
    services: Any

    # -- one-time tokens -----------------------------------------------------------------
    async def create_token(self, conn: AsyncConnection, kind: str, *, user: str | None, email: str | None,
                           ttl: int, token: str | None = None, token_hash: str | None = None,
                           meta: Mapping[str, Any] | None = None) -> str:
        """Store a one-time token (only its hash); return the token. Earlier
        unused tokens of the same kind for the same address stop working."""
        token = token or random_token()
        t = now()
        if email is not None:
            await conn.execute(one_time_tokens.update().where(
                one_time_tokens.c.kind == kind, one_time_tokens.c.email == email,
                one_time_tokens.c.used_at.is_(None)).values(used_at=t))
            # Expired tokens of this address are of no use to anyone: sweep them here.
            await conn.execute(one_time_tokens.delete().where(
                one_time_tokens.c.kind == kind, one_time_tokens.c.email == email,
                one_time_tokens.c.expires_at < t))
        await conn.execute(one_time_tokens.insert().values(
            id=str(uuid.uuid4()), kind=kind, user=user, email=email, token_hash=token_hash or sha256_hex(token),
            created_at=t, expires_at=t + dt.timedelta(seconds=ttl), meta=dict(meta) if meta else None))
        return token

    async def peek_token(self, kind: str, token: Any) -> dict[str, Any]:
        """Check a one-time token without using it (same errors as
        :meth:`consume_token`)."""
        if not isinstance(token, str) or not token or len(token) > 512:
            raise InvalidPayload("token is required", field="token")
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(one_time_tokens).where(
                one_time_tokens.c.token_hash == sha256_hex(token), one_time_tokens.c.kind == kind))).mappings().first()
        if row is None or row["used_at"] is not None:
            raise InvalidCredentials("This link or code is invalid or was already used")
        if row["expires_at"] <= now():
            raise TokenExpired("This link or code has expired")
        return dict(row)

    async def consume_token(self, conn: AsyncConnection, kind: str, token: Any, *, email: str | None = None,
                            token_hash: str | None = None) -> dict[str, Any]:
        """Use a one-time token once, inside ``conn``'s transaction: unknown,
        used or expired → 401 (``TOKEN_EXPIRED`` when expired)."""
        if token_hash is None:
            if not isinstance(token, str) or not token or len(token) > 512:
                raise InvalidPayload("token is required", field="token")
            token_hash = sha256_hex(token)
        query = sa.select(one_time_tokens).where(one_time_tokens.c.token_hash == token_hash,
                                                 one_time_tokens.c.kind == kind)
        row = (await conn.execute(query)).mappings().first()
        if row is None or row["used_at"] is not None or (email is not None and row["email"] != email):
            raise InvalidCredentials("This link or code is invalid or was already used")
        t = now()
        if row["expires_at"] <= t:
            raise TokenExpired("This link or code has expired")
        used = await conn.execute(one_time_tokens.update().where(one_time_tokens.c.id == row["id"],
                                                                 one_time_tokens.c.used_at.is_(None))
                                  .values(used_at=t))
        if used.rowcount != 1:
            raise InvalidCredentials("This link or code is invalid or was already used")
        return dict(row)

    def url_for(self, setting: str, default_path: str, **query: str) -> str:
        base = self.settings[setting]
        if base:
            return mail.link(base, "", **query)
        public = self.settings["server.public_url"]
        if not public:
            raise ServiceUnavailable("server.public_url is not set: links cannot be mailed")
        return mail.link(public, default_path, **query)

    async def _link_token(self, conn: AsyncConnection, kind: str, user: str | None, email: str, setting: str,
                          path: str, meta: Mapping[str, Any] | None = None) -> str:
        token = await self.create_token(conn, kind, user=user, email=email, ttl=self.settings["auth.token_ttl"],
                                        meta=meta)
        return self.url_for(setting, path, token=token)

    def require_mailer(self) -> None:
        if self.services.mailer is None:
            raise ServiceUnavailable("No email backend is configured")

    async def send(self, message: EmailMessage) -> None:
        """Send one mail through the active email backend; 503 if there is none or
        it fails."""
        self.require_mailer()
        try:
            await self.services.mailer.send(message)
        except Exception as exc:
            log.warning("sending mail failed: %s", type(exc).__name__)
            raise ServiceUnavailable("The email could not be sent; try again later") from None

    # -- password reset, verification, invitations ---------------------------------------
    async def request_password_reset(self, email: Any, *, ip: str | None = None,
                                     user_agent: str | None = None) -> None:
        """Mail a reset link if the account exists; the answer is the same
        either way, and so is its timing: looking the account up, storing the
        token and sending the mail happen in the background, after the answer
        (a failure to send is logged, not answered)."""
        email = normalize_email(email)
        self.require_mailer()
        self.url_for("auth.reset_url", "/reset-password", token="")  # 503 for every caller alike when unset
        await self.limiter.hit("password_reset", account=email, ip=ip)
        self.services.background.spawn(self._mail_password_reset(email), name="password-reset-mail")

    async def _mail_password_reset(self, email: str) -> None:
        try:
            user = await self.find_user(email)
            if user is None or user["status"] != "active":
                return
            async with self.db.transaction() as conn:
                url = await self._link_token(conn, "password_reset", user["id"], email, "auth.reset_url",
                                             "/reset-password")
            await self.send(mail.password_reset(email, url, self.settings["auth.token_ttl"] // 60))
        except ServiceUnavailable as error:
            log.warning("password-reset mail not sent: %s", error.message)

    async def reset_password(self, token: Any, password: Any, *, ip: str | None = None,
                             user_agent: str | None = None) -> None:
        """Set a new password with a reset token (once); every session ends."""
        peeked = await self.peek_token("password_reset", token)
        # Checked and hashed before the write transaction (a weak password leaves
        # the link usable; the hash never holds SQLite's write lock).
        password_hash = await self.passwords.hash(self.check_password(password, peeked["email"]))
        async with self.db.transaction() as conn:
            row = await self.consume_token(conn, "password_reset", token)
            event = await self.auth_before("password_reset", conn, user=row["user"], email=peeked["email"], ip=ip,
                                           user_agent=user_agent)
            await conn.execute(users.update().where(users.c.id == row["user"]).values(
                password_hash=password_hash, email_verified=True))
            await self.revoke_sessions(conn, row["user"])
            await activity.record(conn, action="auth.password_reset", collection="wos_users", item=row["user"],
                                  accountability=self._actor(row["user"], ip, user_agent))
            self.auth_after(event)
        await self.changed()

    async def verify_email(self, token: Any, *, ip: str | None = None, user_agent: str | None = None) -> None:
        async with self.db.transaction() as conn:
            row = await self.consume_token(conn, "verify_email", token)
            await conn.execute(users.update().where(users.c.id == row["user"]).values(email_verified=True))
            await activity.record(conn, action="auth.email_verified", collection="wos_users", item=row["user"],
                                  accountability=self._actor(row["user"], ip, user_agent))
        await self.changed()

    async def invite(self, acc: Accountability, data: Any) -> dict[str, Any]:
        """``POST /api/users/invite {email, role?}`` (admin): mail an invitation
        link; signing up with its token gives the role."""
        require_admin(acc)
        if not isinstance(data, Mapping):
            raise InvalidPayload("Expected an object {email, role}")
        email = normalize_email(data.get("email"))
        role = data.get("role")
        self.require_mailer()
        async with self.db.transaction() as conn:
            await self._role_exists(conn, role)
            url = await self._link_token(conn, "invite", None, email, "auth.invite_url", "/sign-up",
                                         meta={"role": role} if role else None)
            await activity.record(conn, action="user.invite", collection="wos_users", accountability=acc,
                                  meta={"email": email, "role": role})
        await self.send(mail.invitation(email, url, self.settings["auth.token_ttl"] // 60))
        return {"email": email, "role": role}

