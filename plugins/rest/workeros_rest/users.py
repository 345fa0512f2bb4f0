"""``/api/users``, ``/api/users/me``, ``/api/api-keys`` and the session routes
every auth provider shares: ``/api/auth/refresh`` and ``/api/auth/logout``.
Sign-in routes answer with :func:`workeros.api.session_response`."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from workeros.api import (
    REGISTRY,
    SETTINGS,
    Forbidden,
    InvalidQuery,
    ServiceUnavailable,
    accountability,
    clear_session_cookies,
    client,
    no_content,
    ok,
    optional_json,
    read_json,
    services,
    session_response,
)

routes = web.RouteTableDef()


def _accounts(request: web.Request) -> Any:
    accounts = services(request).accounts
    if accounts is None:
        raise ServiceUnavailable("No accounts service is installed")
    return accounts


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
