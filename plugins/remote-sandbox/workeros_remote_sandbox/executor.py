"""The reference function executor (``workeros functions-executor``): an HTTP
server that runs functions in a local sandbox (quickjs) and sends their bridge
calls back to the workeros server that asked.

``POST /run`` and ``POST /check`` carry ``Workeros-Timestamp`` and
``Workeros-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>``;
requests without a valid signature (or older than five minutes) are refused.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from typing import Any

import aiohttp
from aiohttp import web

from workeros.api import WorkerosError, await_me_maybe, dumps_str, jsonable, loads, setting_or

log = logging.getLogger("workeros.functions_executor")

SIGNATURE = "Workeros-Signature"
TIMESTAMP = "Workeros-Timestamp"
#: The header carrying an invocation's one-time token on bridge calls (not
#: ``Authorization``: the token is no credential of any user).
INVOCATION = "Workeros-Invocation"
MAX_SKEW = 300
SANDBOX: web.AppKey[Any] = web.AppKey("workeros_remote_sandbox.sandbox", object)
SECRET: web.AppKey[str] = web.AppKey("workeros_remote_sandbox.secret", str)
SESSION: web.AppKey[aiohttp.ClientSession] = web.AppKey("workeros_remote_sandbox.session", aiohttp.ClientSession)


def sign(secret: str, body: bytes, at: int | None = None) -> dict[str, str]:
    stamp = str(int(time.time()) if at is None else at)
    digest = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {TIMESTAMP: stamp, SIGNATURE: f"sha256={digest}"}


def verified(secret: str, headers: Any, body: bytes) -> bool:
    stamp = headers.get(TIMESTAMP, "")
    if not stamp.isdigit() or abs(time.time() - int(stamp)) > MAX_SKEW:
        return False
    expected = sign(secret, body, int(stamp))[SIGNATURE]
    return hmac.compare_digest(expected, headers.get(SIGNATURE, ""))


class BridgeError(WorkerosError):
    """An error the server's bridge answered, with its code."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class CallbackHost:
    """The ``Host`` an executor gives the sandbox: each call goes back over HTTP."""

    def __init__(self, session: aiohttp.ClientSession, url: str, token: str) -> None:
        self.session, self.url, self.token = session, url, token
        self.lines: list[str] = []

    def log(self, text: str) -> None:
        self.lines.append(str(text))

    async def call(self, name: str, args: list[Any]) -> Any:
        body = dumps_str({"call": name, "args": args}).encode()
        headers = {INVOCATION: self.token, "Content-Type": "application/json"}
        try:
            async with self.session.post(self.url, data=body, headers=headers) as r:
                out = loads(await r.read())
        except (aiohttp.ClientError, ValueError):
            raise BridgeError("BAD_GATEWAY", "The workeros server could not be reached", 502) from None
        if r.status == 200:
            return out.get("data")
        error = ((out or {}).get("errors") or [{}])[0]
        raise BridgeError(str(error.get("extensions", {}).get("code") or "INTERNAL"),
                          str(error.get("message") or "The bridge call failed"), r.status)


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if not verified(request.app[SECRET], request.headers, raw):
        raise web.HTTPUnauthorized(text='{"error": "bad signature"}', content_type="application/json")
    try:
        body = loads(raw)
    except ValueError:
        raise web.HTTPBadRequest(text='{"error": "bad JSON"}', content_type="application/json") from None
    if not isinstance(body, dict) or not isinstance(body.get("code"), str):
        raise web.HTTPBadRequest(text='{"error": "expected {code, ...}"}', content_type="application/json")
    return body


async def run(request: web.Request) -> web.Response:
    body = await _body(request)
    callback = body.get("callback") or {}
    host = CallbackHost(request.app[SESSION], str(callback.get("url") or ""), str(callback.get("token") or ""))
    out: dict[str, Any]
    try:
        value = await request.app[SANDBOX].run(
            body["code"], entry=str(body.get("entry") or "default"), args=body.get("args"),
            timeout_ms=int(body.get("timeout_ms") or 5000), memory_mb=int(body.get("memory_mb") or 64), host=host)
        out = {"ok": jsonable(value)}
    except WorkerosError as exc:
        out = {"error": {"code": exc.code, "message": exc.message}}
    out["logs"] = host.lines
    return web.Response(body=dumps_str(out), content_type="application/json")


async def check(request: web.Request) -> web.Response:
    body = await _body(request)
    checker = getattr(request.app[SANDBOX], "check_syntax", None)
    found = await await_me_maybe(checker(body["code"])) if checker is not None else None
    return web.Response(body=dumps_str({"error": list(found) if found else None}), content_type="application/json")


async def health(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


def executor_app(sandbox: Any, secret: str) -> web.Application:
    """The executor as an aiohttp app running functions in ``sandbox``."""
    app = web.Application(client_max_size=8 * 1024 * 1024)
    app[SANDBOX] = sandbox
    app[SECRET] = secret

    async def client(app: web.Application) -> Any:
        app[SESSION] = aiohttp.ClientSession(trust_env=False)
        yield
        await app[SESSION].close()
        closer = getattr(sandbox, "close", None)
        if closer is not None:
            await closer()

    app.cleanup_ctx.append(client)
    app.router.add_post("/run", run)
    app.router.add_post("/check", check)
    app.router.add_get("/health", health)
    return app


async def local_sandbox(plugins: Any, settings: Any) -> Any:
    """The quickjs sandbox, found through the sandbox hook (plugins do not import each other)."""
    for _, entries in plugins.collect("workeros_register_sandboxes"):
        for entry in entries:
            if entry.name == "quickjs":
                reason = entry.unavailable_reason()
                if reason:
                    raise SystemExit(f"the quickjs sandbox is not available: {reason}")
                return await await_me_maybe(entry.factory(settings))
    raise SystemExit("the quickjs sandbox is not installed (pip install workeros-quickjs)")


async def run_executor(args: Any, ctx: Any) -> int:
    secret = args.secret or setting_or(ctx.settings, "remote_sandbox.secret", None)
    if not secret:
        print("functions-executor: a shared secret is required (--secret or remote_sandbox.secret)")
        return 2
    sandbox = await local_sandbox(ctx.plugins, ctx.settings)
    runner = web.AppRunner(executor_app(sandbox, str(secret)), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port)
    await site.start()
    print(f"functions-executor listening on http://{args.host}:{args.port}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
    return 0
