"""API keys (``pak_…``): created for a user and shown once, stored as SHA-256,
optional expiry, revocable, with guards: ``mcp_read_only`` (the key changes
nothing, on every way in) and ``mcp_tools`` (the MCP tools it may call). Part of
the accounts service; checking a key on a request lives in
:meth:`workeros.accounts.accounts_service.AccountsService.authenticate`.

A caller signed in *with a key* manages keys only within that key: it creates
keys for its own user only, and they inherit the key's guards and expiry
(asking for fewer tools or an earlier expiry is fine; lifting a guard, more
tools or a later or no expiry is 403); it cannot set guards on any key beyond
its own. A read-only key manages no keys at all (that is a write). See
docs/auth.md."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from workeros.accountability import Accountability
from workeros.accounts.tokens import API_KEY_PREFIX, random_token, sha256_hex
from workeros.clock import now
from workeros.db import activity
from workeros.db.tables.accounts import api_keys, users
from workeros.errors import Forbidden, InvalidPayload, NotFound


class ApiKeys:
    """Mixin of the accounts service: needs ``db`` and ``changed``."""

    db: Any

    # -- API keys ------------------------------------------------------------------------
    async def create_api_key(self, acc: Accountability, data: Any) -> dict[str, Any]:
        """``POST /api/api-keys {name, user?, expires_at?, mcp_read_only?, mcp_tools?}``.
        Admins create keys for anyone, a signed-in user for themself. The key is
        returned once (``key``); only its SHA-256 is stored."""
        if acc.user is None and not acc.admin:
            raise Forbidden()
        if not isinstance(data, Mapping):
            raise InvalidPayload("Expected an object {name, user}")
        unknown = set(data) - {"name", "user", "expires_at", "mcp_read_only", "mcp_tools"}
        if unknown:
            raise InvalidPayload(f"Unknown field(s): {', '.join(sorted(map(str, unknown)))}")
        name = data.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 128:
            raise InvalidPayload("name is required (at most 128 characters)", field="name")
        user = data.get("user", acc.user)
        if not isinstance(user, str):
            raise InvalidPayload("user is required", field="user")
        if user != acc.user and not acc.admin:
            raise Forbidden("You can only create keys for yourself")
        if acc.api_key is not None and user != acc.user:
            raise Forbidden("An API key creates keys for its own user only")
        expires = _datetime(data.get("expires_at"), "expires_at")
        if expires is not None and expires <= now():
            raise InvalidPayload("expires_at must be in the future", field="expires_at")
        guards = _mcp_guards(data)
        expires = _within_key(acc, guards, expires, inherit=True)
        key = random_token(API_KEY_PREFIX)
        values = {"id": str(uuid.uuid4()), "name": name.strip(), "user": user, "key_hash": sha256_hex(key),
                  "prefix": key[:12], "created_at": now(), "expires_at": expires,
                  "mcp_read_only": guards.get("mcp_read_only", False), "mcp_tools": guards.get("mcp_tools")}
        async with self.db.transaction() as conn:
            if (await conn.execute(sa.select(users.c.id).where(users.c.id == user))).first() is None:
                raise InvalidPayload("user does not exist", field="user")
            await conn.execute(api_keys.insert().values(**values))
            await activity.record(conn, action="api_key.create", collection="wos_api_keys", item=values["id"],
                                  accountability=acc, meta={"user": user})
        return {**await self.get_api_key(acc, values["id"]), "key": key}

    def _key_columns(self) -> list[sa.Column]:
        return [api_keys.c[n] for n in ("id", "name", "user", "prefix", "created_at", "expires_at", "revoked_at",
                                        "last_used_at", "mcp_read_only", "mcp_tools")]

    async def list_api_keys(self, acc: Accountability) -> list[dict[str, Any]]:
        """Every key for admins; a user's own keys otherwise."""
        if acc.user is None and not acc.admin:
            raise Forbidden()
        query = sa.select(*self._key_columns()).order_by(api_keys.c.created_at, api_keys.c.id)
        if not acc.admin:
            query = query.where(api_keys.c.user == acc.user)
        async with self.db.read() as conn:
            return [dict(r) for r in (await conn.execute(query)).mappings()]

    async def get_api_key(self, acc: Accountability, key_id: str) -> dict[str, Any]:
        if acc.user is None and not acc.admin:
            raise Forbidden()
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(*self._key_columns()).where(api_keys.c.id == key_id))
                   ).mappings().first()
        if row is None or (not acc.admin and row["user"] != acc.user):
            raise NotFound("API key not found")
        return dict(row)

    async def revoke_api_key(self, acc: Accountability, key_id: str) -> None:
        """``DELETE /api/api-keys/{id}``: the key stops working at once (the row
        stays, revoked, for the record)."""
        await self.get_api_key(acc, key_id)
        async with self.db.transaction() as conn:
            await conn.execute(api_keys.update().where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                               .values(revoked_at=now()))
            await activity.record(conn, action="api_key.revoke", collection="wos_api_keys", item=key_id,
                                  accountability=acc)
        await self.changed()

    async def set_mcp_guards(self, acc: Accountability, key_id: str, data: Any) -> dict[str, Any]:
        """``PATCH /api/api-keys/{id}/mcp-guards {mcp_read_only?, mcp_tools?}``;
        ``mcp_tools`` null means every tool."""
        await self.get_api_key(acc, key_id)
        if not isinstance(data, Mapping) or not data:
            raise InvalidPayload("Expected an object {mcp_read_only, mcp_tools}")
        unknown = set(data) - {"mcp_read_only", "mcp_tools"}
        if unknown:
            raise InvalidPayload(f"Unknown field(s): {', '.join(sorted(map(str, unknown)))}")
        guards = _mcp_guards(data)
        _within_key(acc, guards, None, inherit=False)
        async with self.db.transaction() as conn:
            await conn.execute(api_keys.update().where(api_keys.c.id == key_id).values(**guards))
            await activity.record(conn, action="api_key.update", collection="wos_api_keys", item=key_id,
                                  accountability=acc, meta={"fields": sorted(guards)})
        await self.changed()
        return await self.get_api_key(acc, key_id)

