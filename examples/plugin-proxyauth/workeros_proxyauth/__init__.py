"""Sign-in behind an authenticating reverse proxy (oauth2-proxy, Cloudflare Access,
Pomerium, an nginx ``auth_request``): the proxy has verified the person and puts
their e-mail address in a header; ``POST /api/auth/proxy/login`` turns it into a
workeros session, creating the account on first sight. The header is believed
only on connections from the addresses in ``auth.proxy.trusted``: anyone else
could send it too."""

import ipaddress

from aiohttp import web

from workeros.api import (
    ExternalIdentity,
    InvalidCredentials,
    client,
    identity_login,
    optional_json,
    services,
    session_response,
    wants_cookies,
)
from workeros.hookspecs import hookimpl
from workeros.hookspecs.auth import AuthProvider
from workeros.hookspecs.lifecycle import ConfigKey

routes = web.RouteTableDef()


def trusted(address, networks):
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(net, strict=False) for net in networks)


@routes.post("/proxy/login")
async def login(request):
    """Sign in as the person the proxy's header names."""
    svc = services(request)
    settings = svc.settings
    if not trusted(request.remote, settings["auth.proxy.trusted"]):
        raise InvalidCredentials("This sign-in works only through the proxy")
    email = request.headers.get(settings["auth.proxy.header"], "").strip()
    if "@" not in email:
        raise InvalidCredentials("The proxy named nobody")
    data = await optional_json(request)
    identity = ExternalIdentity(provider="proxy", subject=email, email=email, role=settings["auth.proxy.role"])
    session = await identity_login(svc.accounts, identity, browser=wants_cookies(data),
                                   create=settings["auth.proxy.create_users"], **client(request))
    return session_response(request, session, cookies=wants_cookies(data))


@hookimpl
def workeros_register_auth_providers():
    return [AuthProvider(name="proxy", kind="credential", routes=lambda: routes, factory=lambda services: None,
                         start_url="/api/auth/proxy/login", description="Signed in by the reverse proxy",
                         ready=lambda services: None if services.settings["auth.proxy.trusted"]
                         else "auth.proxy.trusted names no proxy address")]


@hookimpl
def workeros_register_config_keys():
    return [
        ConfigKey("auth.proxy.trusted", "list", [], "Addresses or networks of the proxy (CIDR)"),
        ConfigKey("auth.proxy.header", "str", "X-Forwarded-Email", "Header carrying the verified e-mail"),
        ConfigKey("auth.proxy.create_users", "bool", True, "Create an account on first sign-in"),
        ConfigKey("auth.proxy.role", "str", None, "Role of accounts created here (default: the default role)"),
    ]
