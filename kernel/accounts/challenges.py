"""Mailed challenges and second factors: the accounts methods challenge-based
auth providers (magic links, emailed codes, TOTP) call, so that no provider
reads or writes the system tables itself. Part of the accounts service.

A challenge is a one-time token mailed to an active account: a link token (the
mail carries it) or a short numeric code (stored as a hash keyed with the
server secret and a nonce). Verifying it checks the second factor before the
token is used up, uses it once, marks the address verified (receiving the mail
proves it) and signs the user in.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from workeros.accountability import Accountability
from workeros.accounts.tokens import keyed_hash, numeric_code, random_token, same
from workeros.accounts.users import normalize_email
from workeros.clock import now
from workeros.db import activity
from workeros.db.tables.accounts import one_time_tokens, users
from workeros.errors import InvalidCredentials, TokenExpired
from workeros.hookspecs.email import EmailMessage

#: Builds the mail of a challenge from (address, token or code, minutes it works).
ChallengeMail = Callable[[str, str, int], EmailMessage]


class Challenges:
    """Mixin of the accounts service (needs ``db``, ``secret``, ``limiter``,
    ``find_user``, ``user_row``, ``require_mailer``, ``send``, ``create_token``,
    ``peek_token``, ``consume_token``, ``check_second_factor``, ``issue_session``
    and ``changed``)."""

    db: Any
    secret: str
    limiter: Any

    def _code_hash(self, kind: str, email: str, code: str, nonce: str) -> str:
        return keyed_hash(self.secret, kind, email, code, nonce)

    async def start_challenge(self, kind: str, email: Any, *, rule: str, ttl: int, message: ChallengeMail,
                              code_digits: int | None = None, ip: str | None = None,
                              user_agent: str | None = None) -> None:
        """Mail a challenge of ``kind`` to the active account of ``email``: a link
        token, or with ``code_digits`` a numeric code of that many digits. Counts
        against the rate-limit ``rule``; 503 without an email backend. Nothing
        tells the caller whether the account exists. A new challenge voids the
        address's older ones of the same kind."""
        email = normalize_email(email)
        self.require_mailer()
        await self.limiter.hit(rule, account=email, ip=ip)
        user = await self.find_user(email)
        if user is None or user["status"] != "active":
            return
        secret: str | None = None
        extra: dict[str, Any] = {}
        if code_digits:
            secret = numeric_code(code_digits)
            # The nonce keeps stored hashes unique even when two users draw one code.
            nonce = random_token(nbytes=12)
            extra = {"token_hash": self._code_hash(kind, email, secret, nonce), "meta": {"nonce": nonce}}
        async with self.db.transaction() as conn:
            token = await self.create_token(conn, kind, user=user["id"], email=email, ttl=ttl,
                                            token=secret, **extra)
        await self.send(message(email, token, max(1, ttl // 60)))

    async def verify_challenge(self, kind: str, *, provider: str, token: Any = None, email: str | None = None,
                               code: str | None = None, rule: str | None = None, max_attempts: int | None = None,
                               otp: str | None = None, ip: str | None = None, user_agent: str | None = None,
                               browser: bool = True) -> Any:
        """Answer a challenge and sign its user in (a :class:`Session`): by link
        ``token``, or by ``email`` and ``code`` (the address's latest unused
        code, which dies after ``max_attempts`` wrong tries; each try counts
        against ``rule``). 401 for anything wrong; the second factor, if
        enrolled, is checked before the token is used up."""
        if code is None:
            row = await self.peek_token(kind, token)
        else:
            email = normalize_email(email)
            row = await self._check_code(kind, email, code, rule=rule, max_attempts=max_attempts, ip=ip)
        user = await self.user_row(row["user"])
        if user is None or user["status"] != "active":
            raise InvalidCredentials("This account is not active")
        await self.check_second_factor(user, otp)
        async with self.db.transaction() as conn:
            if code is None:
                await self.consume_token(conn, kind, token)
            else:
                await self.consume_token(conn, kind, None, token_hash=row["token_hash"], email=email)
            await self.mark_email_verified(conn, user["id"])
            return await self.issue_session(user["id"], provider=provider, ip=ip, user_agent=user_agent,
                                            conn=conn, browser=browser)

    async def _check_code(self, kind: str, email: str, code: str, *, rule: str | None, max_attempts: int | None,
                          ip: str | None) -> dict[str, Any]:
        if rule is not None:
            await self.limiter.hit(rule, account=email, ip=ip)
        async with self.db.read() as conn:
            row = (await conn.execute(
                sa.select(one_time_tokens).where(one_time_tokens.c.kind == kind, one_time_tokens.c.email == email,
                                                 one_time_tokens.c.used_at.is_(None))
                .order_by(one_time_tokens.c.created_at.desc()).limit(1))).mappings().first()
        if row is None:
            raise InvalidCredentials("This code is invalid or was already used")
        if row["expires_at"] <= now():
            raise TokenExpired("This code has expired")
        if not same(self._code_hash(kind, email, code, (row["meta"] or {}).get("nonce", "")), row["token_hash"]):
            async with self.db.transaction() as conn:
                attempts = row["attempts"] + 1
                values: dict[str, Any] = {"attempts": attempts}
                if max_attempts is not None and attempts >= max_attempts:
                    values["used_at"] = now()  # too many wrong tries: the code is dead
                await conn.execute(one_time_tokens.update().where(one_time_tokens.c.id == row["id"]).values(**values))
            raise InvalidCredentials("This code is invalid or was already used")
        return dict(row)

    async def mark_email_verified(self, conn: AsyncConnection, user: str) -> None:
        """Record, in ``conn``'s transaction, that ``user`` proved their address."""
        await conn.execute(users.update().where(users.c.id == user).values(email_verified=True))

    # -- second factor (TOTP) ------------------------------------------------------------
    async def set_second_factor(self, user: str, *, secret: str | None, enabled: bool | None = None,
                                accountability: Accountability | None = None) -> None:
        """Store ``user``'s TOTP ``secret`` (enrolment) and, with ``enabled``,
        switch the second factor on or off (an ``auth.totp_enable``/
        ``auth.totp_disable`` activity row by ``accountability``)."""
        values: dict[str, Any] = {"totp_secret": secret}
        if enabled is not None:
            values["totp_enabled"] = enabled
        async with self.db.transaction() as conn:
            await conn.execute(users.update().where(users.c.id == user).values(**values))
            if enabled is not None:
                await activity.record(conn, action="auth.totp_enable" if enabled else "auth.totp_disable",
                                      collection="wos_users", item=user, accountability=accountability)
        if enabled is not None:
            await self.changed()

    async def use_once(self, kind: str, user: str, marker: str, *, ttl: int) -> bool:
        """Accept ``marker`` (a keyed hash) once for ``user`` across every
        instance: False when it was already used within ``ttl`` seconds."""
        t = now()
        try:
            async with self.db.transaction() as conn:
                await conn.execute(one_time_tokens.delete().where(
                    one_time_tokens.c.kind == kind, one_time_tokens.c.user == user,
                    one_time_tokens.c.expires_at < t))
                await conn.execute(one_time_tokens.insert().values(
                    id=str(uuid.uuid4()), kind=kind, user=user, token_hash=marker, created_at=t,
                    expires_at=t + dt.timedelta(seconds=ttl), used_at=t))
        except IntegrityError:
            return False  # replayed
        return True
