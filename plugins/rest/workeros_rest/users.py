"""``/api/users``, ``/api/users/me``, ``/api/api-keys`` and the session routes
every auth provider shares: ``/api/auth/refresh`` and ``/api/auth/logout``.
Sign-in routes answer with :func:`workeros.api.session_response`."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from workeros.api import (
    REGISTRY,
    SETTINGS,
    InvalidQuery,
    clear_session_cookies,
    client,
    login_mode,
    no_content,
    ok,
    optional_json,
    read_admin_json,
    read_json,
    services,
    session_response,
)

from .crud import Call, add

routes = web.RouteTableDef()


def _accounts(request: web.Request) -> Any:
    return services(request).accounts


# -- sessions ----------------------------------------------------------------------------

@routes.get("/auth/providers")
async def providers(request: web.Request) -> web.Response:
    """The ways to sign in here, for sign-in screens: ``[{name, kind, type,
    label, start_url}]`` (``type`` is the provider's plugin — ``password``,
    ``oauth``, ``passkey``…; ``start_url`` the route that begins it, or null).
    Enabled providers that cannot work with this configuration (a magic link
    without a mail backend) are left out and named in ``meta.unavailable`` with
    the reason."""
    svc = services(request)
    working, unavailable = [], []
    for p in request.config_dict[REGISTRY].all("auth"):
        reason = p.ready(svc) if p.ready is not None else None
        if reason is None:
            if p.entries is not None:
                working += [{"kind": p.kind, **entry} for entry in p.entries(svc)]
            else:
                working.append({"name": p.name, "kind": p.kind, "type": p.name, "label": p.description or p.name,
                                "start_url": p.start_url})
        else:
            unavailable.append({"name": p.name, "reason": reason})
    return ok(working, meta={"unavailable": unavailable})


@routes.get("/auth")
async def auth_providers(request: web.Request) -> web.Response:
    """The working auth providers in Directus's shape (``readProviders()``):
    ``[{name, driver, icon}]``."""
    svc = services(request)
    found = [{"name": p.name, "driver": p.kind, "icon": None}
             for p in request.config_dict[REGISTRY].all("auth")
             if p.ready is None or p.ready(svc) is None]
    return ok(found)


@routes.post("/auth/refresh")
async def refresh(request: web.Request) -> web.Response:
    """``{refresh_token}`` rotates a refresh token (json mode). Without one,
    the browser session cookie gets a new access token (cookie mode; with
    ``"mode": "session"`` the answer carries no token, the cookie being the
    credential). No CSRF header is needed: the answer is readable only by the
    page's own origin, and it changes nothing a forged request could use."""
    data = await optional_json(request)
    mode = login_mode(data)
    token = data.get("refresh_token")
    if token is None and mode != "json":
        cookie = request.cookies.get(request.config_dict[SETTINGS]["auth.cookie_name"])
        session = await _accounts(request).refresh_cookie(cookie, **client(request))
        return session_response(request, session, cookies=False, tokens=mode != "session")
    session = await _accounts(request).refresh(token, **client(request))
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
    clear_session_cookies(request, response)
    return response


# -- users -------------------------------------------------------------------------------

def _user_query(request: web.Request) -> dict[str, Any]:
    try:
        limit = int(request.query.get("limit", "100"))
        offset = int(request.query.get("offset", "0"))
    except ValueError:
        raise InvalidQuery("limit and offset must be integers") from None
    if not 0 <= limit <= 1000 or not 0 <= offset < 2**63:
        raise InvalidQuery("limit must be 0..1000 and offset not negative (and within 64 bits)")
    extra = {k: request.query[k][:255] for k in ("search", "role", "status") if request.query.get(k)}
    return {"limit": limit, "offset": offset, **extra}


def _fields(request: web.Request, result: Any) -> Any:
    """``?fields=id,email`` (or ``fields[]=…``, ``*``) keeps those fields of
    each user; a field users do not have is a 400."""
    raw = [part.strip() for value in request.query.getall("fields", []) + request.query.getall("fields[]", [])
           for part in value.split(",") if part.strip()]
    if not raw or "*" in raw:
        return result
    rows = result if isinstance(result, list) else [result]
    known = set(rows[0]) if rows else set(raw)
    for name in raw:
        if name not in known:
            raise InvalidQuery(f"Unknown user field {name[:80]!r}")
    picked = [{name: row.get(name) for name in raw} for row in rows]
    return picked if isinstance(result, list) else picked[0]


add(routes, _accounts, [
    Call("GET", "/users/me", "me", shape=_fields),
    Call("PATCH", "/users/me", "update_me", body=read_json),
    Call("GET", "/users/me/sessions", "list_sessions"),
    Call("DELETE", "/users/me/sessions/{family}", "end_session"),
    Call("GET", "/users", "list_users", query=_user_query, shape=_fields),
    Call("POST", "/users", "create_user", body=read_admin_json, created=True),
    Call("POST", "/users/invite", "invite", body=read_json, created=True),
    Call("GET", "/users/{id}", "get_user", shape=_fields),
    Call("PATCH", "/users/{id}", "update_user", body=read_json),
    Call("DELETE", "/users/{id}", "delete_user"),
    # -- API keys
    Call("GET", "/api-keys", "list_api_keys"),
    Call("POST", "/api-keys", "create_api_key", body=read_json, created=True),
    Call("GET", "/api-keys/{id}", "get_api_key"),
    Call("DELETE", "/api-keys/{id}", "revoke_api_key"),
    Call("PATCH", "/api-keys/{id}/mcp-guards", "set_mcp_guards", body=read_json),
])
