"""``/api/users``, ``/api/users/me``, ``/api/api-keys`` and the session routes
every auth provider shares: ``/api/auth/refresh`` and ``/api/auth/logout``.

:func:`session_response` is how every sign-in route answers: the tokens as JSON
and, unless the body asked for ``"mode": "json"``, the browser session cookie
(HttpOnly, SameSite=Lax) plus the readable CSRF cookie.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from workeros.accounts.accounts_service import CSRF_COOKIE, Session
from workeros.errors import Forbidden, InvalidPayload, InvalidQuery, ServiceUnavailable
from workeros.http.keys import REGISTRY, SETTINGS
from workeros.http.web import accountability, no_content, ok, read_json, services

routes = web.RouteTableDef()


def _accounts(request: web.Request) -> Any:
    accounts = services(request).accounts
    if accounts is None:
        raise ServiceUnavailable("No accounts service is installed")
    return accounts


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
                     status: int = 200) -> web.Response:
    """The answer to a sign-in: ``{data: {access_token, refresh_token, expires}}``
    and the session cookies."""
    response = ok(session.body(), status=status)
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


def wants_cookies(data: Any) -> bool:
    mode = data.get("mode", "cookie") if isinstance(data, dict) else "cookie"
    if mode not in ("cookie", "json"):
        raise InvalidPayload("mode must be 'cookie' or 'json'", field="mode")
    return mode == "cookie"


# -- sessions ----------------------------------------------------------------------------

@routes.get("/auth/providers")
async def providers(request: web.Request) -> web.Response:
    """The enabled auth providers, for sign-in screens: ``[{name, kind}]``."""
    return ok([{"name": p.name, "kind": p.kind} for p in request.config_dict[REGISTRY].all("auth")])


@routes.post("/auth/refresh")
async def refresh(request: web.Request) -> web.Response:
    data = await optional_json(request)
    session = await _accounts(request).refresh(data.get("refresh_token"), **client(request))
    return session_response(request, session, cookies=False)


@routes.post("/auth/logout")
async def logout(request: web.Request) -> web.Response:
    data = await optional_json(request)
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    name = request.config_dict[SETTINGS]["auth.cookie_name"]
    await _accounts(request).logout(
        refresh_token=data.get("refresh_token") if isinstance(data.get("refresh_token"), str) else None,
        access_token=token.strip() if scheme.lower() == "bearer" else None,
        cookie=request.cookies.get(name), **client(request))
    response = no_content()
    options = _cookie_options(request)
    response.del_cookie(name, path=options["path"], domain=options.get("domain"))
    response.del_cookie(CSRF_COOKIE, path=options["path"], domain=options.get("domain"))
    return response


# -- users -------------------------------------------------------------------------------

def _user_query(request: web.Request) -> dict[str, Any]:
    try:
        limit = int(request.query.get("limit", "100"))
        offset = int(request.query.get("offset", "0"))
    except ValueError:
        raise InvalidQuery("limit and offset must be integers") from None
    if not 0 <= limit <= 1000 or offset < 0:
        raise InvalidQuery("limit must be 0..1000 and offset not negative")
    extra = {k: request.query[k][:255] for k in ("search", "role", "status") if request.query.get(k)}
    return {"limit": limit, "offset": offset, **extra}


@routes.get("/users/me")
async def get_me(request: web.Request) -> web.Response:
    return ok(await _accounts(request).me(accountability(request)))


@routes.patch("/users/me")
async def update_me(request: web.Request) -> web.Response:
    return ok(await _accounts(request).update_me(accountability(request), await read_json(request)))


@routes.get("/users/me/sessions")
async def list_sessions(request: web.Request) -> web.Response:
    return ok(await _accounts(request).list_sessions(accountability(request)))


@routes.delete("/users/me/sessions/{family}")
async def end_session(request: web.Request) -> web.Response:
    await _accounts(request).end_session(accountability(request), request.match_info["family"])
    return no_content()


@routes.get("/users")
async def list_users(request: web.Request) -> web.Response:
    return ok(await _accounts(request).list_users(accountability(request), **_user_query(request)))


@routes.post("/users")
async def create_user(request: web.Request) -> web.Response:
    acc = accountability(request)
    if not acc.admin:
        raise Forbidden()
    return ok(await _accounts(request).create_user(acc, await read_json(request)), status=201)


@routes.post("/users/invite")
async def invite_user(request: web.Request) -> web.Response:
    return ok(await _accounts(request).invite(accountability(request), await read_json(request)), status=201)


@routes.get("/users/{id}")
async def get_user(request: web.Request) -> web.Response:
    return ok(await _accounts(request).get_user(accountability(request), request.match_info["id"]))


@routes.patch("/users/{id}")
async def update_user(request: web.Request) -> web.Response:
    acc = accountability(request)
    return ok(await _accounts(request).update_user(acc, request.match_info["id"], await read_json(request)))


@routes.delete("/users/{id}")
async def delete_user(request: web.Request) -> web.Response:
    await _accounts(request).delete_user(accountability(request), request.match_info["id"])
    return no_content()


# -- API keys ----------------------------------------------------------------------------

@routes.get("/api-keys")
async def list_keys(request: web.Request) -> web.Response:
    return ok(await _accounts(request).list_api_keys(accountability(request)))


@routes.post("/api-keys")
async def create_key(request: web.Request) -> web.Response:
    return ok(await _accounts(request).create_api_key(accountability(request), await read_json(request)),
              status=201)


@routes.get("/api-keys/{id}")
async def get_key(request: web.Request) -> web.Response:
    return ok(await _accounts(request).get_api_key(accountability(request), request.match_info["id"]))


@routes.delete("/api-keys/{id}")
async def revoke_key(request: web.Request) -> web.Response:
    await _accounts(request).revoke_api_key(accountability(request), request.match_info["id"])
    return no_content()


@routes.patch("/api-keys/{id}/mcp-guards")
async def update_guards(request: web.Request) -> web.Response:
    acc = accountability(request)
    return ok(await _accounts(request).set_mcp_guards(acc, request.match_info["id"], await read_json(request)))
