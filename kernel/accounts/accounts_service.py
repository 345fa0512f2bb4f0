"""Accounts: users, sign-up, sessions (access + rotating refresh tokens, browser
cookie sessions), API keys, one-time tokens (reset, verification, magic link,
codes, invitations), and who a request comes from.

Auth providers (``workeros.hookspecs.auth``) prove *which user* signs in and then
call :meth:`AccountsService.issue_session`; every provider ends in the same kind
of session. See ``docs/auth.md`` for the flows and the security choices.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from workeros.accountability import Accountability
from workeros.accounts import mail
from workeros.accounts.api_keys import ApiKeys
from workeros.accounts.challenges import Challenges
from workeros.accounts.external import ExternalAccounts
from workeros.accounts.one_time import OneTimeTokens
from workeros.accounts.ratelimit import RateLimiter
from workeros.accounts.ratelimit import config_keys as ratelimit_keys
from workeros.accounts.tokens import (
    API_KEY_PREFIX,
    REFRESH_PREFIX,
    SESSION_PREFIX,
    AccessClaims,
    Passwords,
    csrf_token,
    decode_access_token,
    encode_access_token,
    random_token,
    same,
    sha256_hex,
)
from workeros.accounts.users import USERS_LOCK_KEY, Users, normalize_email, short_str
from workeros.bus.events import ACCOUNTS, PERMISSIONS
from workeros.clock import now
from workeros.db import activity
from workeros.db.tables.access import roles
from workeros.db.tables.accounts import api_keys, sessions, users
from workeros.db.tables.schema import settings as settings_table
from workeros.errors import (
    Conflict,
    Forbidden,
    InvalidCredentials,
    InvalidPayload,
    NotFound,
    ServiceUnavailable,
    TokenExpired,
)
from workeros.hookspecs.auth import AuthEvent
from workeros.hookspecs.lifecycle import ConfigKey
from workeros.plugins import await_me_maybe

if TYPE_CHECKING:
    from workeros.services import Services

log = logging.getLogger("workeros.accounts")

SECRET_SETTING = "auth.secret"
#: Event channel telling every instance that users, sessions or keys changed.
ACCOUNTS_CHANNEL = ACCOUNTS
#: Most credentials an instance remembers (then it starts over).
CACHE_MAX = 10_000
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "X-CSRF-Token"
CSRF_COOKIE = "wos_csrf"
#: Columns never shown to anyone, nor put into ``$user.<field>``.
SECRET_COLUMNS = frozenset({"password_hash", "totp_secret"})
API_KEY_TOUCH_SECONDS = 60

SecondFactor = Callable[[Mapping[str, Any], str | None], Awaitable[None]]




__all__ = ["AccountsService", "Session", "normalize_email", "now"]


@dataclass(frozen=True)
class Session:
    """What a sign-in hands out. ``cookie`` and ``csrf`` go to the browser as
    cookies; the rest is the JSON body (``expires`` in milliseconds, as the
    access token's lifetime)."""

    user: str
    family: str
    access_token: str
    refresh_token: str
    expires: int
    cookie: str
    csrf: str
    cookie_max_age: int

    def body(self, *, tokens: bool = True) -> dict[str, Any]:
        """The JSON answer; without ``tokens`` (session mode: the cookie is the
        credential) only ``expires``. An empty refresh token (a refresh from the
        session cookie) is left out."""
        if not tokens:
            return {"access_token": None, "refresh_token": None, "expires": self.expires}
        return {"access_token": self.access_token, "refresh_token": self.refresh_token or None,
                "expires": self.expires}


ACCOUNT_KEYS: tuple[ConfigKey, ...] = (
    ConfigKey("auth.secret", "str", None,
              "Key signing access tokens (HS256). Unset: one is generated on first start and kept in "
              "wos_settings, so every instance on the database shares it", secret=True),
    ConfigKey("auth.access_token_ttl", "int", 900, "Access token lifetime in seconds"),
    ConfigKey("auth.cache_ttl", "float", 5.0,
              "Seconds an instance may reuse a checked session or API key without reading the database "
              "(revocations reach every instance on the event bus at once; this bounds the delay without one; "
              "0 turns the cache off)"),
    ConfigKey("auth.refresh_token_ttl", "int", 7 * 86400, "Refresh token lifetime in seconds (renewed on rotation)"),
    ConfigKey("auth.session_ttl", "int", 7 * 86400, "Browser session cookie lifetime in seconds"),
    ConfigKey("auth.cookie_name", "str", "wos_session", "Name of the browser session cookie"),
    ConfigKey("auth.cookie_secure", "bool", False, "Send session cookies only over HTTPS (turn on in production)"),
    ConfigKey("auth.cookie_domain", "str", None, "Domain attribute of the session cookies (default: host only)"),
    ConfigKey("auth.sign_up", "str", "open", "Who may sign up: open, invite (with an invitation) or closed "
              "(the very first user can always sign up and becomes admin)", choices=("open", "invite", "closed")),
    ConfigKey("auth.default_role", "str", None, "Role id given to users who sign up (unset: the public role)"),
    ConfigKey("auth.email_verification", "bool", False,
              "Require a confirmed email address before password sign-in (a link is mailed at sign-up)"),
    ConfigKey("auth.password.min_length", "int", 8, "Shortest password accepted"),
    ConfigKey("auth.password.max_length", "int", 256, "Longest password accepted"),
    ConfigKey("auth.password.min_classes", "int", 1,
              "How many of lower case, upper case, digits and other characters a password must mix"),
    ConfigKey("auth.password.argon2_time_cost", "int", 3, "argon2id iterations"),
    ConfigKey("auth.password.argon2_memory_kib", "int", 65536, "argon2id memory in KiB"),
    ConfigKey("auth.reset_url", "str", None,
              "Page the password-reset link opens, given ?token= (default: <server.public_url>/reset-password)"),
    ConfigKey("auth.verify_url", "str", None,
              "Page the verification link opens, given ?token= "
              "(default: <server.public_url>/api/auth/verify-email)"),
    ConfigKey("auth.invite_url", "str", None,
              "Page the invitation link opens, given ?token= (default: <server.public_url>/sign-up)"),
    ConfigKey("auth.token_ttl", "int", 3600, "Lifetime of reset, verification and invitation links in seconds"),
)


class AccountsService(Users, OneTimeTokens, Challenges, ApiKeys, ExternalAccounts):
    """Users, sessions and keys. One per app; see the module docstring. Users,
    one-time tokens, mailed challenges and API keys live in their own modules,
    mixed in here."""

    config_keys = (*ACCOUNT_KEYS, *ratelimit_keys())

    def __init__(self, services: Services, secret: str) -> None:
        self.services = services
        self.settings = services.settings
        self.db = services.db
        self.secret = secret
        s = self.settings
        self.passwords = Passwords(time_cost=s["auth.password.argon2_time_cost"],
                                   memory_kib=s["auth.password.argon2_memory_kib"])
        self.limiter = RateLimiter(self.db, s)
        #: Provider objects from each active auth provider's ``factory``.
        self.providers: dict[str, Any] = {}
        #: Checks a second factor at sign-in (installed by the otp plugin).
        self.second_factor: SecondFactor | None = None
        self._cache: dict[tuple[str, ...], tuple[float, dict[str, Any]]] = {}
        self._cache_ttl = float(s["auth.cache_ttl"])
        self._touched: dict[str, float] = {}
        self._unsubscribe: list[Callable[[], None]] = []

    @classmethod
    async def open(cls, services: Services) -> AccountsService:
        service = cls(services, await _load_secret(services))
        services.accounts = service
        for provider in services.registry.all("auth"):
            service.providers[provider.name] = await await_me_maybe(provider.factory(services))
        for channel in (ACCOUNTS_CHANNEL, PERMISSIONS):
            service._unsubscribe.append(services.events.subscribe(channel, service._on_message))
        return service

    async def close(self) -> None:
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()

    # -- the credential cache --------------------------------------------------------------
    def _cached(self, key: tuple[str, ...]) -> dict[str, Any] | None:
        entry = self._cache.get(key)
        if entry is None:
            return None
        if entry[0] <= time.monotonic():
            self._cache.pop(key, None)
            return None
        return entry[1]

    def _remember(self, key: tuple[str, ...], row: Mapping[str, Any]) -> None:
        if self._cache_ttl <= 0:
            return
        if len(self._cache) >= CACHE_MAX:
            self._cache.clear()
        self._cache[key] = (time.monotonic() + self._cache_ttl, dict(row))

    def _on_message(self, message: Mapping[str, Any]) -> None:
        self._cache.clear()

    async def changed(self) -> None:
        """Users, sessions, keys or roles changed: forget every checked
        credential here at once, and on every other instance through the event
        bus. Call it after the change has committed."""
        self._cache.clear()
        try:
            await self.services.events.publish(ACCOUNTS_CHANNEL, {"clear": True})
        except Exception:
            log.warning("could not publish an accounts invalidation; other instances catch up within "
                        "auth.cache_ttl seconds")

    # -- who is calling ------------------------------------------------------------------
    async def authenticate(self, *, headers: Mapping[str, str], cookies: Mapping[str, str], method: str,
                           ip: str | None, user_agent: str | None, fresh: bool = False) -> Accountability:
        """The caller of one request: a Bearer access token or API key, else the
        browser session cookie, else anonymous. A bad or expired Bearer
        credential is 401 (never anonymous); a session cookie on an unsafe method
        needs its CSRF token in ``X-CSRF-Token`` (403 otherwise). A stale cookie is
        ignored, so a browser holding one can still sign in again. ``fresh``
        reads the database even when the credential was checked moments ago (the
        realtime hub checking open streams again after a revocation)."""
        header = headers.get("Authorization")
        if header is not None:
            scheme, _, token = header.strip().partition(" ")
            token = token.strip()
            if scheme.lower() != "bearer" or not token:
                raise InvalidCredentials("Send credentials as 'Authorization: Bearer <token>'")
            if token.startswith(API_KEY_PREFIX):
                return await self._by_api_key(token, ip, user_agent, fresh)
            claims = decode_access_token(self.secret, token)
            return await self._by_access_token(claims, ip, user_agent, fresh)
        cookie = cookies.get(self.settings["auth.cookie_name"])
        if cookie:
            acc = await self._by_cookie(cookie, method, headers, ip, user_agent, fresh)
            if acc is not None:
                return acc
        return Accountability.anonymous(ip=ip, user_agent=user_agent)

    def _user_select(self) -> sa.Select:
        return (sa.select(users, roles.c.admin_access)
                .select_from(users.outerjoin(roles, roles.c.id == users.c.role)))

    def _accountability(self, row: Mapping[str, Any], ip: str | None, user_agent: str | None,
                        **extra: Any) -> Accountability:
        if row["status"] != "active":
            raise InvalidCredentials("This account is not active")
        fields = {k: row[k] for k in users.c.keys() if k not in SECRET_COLUMNS}
        return Accountability(user=row["id"], role=row["role"] or "public", admin=bool(row["admin_access"]),
                              ip=ip, user_agent=user_agent, user_fields=fields, **extra)

    async def _by_access_token(self, claims: AccessClaims, ip: str | None, ua: str | None,
                               fresh: bool = False) -> Accountability:
        user, family = claims.user, claims.family
        key = ("access", user, family)
        row = None if fresh else self._cached(key)
        if row is None:
            live = sa.exists().where(sessions.c.family == family, sessions.c.user == users.c.id,
                                     sessions.c.revoked_at.is_(None))
            async with self.db.read() as conn:
                found = (await conn.execute(self._user_select().where(users.c.id == user, live))).mappings().first()
            if found is None:
                raise InvalidCredentials("This session has ended; sign in again")
            row = dict(found)
            self._remember(key, row)
        return self._accountability(row, ip, ua, expires_at=float(claims.expires))

    async def _by_api_key(self, token: str, ip: str | None, ua: str | None, fresh: bool = False) -> Accountability:
        query = (sa.select(api_keys.c.id.label("key_id"), api_keys.c.expires_at.label("key_expires_at"),
                           api_keys.c.revoked_at.label("key_revoked_at"),
                           api_keys.c.last_used_at.label("key_last_used_at"), api_keys.c.mcp_read_only,
                           api_keys.c.mcp_tools, users, roles.c.admin_access)
                 .select_from(api_keys.join(users, users.c.id == api_keys.c.user)
                              .outerjoin(roles, roles.c.id == users.c.role))
                 .where(api_keys.c.key_hash == sha256_hex(token)))
        key = ("key", sha256_hex(token))
        row = None if fresh else self._cached(key)
        if row is None:
            async with self.db.read() as conn:
                found = (await conn.execute(query)).mappings().first()
            if found is None or found["key_revoked_at"] is not None:
                raise InvalidCredentials("Invalid API key")
            row = dict(found)
            self._remember(key, row)
        t = now()
        if row["key_expires_at"] is not None and row["key_expires_at"] <= t:
            raise TokenExpired("API key expired")
        acc = self._accountability(row, ip, ua, api_key=row["key_id"], mcp_read_only=bool(row["mcp_read_only"]),
                                   mcp_tools=None if row["mcp_tools"] is None else tuple(row["mcp_tools"]),
                                   expires_at=_epoch(row["key_expires_at"]))
        last = row["key_last_used_at"]
        touched = self._touched.get(row["key_id"], 0.0)
        if (last is None or (t - last).total_seconds() >= API_KEY_TOUCH_SECONDS) and \
                time.monotonic() - touched >= API_KEY_TOUCH_SECONDS:
            # Throttled: at most one write per key per minute, not one per request.
            if len(self._touched) >= CACHE_MAX:
                self._touched.clear()
            self._touched[row["key_id"]] = time.monotonic()
            row["key_last_used_at"] = t
            async with self.db.transaction() as conn:
                await conn.execute(api_keys.update().where(api_keys.c.id == row["key_id"]).values(last_used_at=t))
        return acc

    async def _by_cookie(self, cookie: str, method: str, headers: Mapping[str, str], ip: str | None,
                         ua: str | None, fresh: bool = False) -> Accountability | None:
        key = ("cookie", sha256_hex(cookie))
        row = None if fresh else self._cached(key)
        if row is None:
            query = (self._user_select().add_columns(sessions.c.id.label("session_id"),
                                                     sessions.c.expires_at.label("session_expires_at"))
                     .join(sessions, sessions.c.user == users.c.id)
                     .where(sessions.c.token_hash == key[1], sessions.c.kind == "cookie",
                            sessions.c.revoked_at.is_(None)))
            async with self.db.read() as conn:
                found = (await conn.execute(query)).mappings().first()
            if found is None:
                return None
            row = dict(found)
            self._remember(key, row)
        if row["status"] != "active" or row["session_expires_at"] <= now():
            return None
        if method.upper() not in SAFE_METHODS:
            sent = headers.get(CSRF_HEADER, "")
            if not sent or not same(sent, csrf_token(self.secret, row["session_id"])):
                raise Forbidden(f"Missing or invalid CSRF token: send the {CSRF_COOKIE} cookie's value "
                                f"in the {CSRF_HEADER} header")
        return self._accountability(row, ip, ua, expires_at=_epoch(row["session_expires_at"]))

    # -- auth lifecycle hooks ----------------------------------------------------------
    async def auth_before(self, name: str, conn: AsyncConnection, *, user: str | None = None,
                          email: str | None = None, provider: str | None = None, ip: str | None = None,
                          user_agent: str | None = None, data: dict[str, Any] | None = None) -> AuthEvent:
        """Run the ``workeros_auth_before_<name>`` filter hooks inside the
        event's transaction (a hook refuses by raising) and return the event,
        which :meth:`auth_after` hands to the action hooks after the commit."""
        event = AuthEvent(name=name, services=self.services, accountability=self._actor(user, ip, user_agent),
                          user=user, email=email, provider=provider, data=data if data is not None else {},
                          connection=conn)
        hook = f"workeros_auth_before_{name}"
        if self.services.plugins.implemented(hook):
            await self.services.plugins.call_filters(hook, event=event)
        return event

    def auth_after(self, event: AuthEvent) -> None:
        """Start the ``workeros_auth_after_<name>`` action hooks once the event's
        transaction commits (never if it rolls back)."""
        hook = f"workeros_auth_after_{event.name}"
        plugins = self.services.plugins
        if event.connection is None or not plugins.implemented(hook):
            return
        after = replace(event, connection=None)
        spawn = self.services.background.spawn
        self.db.after_commit(event.connection, lambda: plugins.call_actions(hook, spawn, event=after))

    # -- sessions ------------------------------------------------------------------------
    async def issue_session(self, user: str, *, provider: str, ip: str | None = None,
                            user_agent: str | None = None, conn: AsyncConnection | None = None,
                            browser: bool = True) -> Session:
        """Sign ``user`` in: a new session family with an access token, a refresh
        token and (``browser``) a cookie session, and an ``auth.login`` activity
        row. Every auth provider ends here."""
        if conn is None:
            async with self.db.transaction() as tx:
                return await self.issue_session(user, provider=provider, ip=ip, user_agent=user_agent, conn=tx,
                                                browser=browser)
        event = await self.auth_before("login", conn, user=user, provider=provider, ip=ip, user_agent=user_agent)
        s = self.settings
        t = now()
        family = str(uuid.uuid4())
        refresh = random_token(REFRESH_PREFIX)
        common = {"user": user, "family": family, "provider": provider[:32], "created_at": t,
                  "ip": ip and ip[:64], "user_agent": user_agent and user_agent[:512]}
        rows = [{**common, "id": str(uuid.uuid4()), "kind": "refresh", "token_hash": sha256_hex(refresh),
                 "expires_at": t + dt.timedelta(seconds=s["auth.refresh_token_ttl"])}]
        cookie = csrf = ""
        if browser:
            cookie = random_token(SESSION_PREFIX)
            cookie_id = str(uuid.uuid4())
            csrf = csrf_token(self.secret, cookie_id)
            rows.append({**common, "id": cookie_id, "kind": "cookie", "token_hash": sha256_hex(cookie),
                         "expires_at": t + dt.timedelta(seconds=s["auth.session_ttl"])})
        # Expired sessions of this user are of no use to anyone: sweep them here.
        await conn.execute(sessions.delete().where(sessions.c.user == user, sessions.c.expires_at < t))
        await conn.execute(sessions.insert(), rows)
        await conn.execute(users.update().where(users.c.id == user).values(last_login_at=t))
        await activity.record(conn, action="auth.login", accountability=self._actor(user, ip, user_agent),
                              collection="wos_users", item=user, meta={"provider": provider}, timestamp=t)
        self.auth_after(event)
        access, _ = encode_access_token(self.secret, user=user, family=family, ttl=s["auth.access_token_ttl"])
        return Session(user=user, family=family, access_token=access, refresh_token=refresh,
                       expires=s["auth.access_token_ttl"] * 1000, cookie=cookie, csrf=csrf,
                       cookie_max_age=s["auth.session_ttl"])

    @staticmethod
    def _actor(user: str | None, ip: str | None, user_agent: str | None) -> Accountability:
        return Accountability(user=user, role=None, ip=ip, user_agent=user_agent, origin="auth")

    async def refresh(self, token: Any, *, ip: str | None = None, user_agent: str | None = None) -> Session:
        """Rotate a refresh token. A token that was already rotated (or revoked) is
        a replay: the whole family is revoked and the call is refused."""
        if not isinstance(token, str) or not token:
            raise InvalidPayload("refresh_token is required", field="refresh_token")
        s = self.settings
        replayed = False
        async with self.db.transaction() as conn:
            query = sa.select(sessions).where(sessions.c.token_hash == sha256_hex(token),
                                              sessions.c.kind == "refresh")
            query = self.db.for_update(query)
            row = (await conn.execute(query)).mappings().first()
            if row is None:
                raise InvalidCredentials("Invalid refresh token")
            t = now()
            if row["revoked_at"] is None and row["rotated_at"] is None and row["expires_at"] <= t:
                raise TokenExpired("Refresh token expired")
            rotated = 0
            if row["revoked_at"] is None and row["rotated_at"] is None:
                rotated = (await conn.execute(
                    sessions.update().where(sessions.c.id == row["id"], sessions.c.rotated_at.is_(None),
                                            sessions.c.revoked_at.is_(None)).values(rotated_at=t))).rowcount
            if rotated != 1:
                replayed = True
                await conn.execute(sessions.update().where(sessions.c.family == row["family"],
                                                           sessions.c.revoked_at.is_(None)).values(revoked_at=t))
                await activity.record(conn, action="auth.refresh_reuse", collection="wos_users", item=row["user"],
                                      accountability=self._actor(row["user"], ip, user_agent),
                                      meta={"family": row["family"]})
            else:
                user = (await conn.execute(sa.select(users.c.status).where(users.c.id == row["user"]))).first()
                if user is None or user.status != "active":
                    raise InvalidCredentials("This account is not active")
                refresh = random_token(REFRESH_PREFIX)
                await conn.execute(sessions.insert().values(
                    id=str(uuid.uuid4()), user=row["user"], family=row["family"], kind="refresh",
                    token_hash=sha256_hex(refresh), provider=row["provider"], created_at=t,
                    expires_at=t + dt.timedelta(seconds=s["auth.refresh_token_ttl"]),
                    ip=ip and ip[:64], user_agent=user_agent and user_agent[:512]))
                cookie_row = (await conn.execute(sa.select(sessions.c.id).where(
                    sessions.c.family == row["family"], sessions.c.kind == "cookie"))).first()
        if replayed:
            await self.changed()
            raise InvalidCredentials("Refresh token already used: the session has been revoked")
        access, _ = encode_access_token(self.secret, user=row["user"], family=row["family"],
                                        ttl=s["auth.access_token_ttl"])
        return Session(user=row["user"], family=row["family"], access_token=access, refresh_token=refresh,
                       expires=s["auth.access_token_ttl"] * 1000, cookie="",
                       csrf=csrf_token(self.secret, cookie_row.id) if cookie_row else "", cookie_max_age=0)

    async def refresh_cookie(self, cookie: Any, *, ip: str | None = None, user_agent: str | None = None) -> Session:
        """A new access token for the browser session of ``cookie`` (refresh in
        cookie mode: the refresh token never reaches page scripts). The cookie
        session itself is not rotated; ending it (logout) ends the family."""
        if not isinstance(cookie, str) or not cookie:
            raise InvalidPayload("refresh_token is required (or the session cookie)", field="refresh_token")
        s = self.settings
        query = (sa.select(sessions.c.id, sessions.c.user, sessions.c.family, sessions.c.expires_at, users.c.status)
                 .join(users, users.c.id == sessions.c.user)
                 .where(sessions.c.token_hash == sha256_hex(cookie), sessions.c.kind == "cookie",
                        sessions.c.revoked_at.is_(None)))
        async with self.db.read() as conn:
            row = (await conn.execute(query)).mappings().first()
        if row is None or row["expires_at"] <= now():
            raise InvalidCredentials("The session has ended; sign in again")
        if row["status"] != "active":
            raise InvalidCredentials("This account is not active")
        access, _ = encode_access_token(self.secret, user=row["user"], family=row["family"],
                                        ttl=s["auth.access_token_ttl"])
        return Session(user=row["user"], family=row["family"], access_token=access, refresh_token="",
                       expires=s["auth.access_token_ttl"] * 1000, cookie="",
                       csrf=csrf_token(self.secret, row["id"]), cookie_max_age=0)

    async def logout(self, *, refresh_token: str | None = None, access_token: str | None = None,
                     cookie: str | None = None, ip: str | None = None, user_agent: str | None = None) -> None:
        """End one session (its whole family), found by whichever credential the
        caller sent. Nothing recognisable → 401."""
        family: str | None = None
        async with self.db.transaction() as conn:
            for token, kind in ((refresh_token, "refresh"), (cookie, "cookie")):
                if family is None and token:
                    found = (await conn.execute(sa.select(sessions.c.family).where(
                        sessions.c.token_hash == sha256_hex(token), sessions.c.kind == kind))).first()
                    family = found.family if found else None
            if family is None and access_token and not access_token.startswith(API_KEY_PREFIX):
                family = decode_access_token(self.secret, access_token).family
            if family is None:
                raise InvalidCredentials("No session to end")
            owner = (await conn.execute(sa.select(sessions.c.user).where(sessions.c.family == family))).first()
            event = await self.auth_before("logout", conn, user=owner.user if owner else None, ip=ip,
                                           user_agent=user_agent)
            await conn.execute(sessions.update().where(sessions.c.family == family,
                                                       sessions.c.revoked_at.is_(None)).values(revoked_at=now()))
            if owner is not None:
                await activity.record(conn, action="auth.logout", collection="wos_users", item=owner.user,
                                      accountability=self._actor(owner.user, ip, user_agent))
            self.auth_after(event)
        await self.changed()

    async def list_sessions(self, acc: Accountability) -> list[dict[str, Any]]:
        """The caller's live sign-ins (one per family), newest activity first:
        ``id`` (the family), ``provider``, ``created_at``, ``last_active_at`` (the
        last sign-in or refresh), ``expires_at``, ``ip``, ``user_agent``, and
        ``browser`` (whether it has a cookie session)."""
        if acc.user is None:
            raise InvalidCredentials("Not signed in")
        query = (sa.select(sessions).where(sessions.c.user == acc.user, sessions.c.revoked_at.is_(None),
                                           sessions.c.expires_at > now())
                 .order_by(sessions.c.created_at, sessions.c.id))
        async with self.db.read() as conn:
            rows = (await conn.execute(query)).mappings().all()
        families: dict[str, dict[str, Any]] = {}
        for row in rows:
            entry = families.setdefault(row["family"], {
                "id": row["family"], "provider": row["provider"], "created_at": row["created_at"],
                "expires_at": row["expires_at"], "browser": False})
            entry.update(last_active_at=row["created_at"], ip=row["ip"], user_agent=row["user_agent"])
            entry["expires_at"] = max(entry["expires_at"], row["expires_at"])
            entry["browser"] = entry["browser"] or row["kind"] == "cookie"
        return sorted(families.values(), key=lambda e: e["last_active_at"], reverse=True)

    async def end_session(self, acc: Accountability, family: str) -> None:
        """End one of the caller's sign-ins ("sign out that device")."""
        if acc.user is None:
            raise InvalidCredentials("Not signed in")
        async with self.db.transaction() as conn:
            event = await self.auth_before("logout", conn, user=acc.user, ip=acc.ip, user_agent=acc.user_agent)
            result = await conn.execute(sessions.update().where(
                sessions.c.family == family, sessions.c.user == acc.user, sessions.c.revoked_at.is_(None))
                .values(revoked_at=now()))
            if result.rowcount == 0:
                raise NotFound("Session not found")
            await activity.record(conn, action="auth.logout", collection="wos_users", item=acc.user,
                                  accountability=acc, meta={"family": family})
            self.auth_after(event)
        await self.changed()

    async def revoke_sessions(self, conn: AsyncConnection, user: str) -> None:
        """End every session of ``user`` (password change, reset, suspension)."""
        await conn.execute(sessions.update().where(sessions.c.user == user, sessions.c.revoked_at.is_(None))
                           .values(revoked_at=now()))

    # -- sign-in with a password ---------------------------------------------------------
    async def password_login(self, email: Any, password: Any, *, otp: str | None = None, ip: str | None = None,
                             user_agent: str | None = None, browser: bool = True) -> Session:
        """Verify email + password (and the second factor, if enrolled); issue a
        session. Rate-limited per account and per IP; every failure writes an
        ``auth.login_failed`` activity row and answers the same 401."""
        if not isinstance(email, str) or not isinstance(password, str) or not email or not password:
            raise InvalidPayload("email and password are required")
        email = email.strip().lower()
        await self.limiter.hit("login", account=email, ip=ip)
        async with self.db.read() as conn:
            row = (await conn.execute(self._user_select().where(users.c.email == email))).mappings().first()
        ok = await self.passwords.verify(row["password_hash"] if row else None, password[:4096])
        if row is None or not ok or row["status"] != "active":
            await self._login_failed(row["id"] if row else None, email, ip, user_agent, "credentials")
            raise InvalidCredentials("Invalid email or password")
        if self.settings["auth.email_verification"] and not row["email_verified"]:
            raise InvalidCredentials("Confirm your email address first", reason="email_not_verified")
        try:
            await self.check_second_factor(row, otp)
        except InvalidCredentials:
            await self._login_failed(row["id"], email, ip, user_agent, "otp")
            raise
        # Hash outside the write transaction: never hold SQLite's write lock for it.
        rehashed = await self.passwords.hash(password) if self.passwords.needs_rehash(row["password_hash"]) else None
        async with self.db.transaction() as conn:
            if rehashed is not None:
                await conn.execute(users.update().where(users.c.id == row["id"]).values(password_hash=rehashed))
            return await self.issue_session(row["id"], provider="password", ip=ip, user_agent=user_agent, conn=conn,
                                            browser=browser)

    async def check_second_factor(self, user: Mapping[str, Any], otp: str | None) -> None:
        """For a user with TOTP enrolled, check ``otp`` (401 with ``reason``
        ``otp_required`` or ``otp_invalid``). Call it outside any write
        transaction: it counts attempts."""
        if not user["totp_enabled"]:
            return
        if self.second_factor is None:
            raise InvalidCredentials("This account needs a second factor, which this server cannot check")
        await self.second_factor(user, otp)

    async def user_row(self, user: str) -> dict[str, Any] | None:
        """The full row of ``user`` with its role's ``admin_access`` (secrets
        included: never hand it to a caller)."""
        async with self.db.read() as conn:
            row = (await conn.execute(self._user_select().where(users.c.id == user))).mappings().first()
        return dict(row) if row else None

    async def _login_failed(self, user: str | None, email: str, ip: str | None, ua: str | None,
                            reason: str) -> None:
        async with self.db.transaction() as conn:
            await activity.record(conn, action="auth.login_failed", collection="wos_users", item=user,
                                  accountability=self._actor(user, ip, ua),
                                  meta={"email": email[:255], "reason": reason})

    # -- users ---------------------------------------------------------------------------
    async def sign_up(self, data: Any, *, ip: str | None = None, user_agent: str | None = None) -> dict[str, Any]:
        """Create an account. The very first user becomes admin: the user count
        and the insert share one transaction, serialised by an advisory lock on
        PostgreSQL and by the write lock on SQLite, so two simultaneous first
        sign-ups cannot both win. Later users get ``auth.default_role``."""
        if not isinstance(data, Mapping):
            raise InvalidPayload("Expected an object {email, password}")
        email = normalize_email(data.get("email"))
        await self.limiter.hit("sign_up", account=email, ip=ip)
        password = self.check_password(data.get("password"), email)
        extra = {k: short_str(data[k], k) for k in ("first_name", "last_name") if data.get(k) is not None}
        password_hash = await self.passwords.hash(password)
        invite = data.get("invite")
        verify = self.settings["auth.email_verification"]
        user_id = str(uuid.uuid4())
        async with self.db.transaction() as conn:
            await self.db.lock(conn, USERS_LOCK_KEY)
            count = (await conn.execute(sa.select(sa.func.count()).select_from(users))).scalar_one()
            role = self.settings["auth.default_role"]
            mode = self.settings["auth.sign_up"]
            if count == 0:
                role = "admin"
            elif mode == "closed":
                raise Forbidden("Sign-up is closed")
            elif mode == "invite" and invite is None:
                raise Forbidden("Sign-up needs an invitation")
            elif invite is not None:
                token = await self.consume_token(conn, "invite", invite, email=email)
                role = (token["meta"] or {}).get("role", role)
            exists = (await conn.execute(sa.select(users.c.id).where(users.c.email == email))).first()
            if exists is not None:
                raise Conflict("An account with this email already exists")
            if role is not None and (await conn.execute(sa.select(roles.c.id).where(roles.c.id == role))
                                     ).first() is None:
                log.error("sign-up refused: role %r (auth.default_role or the invitation's) does not exist", role)
                raise ServiceUnavailable("Sign-up is misconfigured: the role for new users does not exist")
            event = await self.auth_before("signup", conn, email=email, provider="password", ip=ip,
                                           user_agent=user_agent, data=extra)
            extra = {k: short_str(event.data[k], k) for k in ("first_name", "last_name")
                     if event.data.get(k) is not None}
            values = {"id": user_id, "email": email, "password_hash": password_hash, "role": role,
                      "status": "active", "email_verified": count == 0 or invite is not None,
                      "created_at": now(), **extra}
            await conn.execute(users.insert().values(**values))
            await activity.record(conn, action="auth.sign_up", collection="wos_users", item=user_id,
                                  accountability=self._actor(user_id, ip, user_agent), meta={"role": role})
            event.user = user_id
            self.auth_after(event)
            url = None
            if verify and not values["email_verified"]:
                url = await self._link_token(conn, "verify_email", user_id, email, "auth.verify_url",
                                             "/api/auth/verify-email")
        if url is not None:
            await self.send(mail.verify_email(email, url, self.settings["auth.token_ttl"] // 60))
        return await self.get_user(Accountability.system(), user_id)



def _epoch(value: dt.datetime | None) -> float | None:
    return None if value is None else value.timestamp()


async def _load_secret(services: Services) -> str:
    """``auth.secret``, else the generated one kept in ``wos_settings`` (made on
    first start; the insert is a no-op when another instance won the race)."""
    configured = services.settings["auth.secret"]
    if configured:
        if len(configured) < 32:
            log.warning("auth.secret is shorter than 32 characters")
        return configured
    db = services.db
    async with db.read() as conn:
        value = (await conn.execute(sa.select(settings_table.c.value)
                                    .where(settings_table.c.key == SECRET_SETTING))).scalar_one_or_none()
    if isinstance(value, str) and value:
        return value
    async with db.transaction() as conn:
        await conn.execute(db.insert(settings_table).values(key=SECRET_SETTING, value=random_token(nbytes=48),
                                                         updated_at=now()).on_conflict_do_nothing())
        return (await conn.execute(sa.select(settings_table.c.value)
                                   .where(settings_table.c.key == SECRET_SETTING))).scalar_one()

