"""Users, sessions (refresh tokens), API keys, one-time tokens, rate limits."""

from __future__ import annotations

import sqlalchemy as sa

from workeros.db.tables import metadata, utc_datetime

users = sa.Table(
    "wos_users",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("email", sa.String(255), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(255)),
    sa.Column("role", sa.String(36), sa.ForeignKey("wos_roles.id", ondelete="SET NULL")),
    sa.Column("status", sa.String(16), nullable=False, server_default="active"),
    sa.Column("first_name", sa.String(128)),
    sa.Column("last_name", sa.String(128)),
    sa.Column("email_verified", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("totp_secret", sa.String(64)),
    sa.Column("totp_enabled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("created_at", utc_datetime(), nullable=False),
    sa.Column("last_login_at", utc_datetime()),
    sa.Column("meta", sa.JSON),
)

sessions = sa.Table(
    "wos_sessions",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("user", sa.String(36), sa.ForeignKey("wos_users.id", ondelete="CASCADE"), nullable=False,
              index=True),
    sa.Column("family", sa.String(36), nullable=False, index=True),
    # "refresh" (a rotating refresh token) or "cookie" (a browser session).
    sa.Column("kind", sa.String(16), nullable=False, server_default="refresh"),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("provider", sa.String(32)),
    sa.Column("created_at", utc_datetime(), nullable=False),
    sa.Column("expires_at", utc_datetime(), nullable=False),
    sa.Column("rotated_at", utc_datetime()),
    sa.Column("revoked_at", utc_datetime()),
    sa.Column("ip", sa.String(64)),
    sa.Column("user_agent", sa.String(512)),
)

api_keys = sa.Table(
    "wos_api_keys",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("user", sa.String(36), sa.ForeignKey("wos_users.id", ondelete="CASCADE"), nullable=False,
              index=True),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("created_at", utc_datetime(), nullable=False),
    sa.Column("expires_at", utc_datetime()),
    sa.Column("revoked_at", utc_datetime()),
    sa.Column("last_used_at", utc_datetime()),
    sa.Column("mcp_read_only", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("mcp_tools", sa.JSON),
)

one_time_tokens = sa.Table(
    "wos_one_time_tokens",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("user", sa.String(36), sa.ForeignKey("wos_users.id", ondelete="CASCADE")),
    sa.Column("email", sa.String(255)),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", utc_datetime(), nullable=False),
    sa.Column("expires_at", utc_datetime(), nullable=False),
    sa.Column("used_at", utc_datetime()),
    sa.Column("meta", sa.JSON),
    sa.Index("ix_wos_one_time_tokens_kind_email", "kind", "email"),
)

rate_limits = sa.Table(
    "wos_rate_limits",
    metadata,
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("window_start", sa.BigInteger, primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
)
