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

from workeros.api import client, no_content, ok, read_object, services, session_response, wants_cookies
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
    return session_response(request, session, cookies=cookies)


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
    parser.add_argument("--role", default="admin", help="role id (default: admin)")
    parser.add_argument("--password-stdin", action="store_true",
                        help="read the password from standard input (default: prompt)")
    parser.add_argument("--database-url", dest="database_url", help="database URL (default: SQLite in the data dir)")


def _create_user(args: argparse.Namespace, ctx: Any) -> int:
    """``workeros create-user``: make an account from the command line (the way in
    when sign-up is closed, or to add an admin). Migrates first, like serve."""
    from workeros.api import Accountability, WorkerosError, open_services, prepare

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password: ")
    settings = ctx.settings.with_overrides(database__url=args.database_url)

    async def run() -> dict[str, Any]:
        _, registry = prepare(settings, ctx.plugins)
        async with open_services(settings, ctx.plugins, registry) as services:
            return await services.accounts.create_user(
                Accountability.system().with_origin("cli"),
                {"email": args.email, "password": password, "role": args.role})

    try:
        user = asyncio.run(run())
    except WorkerosError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    print(f"created user {user['id']} ({user['email']}, role {user['role']})")
    return 0


@hookimpl
def workeros_register_commands() -> list[Command]:
    return [Command(name="create-user", help="create an account (for example the first admin)", run=_create_user,
                    configure=_configure_create_user)]


@hookimpl
def workeros_register_auth_providers() -> list[AuthProvider]:
    return [AuthProvider(name="password", kind="credential", routes=lambda: routes, factory=lambda services: None,
                         description="Email and password (argon2id)")]
