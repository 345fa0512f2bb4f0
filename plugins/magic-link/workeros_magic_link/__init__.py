"""Magic links: sign in with a one-time link sent by email.

``POST /api/auth/magic-link {email}`` mails a link (the answer is 204 whether or
not the account exists; 429 past the ``magic_link`` rate limits; 503 without an
email backend). The link opens ``magic_link.url`` (default
``<server.public_url>/api/auth/magic-link/verify``) with ``?token=``;
``GET`` or ``POST /api/auth/magic-link/verify`` (``{token, otp?}``) signs in and
answers like a password login. A link works once and expires after
``magic_link.ttl`` seconds; asking for a new link voids the older one. Users with
a TOTP second factor must also send ``otp`` (POST), and a failed second factor
does not use the link up.

Mail scanners that open links can use a GET link up before the user does: point
``magic_link.url`` at a page of your front end that POSTs the token instead.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from workeros.api import client, mail, no_content, read_object, services, session_response, wants_cookies
from workeros.hookspecs import hookimpl
from workeros.hookspecs.auth import AuthProvider
from workeros.hookspecs.lifecycle import ConfigKey

KIND = "magic_link"
routes = web.RouteTableDef()


async def request_link(accounts: Any, email: Any, *, ip: str | None, user_agent: str | None) -> None:
    def message(to: str, token: str, minutes: int) -> Any:
        url = accounts.url_for("magic_link.url", "/api/auth/magic-link/verify", token=token)
        return mail.magic_link(to, url, minutes)

    await accounts.start_challenge(KIND, email, rule="magic_link", ttl=accounts.settings["magic_link.ttl"],
                                   message=message, ip=ip, user_agent=user_agent)


async def verify(accounts: Any, token: Any, *, otp: str | None, ip: str | None, user_agent: str | None,
                 browser: bool = True) -> Any:
    """Use the link once and sign its user in (following it proves the address).
    The second factor (if enrolled) is checked before the link is used up."""
    return await accounts.verify_challenge(KIND, provider="magic-link", token=token, otp=otp, ip=ip,
                                           user_agent=user_agent, browser=browser)


@routes.post("/magic-link")
async def request_route(request: web.Request) -> web.Response:
    data = await read_object(request)
    await request_link(services(request).accounts, data.get("email"), **client(request))
    return no_content()


@routes.get("/magic-link/verify")
async def verify_get(request: web.Request) -> web.Response:
    session = await verify(services(request).accounts, request.query.get("token"), otp=None, **client(request))
    return session_response(request, session)


@routes.post("/magic-link/verify")
async def verify_post(request: web.Request) -> web.Response:
    data = await read_object(request)
    otp = data.get("otp")
    cookies = wants_cookies(data)
    session = await verify(services(request).accounts, data.get("token"), otp=otp if isinstance(otp, str) else None,
                           browser=cookies, **client(request))
    return session_response(request, session, cookies=cookies)


@hookimpl
def workeros_register_config_keys() -> list[ConfigKey]:
    return [
        ConfigKey("magic_link.ttl", "int", 900, "How long a sign-in link works, in seconds"),
        ConfigKey("magic_link.url", "str", None, "Page the link opens, given ?token= "
                  "(default: <server.public_url>/api/auth/magic-link/verify)"),
    ]


def _ready(svc: Any) -> str | None:
    """Why a sign-in link cannot be sent here, or None."""
    if svc.mailer is None:
        return "no email backend is configured (set smtp.host)"
    if not svc.settings["magic_link.url"] and not svc.settings["server.public_url"]:
        return "server.public_url is not set, so sign-in links cannot be built"
    return None


@hookimpl
def workeros_register_auth_providers() -> list[AuthProvider]:
    return [AuthProvider(name="magic-link", kind="challenge", routes=lambda: routes, ready=_ready,
                         description="One-time sign-in link by email", start_url="/api/auth/magic-link")]
