"""HTTP helpers every sign-in route shares, whatever the provider.

:func:`session_response` is how a sign-in answers: the tokens as JSON and,
unless the body asked for ``"mode": "json"``, the browser session cookie
(HttpOnly, SameSite=Lax) plus the readable CSRF cookie. Redirect flows (OAuth,
SAML) end with :func:`session_redirect`.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from workeros.accounts.accounts_service import CSRF_COOKIE, Session
from workeros.errors import InvalidPayload
from workeros.http.keys import SETTINGS
from workeros.http.web import ok, read_json


def client(request: web.Request) -> dict[str, str | None]:
    """``ip`` and ``user_agent`` keyword arguments for the accounts service."""
    return {"ip": request.remote, "user_agent": request.headers.get("User-Agent")}


async def read_object(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object (400 for anything else)."""
    data = await read_json(request)
    if not isinstance(data, dict):
        raise InvalidPayload("Expected a JSON object")
    return data


async def optional_json(request: web.Request) -> dict[str, Any]:
    if not request.body_exists or not request.can_read_body:
        return {}
    raw = await request.read()
    if not raw.strip():
        return {}
    data = await read_json(request)
    if not isinstance(data, dict):
        raise InvalidPayload("Expected a JSON object")
    return data


def _cookie_options(request: web.Request) -> dict[str, Any]:
    s = request.config_dict[SETTINGS]
    options: dict[str, Any] = {"path": "/", "samesite": "Lax", "secure": s["auth.cookie_secure"]}
    if s["auth.cookie_domain"]:
        options["domain"] = s["auth.cookie_domain"]
    return options


def session_response(request: web.Request, session: Session, *, cookies: bool = True,
                     status: int = 200, tokens: bool = True) -> web.Response:
    """The answer to a sign-in: ``{data: {access_token, refresh_token, expires}}``
    and the session cookies. ``tokens=False`` (``"mode": "session"``): the
    cookie is the credential, and the body carries no token."""
    response = ok(session.body(tokens=tokens), status=status)
    if cookies and session.cookie:
        _set_cookies(request, response, session)
    return response


def session_redirect(request: web.Request, session: Session, location: str) -> web.Response:
    """The end of a redirect flow (OAuth, SAML callbacks): set the session
    cookies and send the browser to ``location`` (303). Tokens never go into the
    URL; the page reads the session through the cookie."""
    response = web.Response(status=303, headers={"Location": location})
    _set_cookies(request, response, session)
    return response


def _set_cookies(request: web.Request, response: web.StreamResponse, session: Session) -> None:
    options = _cookie_options(request)
    name = request.config_dict[SETTINGS]["auth.cookie_name"]
    response.set_cookie(name, session.cookie, max_age=session.cookie_max_age, httponly=True, **options)
    response.set_cookie(CSRF_COOKIE, session.csrf, max_age=session.cookie_max_age, httponly=False, **options)


def login_mode(data: Any) -> str:
    """The ``mode`` of a sign-in or refresh body: ``cookie`` (default: tokens
    in the body and the session cookie), ``json`` (tokens only) or ``session``
    (the session cookie only)."""
    mode = data.get("mode", "cookie") if isinstance(data, dict) else "cookie"
    if mode not in ("cookie", "json", "session"):
        raise InvalidPayload("mode must be 'cookie', 'json' or 'session'", field="mode")
    return str(mode)


def wants_cookies(data: Any) -> bool:
    return login_mode(data) != "json"


def clear_session_cookies(request: web.Request, response: web.StreamResponse) -> None:
    """Remove the session and CSRF cookies (sign-out)."""
    options = _cookie_options(request)
    name = request.config_dict[SETTINGS]["auth.cookie_name"]
    response.del_cookie(name, path=options["path"], domain=options.get("domain"))
    response.del_cookie(CSRF_COOKIE, path=options["path"], domain=options.get("domain"))
