"""workeros on AWS Lambda: ``workeros_lambda.handler`` for API Gateway HTTP
APIs (payload format 2.0) and Lambda Function URLs (the same event shape).

The aiohttp app runs in-process (:class:`workeros.api.InProcessApp`) on an
event loop that lives as long as the execution environment: the first
invocation builds and starts it (the cold start, logged with its duration),
later ones reuse the open database pool. Settings come from the function's
environment (``WORKEROS_DATABASE_URL`` pointing at PostgreSQL, the S3 storage
settings); the ``runtime`` setting is ``lambda``, which mounts no realtime
transport (a function ends after its response). Responses are buffered, as
the payload format requires: the body is text for textual media types and
base64 otherwise. See ``docs/deploy.md``.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from typing import Any

from aiohttp import web

from workeros.api import InProcessApp, Settings, create_app
from workeros.hookspecs import hookimpl
from workeros.hookspecs.lifecycle import Runtime

log = logging.getLogger("workeros.lambda")

TEXTUAL = ("text/", "application/json", "application/problem+json", "application/xml", "application/javascript",
           "application/graphql-response+json", "application/yaml", "image/svg+xml")


class LambdaHandler:
    """The function's handler: ``handler(event, context) -> response``."""

    def __init__(self, settings: Settings | None = None, *, app: web.Application | None = None,
                 plugins: Any = None) -> None:
        self._settings = settings
        self._plugins = plugins
        self._app = app
        self.loop: asyncio.AbstractEventLoop | None = None
        self.inner: InProcessApp | None = None
        #: Seconds the first invocation spent building and starting the app.
        self.cold_start: float | None = None

    def __call__(self, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        if self.loop is None or self.loop.is_closed():
            self.loop = asyncio.new_event_loop()
        return self.loop.run_until_complete(self.invoke(event, context))

    async def start(self) -> InProcessApp:
        if self.inner is None:
            began = time.perf_counter()
            app = self._app
            if app is None:
                settings = self._settings if self._settings is not None else Settings.load()
                if settings["runtime"] == "aiohttp":
                    settings = settings.with_overrides(runtime="lambda")
                app = await create_app(settings, plugins=self._plugins)
            inner = InProcessApp(app)
            await inner.startup()
            self.inner = inner
            self.cold_start = time.perf_counter() - began
            log.info("cold start: app ready in %.0f ms", self.cold_start * 1000)
        return self.inner

    async def invoke(self, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        inner = await self.start()
        try:
            method, path, headers, body, client, scheme = parse_event(event)
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("not an HTTP API 2.0 / Function URL event: %s", exc)
            return {"statusCode": 400, "headers": {"content-type": "application/json"},
                    "body": '{"errors":[{"message":"Unsupported event","extensions":{"code":"INVALID_PAYLOAD"}}]}'}
        status, out, data = await inner.call_buffered(method, path, headers, body, client=client, scheme=scheme)
        return build_response(status, out, data)

    def close(self) -> None:
        """Shut the app down (tests; Lambda itself just freezes the process)."""
        if self.loop is not None and not self.loop.is_closed():
            if self.inner is not None:
                self.loop.run_until_complete(self.inner.shutdown())
                self.inner = None
            self.loop.close()


def parse_event(event: dict[str, Any]) -> tuple[str, str, list[tuple[str, str]], bytes, tuple[str, int], str]:
    """An HTTP API 2.0 / Function URL event as (method, path?query, headers,
    body, client, scheme)."""
    if event.get("version") != "2.0":
        raise ValueError("payload format version must be 2.0")
    http = event["requestContext"]["http"]
    method = http["method"]
    path = event.get("rawPath") or http.get("path") or "/"
    if event.get("rawQueryString"):
        path = f"{path}?{event['rawQueryString']}"
    headers = [(k, v) for k, v in (event.get("headers") or {}).items()]
    if event.get("cookies"):
        headers = [(k, v) for k, v in headers if k.lower() != "cookie"]
        headers.append(("cookie", "; ".join(event["cookies"])))
    raw = event.get("body")
    if raw is None:
        body = b""
    elif event.get("isBase64Encoded"):
        body = base64.b64decode(raw)
    else:
        body = raw.encode("utf-8")
    lowered = {k.lower(): v for k, v in headers}
    scheme = lowered.get("x-forwarded-proto", "https").split(",")[0].strip()
    return method, path, headers, body, (http.get("sourceIp") or "0.0.0.0", 0), scheme


def build_response(status: int, headers: list[tuple[str, str]], body: bytes) -> dict[str, Any]:
    """The 2.0 response document: ``cookies`` for each Set-Cookie, other
    repeated headers joined with commas, the body as text or base64."""
    out: dict[str, str] = {}
    cookies = []
    for name, value in headers:
        key = name.lower()
        if key == "set-cookie":
            cookies.append(value)
        elif key in out:
            out[key] = f"{out[key]}, {value}"
        else:
            out[key] = value
    content_type = out.get("content-type", "")
    textual = content_type.startswith(TEXTUAL) or not body
    response: dict[str, Any] = {"statusCode": status, "headers": out}
    if cookies:
        response["cookies"] = cookies
    if textual:
        try:
            response["body"] = body.decode("utf-8")
            response["isBase64Encoded"] = False
            return response
        except UnicodeDecodeError:
            pass
    response["body"] = base64.b64encode(body).decode("ascii")
    response["isBase64Encoded"] = True
    return response


def _factory(app: web.Application) -> LambdaHandler:
    return LambdaHandler(app=app)


@hookimpl
def workeros_register_runtimes() -> list[Runtime]:
    return [Runtime(name="lambda", factory=_factory, realtime=False,
                    description="AWS Lambda behind an HTTP API or a Function URL (no realtime streams)")]


#: The function's handler (``workeros_lambda.handler``).
handler = LambdaHandler()
