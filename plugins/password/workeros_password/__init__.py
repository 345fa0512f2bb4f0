"""Email + password sign-in (essential).

Routes under ``/api/auth``: ``POST /sign-up``, ``POST /login``,
``POST /password/request`` (mail a reset link), ``POST /password/reset``
(``{token, password}``), ``GET|POST /verify-email`` (``token``). The work is done
by the kernel's accounts service; this plugin is its HTTP face.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from typing import Any

from aiohttp import web

from workeros.api import client, login_mode, no_content, ok, read_object, services, session_response, wants_cookies
from workeros.hookspecs import hookimpl
from workeros.hookspecs.auth import AuthProvider
from workeros.hookspecs.lifecycle import Command

routes = web.RouteTableDef()


@routes.post("/sign-up")
async def sign_up(request: web.Request) -> web.Response:
    data = await read_object(request)
    return ok(await services(request).accounts.sign_up(data, **client(request)), status=201)


@routes.post("/login")
async def login(request: web.Request) -> web.Response:
    data = await read_object(request)
    cookies = wants_cookies(data)
    otp = data.get("otp")
    session = await services(request).accounts.password_login(
        data.get("email"), data.get("password"), otp=otp if isinstance(otp, str) else None, browser=cookies,
        **client(request))
    return session_response(request, session, cookies=cookies, tokens=login_mode(data) != "session")


@routes.post("/password/request")
async def request_reset(request: web.Request) -> web.Response:
    data = await read_object(request)
    await services(request).accounts.request_password_reset(data.get("email"), **client(request))
    return no_content()


@routes.post("/password/reset")
async def reset(request: web.Request) -> web.Response:
    data = await read_object(request)
    await services(request).accounts.reset_password(data.get("token"), data.get("password"), **client(request))
    return no_content()


@routes.get("/verify-email")
async def verify_link(request: web.Request) -> web.Response:
    await services(request).accounts.verify_email(request.query.get("token"), **client(request))
    return ok({"email_verified": True})


@routes.post("/verify-email")
async def verify(request: web.Request) -> web.Response:
    data = await read_object(request)
    await services(request).accounts.verify_email(data.get("token"), **client(request))
    return ok({"email_verified": True})


def _configure_create_user(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--email", required=True)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--role", help="role by name (or id); default: auth.default_role, else no role (public)")
    which.add_argument("--admin", action="store_true", help="give the account the admin role")
    parser.add_argument("--password-stdin", action="store_true",
                        help="read the password from standard input (default: prompt)")
    parser.add_argument("--database-url", dest="database_url", help="database URL (default: SQLite in the data dir)")


async def _role_id(services: Any, acc: Any, wanted: str) -> str:
    """A role's id from its name (or id); a clear error naming the roles there are."""
    from workeros.api import InvalidPayload

    roles = await services.permissions.list_roles(acc)
    for role in roles:
        if wanted in (role["name"], role["id"]):
            return str(role["id"])
    names = ", ".join(sorted(r["name"] for r in roles))
    raise InvalidPayload(f"role {wanted!r} does not exist (roles: {names})")


def _create_user(args: argparse.Namespace, ctx: Any) -> int:
    """``workeros create-user``: make an account from the command line (the way in
    when sign-up is closed, or to add an admin). Admin only with ``--admin``;
    ``--role`` takes a role's name. Migrates first, like serve."""
    from workeros.api import Accountability, WorkerosError, open_services, prepare

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password: ")
    settings = ctx.settings.with_overrides(database__url=args.database_url)

    async def run() -> tuple[dict[str, Any], str | None]:
        _, registry = prepare(settings, ctx.plugins)
        async with open_services(settings, ctx.plugins, registry) as services:
            acc = Accountability.system().with_origin("cli")
            if args.admin:
                role: str | None = "admin"
            elif args.role:
                role = await _role_id(services, acc, args.role)
            else:
                role = settings["auth.default_role"]
            user = await services.accounts.create_user(acc, {"email": args.email, "password": password,
                                                             "role": role})
            names = {r["id"]: r["name"] for r in await services.permissions.list_roles(acc)}
            return user, names.get(user["role"]) if user["role"] else None

    try:
        user, role_name = asyncio.run(run())
    except WorkerosError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    shown = f"role {role_name}" if role_name else "no role (public permissions)"
    print(f"created user {user['id']} ({user['email']}, {shown})")
    return 0


@hookimpl
def workeros_register_commands() -> list[Command]:
    return [Command(name="create-user", help="create an account (for example the first admin)", run=_create_user,
                    configure=_configure_create_user)]


@hookimpl
def workeros_register_auth_providers() -> list[AuthProvider]:
    return [AuthProvider(name="password", kind="credential", routes=lambda: routes, factory=lambda services: None,
                         description="Email and password (argon2id)", start_url="/api/auth/login")]