def _within_key(acc: Accountability, guards: dict[str, Any], expires: dt.datetime | None, *,
                inherit: bool) -> dt.datetime | None:
    """Keep what a caller signed in with an API key asks for within that key:
    its guards and expiry are inherited where not given (``inherit``), and
    lifting them is refused. Returns the expiry to store."""
    if acc.api_key is None:
        return expires
    if acc.mcp_read_only:
        if guards.get("mcp_read_only") is False:
            raise Forbidden("A read-only API key cannot lift the read-only guard", field="mcp_read_only")
        if inherit:
            guards["mcp_read_only"] = True
    if acc.mcp_tools is not None:
        if "mcp_tools" in guards:
            tools = guards["mcp_tools"]
            if tools is None or not set(tools) <= set(acc.mcp_tools):
                raise Forbidden("An API key cannot allow MCP tools beyond its own", field="mcp_tools")
        elif inherit:
            guards["mcp_tools"] = list(acc.mcp_tools)
    if acc.expires_at is not None:
        own = dt.datetime.fromtimestamp(acc.expires_at, dt.UTC)
        if expires is None:
            if inherit:
                return own
        elif expires > own:
            raise Forbidden("An API key cannot create a key that outlives it", field="expires_at")
    return expires


def _datetime(value: Any, name: str) -> dt.datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidPayload(f"{name} must be an ISO 8601 date-time", field=name)
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidPayload(f"{name} must be an ISO 8601 date-time", field=name) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _mcp_guards(data: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "mcp_read_only" in data:
        if not isinstance(data["mcp_read_only"], bool):
            raise InvalidPayload("mcp_read_only must be true or false", field="mcp_read_only")
        out["mcp_read_only"] = data["mcp_read_only"]
    if "mcp_tools" in data:
        tools = data["mcp_tools"]
        if tools is not None and (not isinstance(tools, list) or len(tools) > 500 or not all(
                isinstance(t, str) and 0 < len(t) <= 128 for t in tools)):
            raise InvalidPayload("mcp_tools must be null or a list of tool names", field="mcp_tools")
        out["mcp_tools"] = None if tools is None else list(dict.fromkeys(tools))
    return out
