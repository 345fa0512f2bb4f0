"""Who is calling: passed to every service call, from every way in."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class Accountability:
    """The caller of a service.

    ``user`` and ``role`` are ids (``None`` for anonymous callers, who act with the
    ``public`` role). ``admin`` bypasses permissions. ``api_key`` is the id of the
    API key used, if any, with its MCP guards. ``user_fields`` holds the user's own
    row for ``$user.<field>`` filter variables. ``expires_at`` (epoch seconds)
    is when the credential the caller signed in with ends (an access token's
    expiry, an API key's ``expires_at``, a session cookie's end), ``None`` when
    there is none: open streams end then (docs/realtime.md).
    """

    user: str | None = None
    role: str | None = "public"
    admin: bool = False
    api_key: str | None = None
    mcp_read_only: bool = False
    mcp_tools: tuple[str, ...] | None = None
    ip: str | None = None
    user_agent: str | None = None
    origin: str = "rest"
    user_fields: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
    expires_at: float | None = field(default=None, compare=False, hash=False)

    @classmethod
    def anonymous(cls, **kw: Any) -> Accountability:
        return cls(user=None, role="public", admin=False, **kw)

    @classmethod
    def system(cls, **kw: Any) -> Accountability:
        """The kernel itself (migrations, restores, imports run by the operator)."""
        return cls(user=None, role="admin", admin=True, origin="system", **kw)

    @property
    def is_anonymous(self) -> bool:
        return self.user is None and not self.admin

    def with_origin(self, origin: str) -> Accountability:
        return replace(self, origin=origin)
