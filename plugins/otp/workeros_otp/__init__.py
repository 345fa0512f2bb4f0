"""One-time codes.

Email code sign-in:
    ``POST /api/auth/otp/request {email}`` mails a 6-digit code (204 whether or not
    the account exists); ``POST /api/auth/otp/verify {email, code, otp?}`` signs in
    like a password login. A code works once, expires after ``otp.ttl`` seconds,
    and dies after ``otp.max_attempts`` wrong tries; a new request voids the older
    code. Codes are stored as an HMAC keyed with the server secret.

TOTP second factor (RFC 6238, any authenticator app), for a signed-in user:
    ``POST /api/auth/otp/totp/enrol`` → ``{secret, otpauth_url}`` (not active yet);
    ``POST /api/auth/otp/totp/enable {code}`` turns it on;
    ``POST /api/auth/otp/totp/disable {code}`` turns it off.
    Once on, every sign-in (password, magic link, email code) also needs ``otp``.
    Wrong codes count against the ``otp_verify`` rate limit, and each code is
    accepted once (a replayed code is refused, on every instance).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from workeros.api import (
    Conflict,
    InvalidCredentials,
    InvalidPayload,
    accountability,
    client,
    keyed_hash,
    mail,
    no_content,
    normalize_email,
    ok,
    read_object,
    services,
    session_response,
    wants_cookies,
)
from workeros.hookspecs import hookimpl
from workeros.hookspecs.auth import AuthProvider
from workeros.hookspecs.lifecycle import ConfigKey

KIND = "email_otp"
USED_KIND = "totp_used"
ISSUER = "workeros"
routes = web.RouteTableDef()


# -- email codes -------------------------------------------------------------------------

async def request_code(accounts: Any, email: Any, *, ip: str | None, user_agent: str | None) -> None:
    await accounts.start_challenge(KIND, email, rule="otp", ttl=accounts.settings["otp.ttl"],
                                   message=mail.one_time_code, code_digits=6, ip=ip, user_agent=user_agent)


async def verify_code(accounts: Any, email: Any, code: Any, *, otp: str | None, ip: str | None,
                      user_agent: str | None, browser: bool = True) -> Any:
    email = normalize_email(email)
    if not isinstance(code, str) or not code.isdigit() or len(code) != 6:
        raise InvalidPayload("code must be 6 digits", field="code")
    return await accounts.verify_challenge(KIND, provider="otp", email=email, code=code, rule="otp_verify",
                                           max_attempts=accounts.settings["otp.max_attempts"], otp=otp, ip=ip,
                                           user_agent=user_agent, browser=browser)


# -- TOTP --------------------------------------------------------------------------------

def make_second_factor(accounts: Any) -> Any:
    async def check(user: Mapping[str, Any], otp: str | None) -> None:
        if not otp:
            raise InvalidCredentials("A one-time code from your authenticator app is required",
                                     reason="otp_required")
        await accounts.limiter.hit("otp_verify", account=user["email"])
        if not await use_totp(accounts, user, otp):
            raise InvalidCredentials("Invalid one-time code", reason="otp_invalid")

    return check


def totp_step(secret: str | None, code: Any) -> int | None:
    """The 30-second step ``code`` belongs to (now, or one step either side),
    or None when it matches none."""
    import pyotp

    if not secret or not isinstance(code, str) or not code.isdigit() or len(code) != 6:
        return None
    totp = pyotp.TOTP(secret)
    now_ts = time.time()
    for offset in (0, -1, 1):
        at = now_ts + offset * totp.interval
        if hmac.compare_digest(totp.at(at), code):
            return int(at // totp.interval)
    return None


async def use_totp(accounts: Any, user: Mapping[str, Any], code: Any) -> bool:
    """Check a TOTP code and use it up: each (user, step) is accepted once, even
    across instances (a row keyed by its hash in ``wos_one_time_tokens``, whose
    unique index refuses a second use)."""
    step = totp_step(user["totp_secret"], code)
    if step is None:
        return False
    marker = keyed_hash(accounts.secret, "totp-used", user["id"], str(step))
    return await accounts.use_once(USED_KIND, user["id"], marker, ttl=180)


async def _signed_in_user(request: web.Request) -> dict[str, Any]:
    acc = accountability(request)
    if acc.user is None:
        raise InvalidCredentials("Not signed in")
    user = await services(request).accounts.user_row(acc.user)
    if user is None:
        raise InvalidCredentials("Not signed in")
    return user


@routes.post("/otp/request")
async def request_route(request: web.Request) -> web.Response:
    data = await read_object(request)
    await request_code(services(request).accounts, data.get("email"), **client(request))
    return no_content()


@routes.post("/otp/verify")
async def verify_route(request: web.Request) -> web.Response:
    data = await read_object(request)
    otp = data.get("otp")
    cookies = wants_cookies(data)
    session = await verify_code(services(request).accounts, data.get("email"), data.get("code"),
                                otp=otp if isinstance(otp, str) else None, browser=cookies, **client(request))
    return session_response(request, session, cookies=cookies)


@routes.post("/otp/totp/enrol")
async def enrol(request: web.Request) -> web.Response:
    import pyotp

    user = await _signed_in_user(request)
    if user["totp_enabled"]:
        raise Conflict("A second factor is already enabled; disable it first")
    secret = pyotp.random_base32()
    accounts = services(request).accounts
    await accounts.set_second_factor(user["id"], secret=secret)
    url = pyotp.TOTP(secret).provisioning_uri(name=user["email"], issuer_name=accounts.settings["otp.issuer"])
    return ok({"secret": secret, "otpauth_url": url})


async def _switch(request: web.Request, enable: bool) -> web.Response:
    user = await _signed_in_user(request)
    data = await read_object(request)
    accounts = services(request).accounts
    if enable and user["totp_enabled"]:
        raise Conflict("The second factor is already enabled")
    if not enable and not user["totp_enabled"]:
        raise Conflict("No second factor is enabled")
    if not user["totp_secret"]:
        raise Conflict("Enrol first: POST /api/auth/otp/totp/enrol")
    await accounts.limiter.hit("otp_verify", account=user["email"], ip=request.remote)
    if not await use_totp(accounts, user, data.get("code")):
        raise InvalidCredentials("Invalid one-time code", reason="otp_invalid")
    await accounts.set_second_factor(user["id"], secret=user["totp_secret"] if enable else None, enabled=enable,
                                     accountability=accountability(request))
    return ok({"totp_enabled": enable})


@routes.post("/otp/totp/enable")
async def enable_route(request: web.Request) -> web.Response:
    return await _switch(request, True)


@routes.post("/otp/totp/disable")
async def disable_route(request: web.Request) -> web.Response:
    return await _switch(request, False)


def _install(services: Any) -> Any:
    """Make TOTP the accounts service's second factor."""
    services.accounts.second_factor = make_second_factor(services.accounts)
    return None


@hookimpl
def workeros_register_config_keys() -> list[ConfigKey]:
    return [
        ConfigKey("otp.ttl", "int", 600, "How long an emailed sign-in code works, in seconds"),
        ConfigKey("otp.max_attempts", "int", 5, "Wrong tries after which an emailed code stops working"),
        ConfigKey("otp.issuer", "str", ISSUER, "Issuer name shown by authenticator apps"),
    ]


@hookimpl
def workeros_register_auth_providers() -> list[AuthProvider]:
    return [AuthProvider(name="otp", kind="challenge", routes=lambda: routes, factory=_install,
                         description="Email one-time codes and TOTP second factor",
                         start_url="/api/auth/otp/request")]
