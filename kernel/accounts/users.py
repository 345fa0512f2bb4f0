"""Users: the password policy and ``/api/users`` (admin CRUD, ``/me``). Part of
the accounts service (:class:`workeros.accounts.accounts_service.AccountsService` mixes it in)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from workeros.accountability import Accountability
from workeros.clock import now
from workeros.db import activity
from workeros.db.tables.access import roles
from workeros.db.tables.accounts import users
from workeros.errors import Conflict, Forbidden, InvalidCredentials, InvalidPayload, NotFound

STATUSES = ("active", "suspended", "invited")
#: Advisory-lock key serialising user changes on PostgreSQL (the bytes of "wos-usr").
USERS_LOCK_KEY = int.from_bytes(b"wos-usr", "big")
USER_FIELDS = ("id", "email", "role", "status", "first_name", "last_name", "email_verified", "totp_enabled",
               "created_at", "last_login_at")
USER_WRITABLE = frozenset({"email", "password", "role", "status", "first_name", "last_name", "email_verified"})
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


def normalize_email(value: Any) -> str:
    if not isinstance(value, str) or len(value) > 255 or not _EMAIL.match(value.strip()):
        raise InvalidPayload("A valid email address is required", field="email")
    return value.strip().lower()


def require_admin(acc: Accountability) -> None:
    if not acc.admin:
        raise Forbidden()


def short_str(value: Any, name: str) -> str:
    if not isinstance(value, str) or len(value) > 128:
        raise InvalidPayload(f"{name} must be a string of at most 128 characters", field=name)
    return value


async def _is_active_admin(conn: AsyncConnection, user: str) -> bool:
    query = (sa.select(users.c.id).select_from(users.join(roles, roles.c.id == users.c.role))
             .where(users.c.id == user, users.c.status == "active", roles.c.admin_access.is_(True)))
    return (await conn.execute(query)).first() is not None


async def _keep_an_admin(conn: AsyncConnection) -> None:
    """Refuse a change that leaves no active admin (nobody could manage the
    server any more)."""
    query = (sa.select(sa.func.count()).select_from(users.join(roles, roles.c.id == users.c.role))
             .where(users.c.status == "active", roles.c.admin_access.is_(True)))
    if (await conn.execute(query)).scalar_one() == 0:
        raise Conflict("This is the last active admin: give another user an admin role first")


class Users:
    """Mixin of the accounts service: needs ``db``, ``settings``, ``passwords``,
    ``revoke_sessions`` and ``changed``."""

    db: Any
    settings: Any
    passwords: Any

    def check_password(self, password: Any, email: str | None = None) -> str:
        """Apply the password policy; return the password."""
        s = self.settings
        if not isinstance(password, str):
            raise InvalidPayload("password must be a string", field="password")
        if len(password) < s["auth.password.min_length"]:
            raise InvalidPayload(f"Password must be at least {s['auth.password.min_length']} characters",
                                 field="password")
        if len(password) > s["auth.password.max_length"]:
            raise InvalidPayload(f"Password must be at most {s['auth.password.max_length']} characters",
                                 field="password")
        classes = sum(bool(re.search(p, password)) for p in (r"[a-z]", r"[A-Z]", r"[0-9]", r"[^a-zA-Z0-9]"))
        if classes < s["auth.password.min_classes"]:
            raise InvalidPayload(f"Password must mix at least {s['auth.password.min_classes']} of lower case, "
                                 "upper case, digits and other characters", field="password")
        if email and password.strip().lower() == email.lower():
            raise InvalidPayload("Password must not be the email address", field="password")
        return password

    async def _role_exists(self, conn: AsyncConnection, role: Any) -> None:
        if role is None:
            return
        if not isinstance(role, str) or (await conn.execute(sa.select(roles.c.id).where(roles.c.id == role))
                                         ).first() is None:
            raise InvalidPayload(f"Role {role!r} does not exist", field="role")

    async def create_user(self, acc: Accountability, data: Any) -> dict[str, Any]:
        """``POST /api/users`` (admin)."""
        require_admin(acc)
        if not isinstance(data, Mapping):
            raise InvalidPayload("Expected an object {email, password, role}")
        unknown = set(data) - USER_WRITABLE
        if unknown:
            raise InvalidPayload(f"Unknown user field(s): {', '.join(sorted(map(str, unknown)))}")
        email = normalize_email(data.get("email"))
        values: dict[str, Any] = {"id": str(uuid.uuid4()), "email": email, "created_at": now(),
                                  "status": data.get("status", "active"), "role": data.get("role"),
                                  "email_verified": bool(data.get("email_verified", True))}
        if values["status"] not in STATUSES:
            raise InvalidPayload(f"status must be one of {', '.join(STATUSES)}", field="status")
        for name in ("first_name", "last_name"):
            if data.get(name) is not None:
                values[name] = short_str(data[name], name)
        if data.get("password") is not None:
            values["password_hash"] = await self.passwords.hash(self.check_password(data["password"], email))
        async with self.db.transaction() as conn:
            await self._role_exists(conn, values["role"])
            if (await conn.execute(sa.select(users.c.id).where(users.c.email == email))).first() is not None:
                raise Conflict("An account with this email already exists")
            try:
                await conn.execute(users.insert().values(**values))
            except IntegrityError:
                raise Conflict("An account with this email already exists") from None
            await activity.record(conn, action="user.create", collection="wos_users", item=values["id"],
                                  accountability=acc)
        return await self.get_user(acc, values["id"])

    async def list_users(self, acc: Accountability, *, limit: int = 100, offset: int = 0, search: str | None = None,
                         role: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        """``GET /api/users`` (admin), oldest first. ``search`` matches the email
        and names (case-insensitive, ``%`` and ``_`` literal); ``role`` and
        ``status`` match exactly."""
        require_admin(acc)
        query = (sa.select(*[users.c[n] for n in USER_FIELDS]).order_by(users.c.created_at, users.c.id)
                 .limit(limit).offset(offset))
        if search:
            pattern = "%" + search.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            query = query.where(sa.or_(*(sa.func.lower(users.c[n]).like(pattern, escape="\\")
                                         for n in ("email", "first_name", "last_name"))))
        if role:
            query = query.where(users.c.role == role)
        if status:
            query = query.where(users.c.status == status)
        async with self.db.read() as conn:
            return [dict(r) for r in (await conn.execute(query)).mappings()]

    async def get_user(self, acc: Accountability, user: str) -> dict[str, Any]:
        if not acc.admin and acc.user != user:
            raise Forbidden()
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(*[users.c[n] for n in USER_FIELDS])
                                      .where(users.c.id == user))).mappings().first()
        if row is None:
            raise NotFound("User not found")
        return dict(row)

    async def me(self, acc: Accountability) -> dict[str, Any]:
        """The caller's own user: the row authentication already read, when it
        carries one (no second query)."""
        if acc.user is None:
            raise InvalidCredentials("Not signed in")
        fields = acc.user_fields
        if fields.get("id") == acc.user and all(name in fields for name in USER_FIELDS):
            return {name: fields[name] for name in USER_FIELDS}
        return await self.get_user(acc, acc.user)

    async def update_user(self, acc: Accountability, user: str, data: Any) -> dict[str, Any]:
        """``PATCH /api/users/{id}`` (admin). A new password or status ends the
        user's sessions."""
        require_admin(acc)
        if not isinstance(data, Mapping):
            raise InvalidPayload("Expected an object")
        unknown = set(data) - USER_WRITABLE
        if unknown:
            raise InvalidPayload(f"Unknown user field(s): {', '.join(sorted(map(str, unknown)))}")
        return await self._update(acc, user, data, action="user.update")

    async def update_me(self, acc: Accountability, data: Any) -> dict[str, Any]:
        """``PATCH /api/users/me``: names, and the password (with
        ``current_password``; every session of the user ends)."""
        if acc.user is None:
            raise InvalidCredentials("Not signed in")
        if not isinstance(data, Mapping):
            raise InvalidPayload("Expected an object")
        allowed = {"first_name", "last_name", "password", "current_password"}
        unknown = set(data) - allowed
        if unknown:
            raise Forbidden(f"You cannot change: {', '.join(sorted(map(str, unknown)))}")
        if "password" in data:
            async with self.db.read() as conn:
                stored = (await conn.execute(sa.select(users.c.password_hash)
                                             .where(users.c.id == acc.user))).scalar_one_or_none()
            current = data.get("current_password")
            if not isinstance(current, str) or not await self.passwords.verify(stored, current):
                raise InvalidCredentials("current_password is wrong", field="current_password")
        changes = {k: v for k, v in data.items() if k != "current_password"}
        return await self._update(acc, acc.user, changes, action="auth.password_change"
                                  if "password" in changes else "user.update")

    async def _update(self, acc: Accountability, user: str, data: Mapping[str, Any], *, action: str
                      ) -> dict[str, Any]:
        values: dict[str, Any] = {}
        if "email" in data:
            values["email"] = normalize_email(data["email"])
        for name in ("first_name", "last_name"):
            if name in data:
                values[name] = None if data[name] is None else short_str(data[name], name)
        if "status" in data:
            if data["status"] not in STATUSES:
                raise InvalidPayload(f"status must be one of {', '.join(STATUSES)}", field="status")
            values["status"] = data["status"]
        if "email_verified" in data:
            if not isinstance(data["email_verified"], bool):
                raise InvalidPayload("email_verified must be true or false", field="email_verified")
            values["email_verified"] = data["email_verified"]
        if "role" in data:
            values["role"] = data["role"]
        if "password" in data:
            values["password_hash"] = await self.passwords.hash(self.check_password(data["password"]))
        async with self.db.transaction() as conn:
            guard = "role" in values or "status" in values
            if guard:
                await self.db.lock(conn, USERS_LOCK_KEY)
            if "role" in values:
                await self._role_exists(conn, values["role"])
            if (await conn.execute(sa.select(users.c.id).where(users.c.id == user))).first() is None:
                raise NotFound("User not found")
            was_admin = guard and await _is_active_admin(conn, user)
            if "email" in values and (await conn.execute(sa.select(users.c.id).where(
                    users.c.email == values["email"], users.c.id != user))).first() is not None:
                raise Conflict("An account with this email already exists")
            if values:
                try:
                    await conn.execute(users.update().where(users.c.id == user).values(**values))
                except IntegrityError:
                    raise Conflict("An account with this email already exists") from None
            if was_admin:
                await _keep_an_admin(conn)
            if "password_hash" in values or values.get("status", "active") != "active":
                await self.revoke_sessions(conn, user)
            await activity.record(conn, action=action, collection="wos_users", item=user, accountability=acc,
                                  meta={"fields": sorted(k for k in data if k != "password")} or None)
        await self.changed()
        return await self.get_user(Accountability.system(), user)

    async def delete_user(self, acc: Accountability, user: str) -> None:
        require_admin(acc)
        async with self.db.transaction() as conn:
            await self.db.lock(conn, USERS_LOCK_KEY)
            was_admin = await _is_active_admin(conn, user)
            # what the on_delete rules of collections pointing at users will do, recorded as any write
            writes, effects = await self._user_delete_effects(conn, user)
            result = await conn.execute(users.delete().where(users.c.id == user))
            if result.rowcount != 1:
                raise NotFound("User not found")
            if was_admin:
                await _keep_an_admin(conn)
            await activity.record(conn, action="user.delete", collection="wos_users", item=user, accountability=acc)
            if writes is not None:
                await writes.record_effects(acc, effects, now(), None)
        await self.changed()

    async def _user_delete_effects(self, conn: AsyncConnection, user: str) -> tuple[Any, list]:
        services = getattr(self, "services", None)
        items = getattr(services, "items", None)
        if items is None:
            return None, []
        schema = items.schema()
        if "wos_users" not in schema.collections:
            return None, []
        writes = items.writes_on(conn, schema)
        return writes, await writes.on_delete_effects(schema.collections["wos_users"], [user])

    async def find_user(self, email: str) -> dict[str, Any] | None:
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(users).where(users.c.email == email.strip().lower())
                                      )).mappings().first()
        return dict(row) if row else None

