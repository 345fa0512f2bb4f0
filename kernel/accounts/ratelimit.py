"""Rate limits on sign-in and mail-sending actions, counted in the database.

Fixed windows: a counter per (key, window start) in ``wos_rate_limits``, bumped by
one atomic upsert (``INSERT … ON CONFLICT DO UPDATE … RETURNING count``) on both
dialects, so every instance sharing one PostgreSQL database counts against the
same limit. A rule limits per account (the email, hashed) and per client IP; a
request over either limit is refused with 429 ``RATE_LIMITED`` and a
``Retry-After`` of the seconds left in the window. A fixed window lets through at
most twice the limit across a window boundary; that bound is what the settings
mean.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Protocol

import sqlalchemy as sa

from workeros.accounts.tokens import sha256_hex
from workeros.db.database import Database
from workeros.db.tables.accounts import rate_limits
from workeros.errors import RateLimited
from workeros.hookspecs.lifecycle import ConfigKey

#: rule -> (per account, per IP, window seconds). 0 disables that limit.
DEFAULT_RULES: dict[str, tuple[int, int, int]] = {
    "login": (10, 50, 300),
    "sign_up": (5, 20, 3600),
    "password_reset": (5, 20, 3600),
    "magic_link": (5, 20, 3600),
    "otp": (5, 20, 600),
    "otp_verify": (10, 50, 600),
}

_CLEANUP_EVERY = 300.0


def config_keys() -> list[ConfigKey]:
    keys = [ConfigKey("ratelimit.enabled", "bool", True, "Rate-limit sign-in and mail-sending actions")]
    for rule, (account, ip, window) in DEFAULT_RULES.items():
        keys += [
            ConfigKey(f"ratelimit.{rule}.per_account", "int", account,
                      f"Most {rule.replace('_', ' ')} requests per account per window (0: no limit)"),
            ConfigKey(f"ratelimit.{rule}.per_ip", "int", ip,
                      f"Most {rule.replace('_', ' ')} requests per client IP per window (0: no limit)"),
            ConfigKey(f"ratelimit.{rule}.window", "int", window,
                      f"Window of the {rule.replace('_', ' ')} limits, in seconds"),
        ]
    return keys


class CounterStore(Protocol):
    """Where counters live. The default is the database; another store (Redis)
    can replace it: ``services.accounts.limiter.store = MyStore()``."""

    async def bump(self, keys: Sequence[str], window_start: int, window: int) -> list[int]:
        """Add one to each key's counter for the window starting at
        ``window_start`` (epoch seconds, ``window`` long), atomically; return the
        new counts in order."""
        ...

    async def forget(self, key: str) -> None:
        """Drop every counter of ``key``."""
        ...


class DatabaseStore:
    """Counters in ``wos_rate_limits``: one atomic upsert per key, shared by
    every instance on the database; old windows are swept every few minutes."""

    def __init__(self, db: Database, settings: object) -> None:
        self.db = db
        self.settings = settings
        self._last_cleanup = 0.0

    async def bump(self, keys: Sequence[str], window_start: int, window: int) -> list[int]:
        counts = []
        async with self.db.transaction() as conn:
            for key in keys:
                stmt = self.db.insert(rate_limits).values(key=key, window_start=window_start, count=1)
                stmt = stmt.on_conflict_do_update(
                    index_elements=[rate_limits.c.key, rate_limits.c.window_start],
                    set_={"count": rate_limits.c.count + 1},
                ).returning(rate_limits.c.count)
                counts.append(int((await conn.execute(stmt)).scalar_one()))
        await self._maybe_cleanup(time.time())
        return counts

    async def forget(self, key: str) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(rate_limits.delete().where(rate_limits.c.key == key))

    async def _maybe_cleanup(self, now: float) -> None:
        """Drop counters of windows long past, at most every few minutes per process."""
        if now - self._last_cleanup < _CLEANUP_EVERY:
            return
        self._last_cleanup = now
        longest = max(self.settings[f"ratelimit.{r}.window"] for r in DEFAULT_RULES)  # type: ignore[index]
        async with self.db.transaction() as conn:
            await conn.execute(sa.delete(rate_limits).where(rate_limits.c.window_start < int(now) - 2 * longest))


class RateLimiter:
    """Counts hits of a rule and refuses those over its limits."""

    def __init__(self, db: object, settings: object) -> None:
        self.settings = settings
        self.store: CounterStore = DatabaseStore(db, settings)

    def _rule(self, rule: str) -> tuple[int, int, int]:
        s = self.settings
        return (s[f"ratelimit.{rule}.per_account"], s[f"ratelimit.{rule}.per_ip"],  # type: ignore[index]
                max(1, s[f"ratelimit.{rule}.window"]))  # type: ignore[index]

    async def hit(self, rule: str, *, account: str | None = None, ip: str | None = None) -> None:
        """Count one request for ``rule`` by ``account`` (an email, any case) from
        ``ip``; raise :class:`RateLimited` when either count is over its limit.
        The count is committed whatever the request then does."""
        if not self.settings["ratelimit.enabled"]:  # type: ignore[index]
            return
        per_account, per_ip, window = self._rule(rule)
        keys: list[tuple[str, int]] = []
        if account and per_account > 0:
            keys.append((f"{rule}:a:{sha256_hex(account.strip().lower())[:40]}", per_account))
        if ip and per_ip > 0:
            keys.append((f"{rule}:i:{ip[:64]}", per_ip))
        if not keys:
            return
        now = time.time()
        start = int(now // window * window)
        counts = await self.store.bump([k for k, _ in keys], start, window)
        for (_, limit), count in zip(keys, counts, strict=True):
            if count > limit:
                raise RateLimited("Too many attempts; try again later", retry_after=int(start + window - now) + 1)

    async def reset(self, rule: str, *, account: str) -> None:
        """Forget ``account``'s count for ``rule``."""
        await self.store.forget(f"{rule}:a:{sha256_hex(account.strip().lower())[:40]}")
