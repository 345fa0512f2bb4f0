"""The ``http`` sandbox (DESIGN §6 "Functions"): functions run by a remote
executor. The server posts the code, the request and a one-time callback token
to ``remote_sandbox.url``; the executor's host-bridge calls come back to
``POST /api/sandbox/bridge`` with that token and act with the invocation's
accountability only, while it runs.

``workeros functions-executor`` is the reference executor (it runs functions in
the quickjs sandbox). The protocol is in ``docs/functions.md``.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

import aiohttp
from aiohttp import web

from workeros.api import (
    BadGateway,
    FunctionError,
    FunctionTimeout,
    InvalidCredentials,
    InvalidPayload,
    dumps_str,
    loads,
    ok,
    read_json,
    services,
    setting_or,
)
from workeros.hookspecs import hookimpl
from workeros.hookspecs.lifecycle import Command, ConfigKey
from workeros.hookspecs.sandbox import Host, SandboxBackend
from workeros.hookspecs.transport import Transport

from .executor import INVOCATION, SIGNATURE, TIMESTAMP, run_executor, sign

CONFIG_KEYS = [
    ConfigKey("remote_sandbox.url", "str", None, "Base URL of the function executor (the http sandbox)"),
    ConfigKey("remote_sandbox.secret", "str", None,
              "Shared secret signing requests to the executor (HMAC-SHA256); the executor must have the same"),
    ConfigKey("remote_sandbox.callback_url", "str", None,
              "Base URL the executor uses to reach this server for bridge calls (default: server.public_url)"),
]
#: Seconds the executor may answer after a function's own time budget.
GRACE = 5.0


class RemoteSandbox:
    """The sandbox object (``Sandbox`` protocol)."""

    name = "http"

    def __init__(self, settings: Any) -> None:
        self.url = str(setting_or(settings, "remote_sandbox.url", "") or "").rstrip("/")
        self.secret = str(setting_or(settings, "remote_sandbox.secret", "") or "")
        callback = setting_or(settings, "remote_sandbox.callback_url", None) or setting_or(
            settings, "server.public_url", None) or ""
        self.callback = str(callback).rstrip("/") + "/api/sandbox/bridge"
        #: One-time tokens of the invocations running now, and their bridges.
        self.pending: dict[str, Host | None] = {}
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(trust_env=False)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _post(self, path: str, body: dict[str, Any], timeout: float) -> Any:
        raw = dumps_str(body).encode()
        headers = {"Content-Type": "application/json", **sign(self.secret, raw)}
        try:
            async with self.session().post(self.url + path, data=raw, headers=headers,
                                           timeout=aiohttp.ClientTimeout(total=timeout)) as r:
                text = await r.read()
                if r.status != 200:
                    raise BadGateway(f"The function executor answered {r.status}")
                return loads(text)
        except TimeoutError:
            raise FunctionTimeout("The function ran past its time budget") from None
        except (aiohttp.ClientError, ValueError):
            raise BadGateway("The function executor could not be reached") from None

    async def run(self, source: str, *, entry: str = "default", args: Any = None, timeout_ms: int = 5000,
                  memory_mb: int = 64, host: Host | None = None) -> Any:
        if not self.url:
            raise BadGateway("No function executor is configured (remote_sandbox.url)")
        token = secrets.token_urlsafe(32)
        self.pending[token] = host
        try:
            out = await self._post("/run", {"code": source, "entry": entry, "args": args, "timeout_ms": timeout_ms,
                                            "memory_mb": memory_mb,
                                            "callback": {"url": self.callback, "token": token}},
                                   timeout_ms / 1000 + GRACE)
        finally:
            self.pending.pop(token, None)
        if host is not None:
            for line in out.get("logs") or ():
                host.log(str(line))
        error = out.get("error")
        if error is not None:
            message = str(error.get("message") or "The function failed")
            if error.get("code") == "FUNCTION_TIMEOUT":
                raise FunctionTimeout(message)
            raise FunctionError(message)
        return out.get("ok")

    async def check_syntax(self, source: str) -> tuple[str, int, int] | None:
        if not self.url:
            raise BadGateway("No function executor is configured (remote_sandbox.url)")
        out = await self._post("/check", {"code": source}, 10.0)
        found = out.get("error")
        return (str(found[0]), int(found[1]), int(found[2])) if found else None

    def host(self, token: str) -> Host | None:
        return self.pending.get(token)


def _unavailable() -> str | None:
    return None


def _find_host(request: web.Request, token: str) -> Host | None:
    svc = services(request)
    candidates = [svc.sandbox]
    functions = svc.get("functions")
    if functions is not None:
        candidates += functions.loaded_sandboxes()
    for sandbox in candidates:
        pending = getattr(sandbox, "pending", None)
        if isinstance(pending, dict):
            for known, host in pending.items():
                if hmac.compare_digest(known, token):
                    return host
    return None


async def bridge(request: web.Request) -> web.Response:
    """A bridge call from the executor: ``{"call": name, "args": [...]}``."""
    token = request.headers.get(INVOCATION, "")
    host = _find_host(request, token) if token else None
    if host is None:
        raise InvalidCredentials("Unknown or finished invocation")
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("call"), str) or not isinstance(body.get("args"), list):
        raise InvalidPayload("Expected {call, args}")
    return ok(await host.call(body["call"], body["args"]))


def build(root: web.Application) -> web.Application:
    app = web.Application()
    app.router.add_post("/bridge", bridge)
    return app


@hookimpl
def workeros_register_config_keys() -> list[ConfigKey]:
    return CONFIG_KEYS


@hookimpl
def workeros_register_sandboxes() -> list[SandboxBackend]:
    return [SandboxBackend(name="http", factory=RemoteSandbox, priority=0, check=_unavailable,
                           config_keys=CONFIG_KEYS,
                           description="A remote executor over HTTP, bridge calls back with a one-time token")]


@hookimpl
def workeros_register_transports() -> list[Transport]:
    return [Transport(name="sandbox-bridge", prefix="/api/sandbox", factory=build,
                      description="Host-bridge calls from a remote function executor")]


@hookimpl
def workeros_register_commands() -> list[Command]:
    def configure(parser: Any) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8056)
        parser.add_argument("--secret", default=None,
                            help="Shared secret (default: remote_sandbox.secret, WORKEROS_REMOTE_SANDBOX_SECRET)")

    return [Command("functions-executor", "Run the reference function executor (the http sandbox's other end)",
                    run=run_executor, configure=configure)]


__all__ = ["SIGNATURE", "TIMESTAMP", "RemoteSandbox", "sign"]
