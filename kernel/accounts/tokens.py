"""Credentials: random tokens and their stored hashes, signed access tokens (JWT,
HS256), CSRF tokens bound to a cookie session, and password hashing (argon2id).

Nothing secret is stored in the clear: refresh tokens, cookie sessions, API keys
and one-time tokens are kept as SHA-256 digests (they are long random strings, so
a fast hash is enough); short codes (email OTP) are kept as an HMAC keyed with the
server secret, so a leaked table cannot be brute-forced offline.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from workeros.errors import InvalidCredentials, TokenExpired

API_KEY_PREFIX = "pak_"
REFRESH_PREFIX = "wrt_"
SESSION_PREFIX = "wss_"
ONE_TIME_PREFIX = "wot_"
ALGORITHM = "HS256"


def random_token(prefix: str = "", nbytes: int = 32) -> str:
    """A URL-safe random token with ``prefix``."""
    return prefix + secrets.token_urlsafe(nbytes)


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def keyed_hash(secret: str, *parts: str) -> str:
    """HMAC-SHA256 of ``parts`` (joined by NUL) keyed with ``secret``, hex."""
    message = "\x00".join(parts).encode("utf-8")
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def same(a: str, b: str) -> bool:
    """Constant-time string comparison."""
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def numeric_code(digits: int = 6) -> str:
    return f"{secrets.randbelow(10 ** digits):0{digits}d}"


# -- access tokens ---------------------------------------------------------------------

@dataclass(frozen=True)
class AccessClaims:
    user: str
    family: str
    expires: int


def encode_access_token(secret: str, *, user: str, family: str, ttl: int) -> tuple[str, int]:
    """A signed access token for ``user`` in session ``family``; return it and its
    expiry (epoch seconds)."""
    import jwt  # PyJWT loads cryptography's EC/RSA bindings (~10 MB): at the first token

    now = int(time.time())
    exp = now + ttl
    token = jwt.encode({"sub": user, "sid": family, "iat": now, "exp": exp, "typ": "access",
                        "iss": "workeros"}, secret, algorithm=ALGORITHM)
    return token, exp


def decode_access_token(secret: str, token: str) -> AccessClaims:
    """Verify ``token``. Expired → :class:`TokenExpired`; anything else wrong →
    :class:`InvalidCredentials`."""
    import jwt

    try:
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM], issuer="workeros",
                            options={"require": ["sub", "sid", "exp", "iat"]})
    except jwt.ExpiredSignatureError:
        raise TokenExpired("Access token expired") from None
    except jwt.PyJWTError:
        raise InvalidCredentials("Invalid access token") from None
    if claims.get("typ") != "access" or not isinstance(claims["sub"], str) or not isinstance(claims["sid"], str):
        raise InvalidCredentials("Invalid access token")
    return AccessClaims(user=claims["sub"], family=claims["sid"], expires=int(claims["exp"]))


def looks_like_jwt(token: str) -> bool:
    return token.count(".") == 2


# -- CSRF ------------------------------------------------------------------------------

def csrf_token(secret: str, session_id: str) -> str:
    """The CSRF token of one cookie session: an HMAC of its id. The browser reads
    it from the ``wos_csrf`` cookie (not HttpOnly) and echoes it in the
    ``X-CSRF-Token`` header; another site can neither read the cookie nor compute
    the value."""
    return keyed_hash(secret, "csrf", session_id)


# -- passwords -------------------------------------------------------------------------

class Passwords:
    """argon2id hashing, off the event loop (hashing takes tens of milliseconds
    by design)."""

    def __init__(self, *, time_cost: int = 3, memory_kib: int = 65536, parallelism: int = 1) -> None:
        self.hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)
        self._dummy: str | None = None

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self.hasher.hash, password)

    async def verify(self, stored: str | None, password: str) -> bool:
        """True when ``password`` matches ``stored``. With no stored hash (unknown
        user, or a user without a password) a dummy hash is still verified, so
        the answer takes as long either way."""
        if not stored:
            if self._dummy is None:
                self._dummy = await self.hash(secrets.token_hex(16))
            stored = self._dummy
            password = password + "\x00never"
        try:
            return await asyncio.to_thread(self.hasher.verify, stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        try:
            return self.hasher.check_needs_rehash(stored)
        except InvalidHashError:
            return True

