"""What the many-instance end-to-end tests share: an SSE reader, a round-robin
proxy, a check for Redis, a moto S3 server, and an admin sign-up."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import aiohttp
from aiohttp import web

from workeros.sdk.testing import free_port

CREDS = {"email": "admin@example.com", "password": "correct horse battery"}
#: Hop-by-hop headers a proxy does not pass on.
HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


async def read_json(response: aiohttp.ClientResponse) -> Any:
    return json.loads(await response.read())


async def sse_events(response: aiohttp.ClientResponse) -> AsyncIterator[tuple[str, Any]]:
    """``(event, data)`` pairs of a ``text/event-stream`` response, as they come."""
    event, data = "message", []
    while True:
        line = (await response.content.readline()).decode().rstrip("\r\n")
        if line == "":
            if data:
                yield event, json.loads("\n".join(data))
            event, data = "message", []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())


async def admin_token(http: aiohttp.ClientSession, sign_up_at: str, log_in_at: str | None = None) -> dict[str, str]:
    """Sign the first user (the admin) up at one URL, log in at another;
    returns the ``Authorization`` header."""
    async with http.post(sign_up_at + "/api/auth/sign-up", json=CREDS) as r:
        assert r.status in (200, 201), await r.text()
    async with http.post((log_in_at or sign_up_at) + "/api/auth/login", json={**CREDS, "mode": "json"}) as r:
        assert r.status == 200, await r.text()
        token = (await read_json(r))["data"]["access_token"]
    return {"Authorization": f"Bearer {token}"}


async def redis_reachable() -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", 6379), 2)
    except (TimeoutError, OSError):
        return False
    writer.close()
    return True


@contextmanager
def moto_s3() -> Iterator[str]:
    """A real S3 endpoint on loopback (moto's threaded server); yields its URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def s3_env(endpoint: str, bucket: str) -> dict[str, str]:
    """``workeros serve`` settings for the S3 storage backend on ``endpoint``."""
    return {"WORKEROS_STORAGE_BACKEND": "s3", "WORKEROS_S3_ENDPOINT_URL": endpoint, "WORKEROS_S3_BUCKET": bucket,
            "WORKEROS_S3_REGION": "us-east-1", "WORKEROS_S3_ACCESS_KEY_ID": "testing",
            "WORKEROS_S3_SECRET_ACCESS_KEY": "testing", "WORKEROS_S3_CREATE_BUCKET": "true"}


class RoundRobin:
    """A load balancer in a few lines: each request to the next live backend;
    a backend that refuses the connection is dropped and the request tried on
    the next (it never reached the dead one)."""

    def __init__(self, backends: list[str]) -> None:
        self.backends = list(backends)
        self.turn = itertools.count()
        self.session: aiohttp.ClientSession | None = None
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        assert self.session is not None
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
        for _ in range(len(self.backends) + 1):
            if not self.backends:
                break
            backend = self.backends[next(self.turn) % len(self.backends)]
            try:
                async with self.session.request(request.method, backend + request.path_qs, headers=headers,
                                                data=body, allow_redirects=False) as r:
                    return web.Response(status=r.status, body=await r.read(),
                                        headers={k: v for k, v in r.headers.items() if k.lower() not in HOP})
            except aiohttp.ClientConnectorError:
                if backend in self.backends:
                    self.backends.remove(backend)
        return web.json_response({"errors": [{"message": "no backend", "extensions": {
            "code": "SERVICE_UNAVAILABLE"}}]}, status=503)

    async def start(self) -> RoundRobin:
        self.session = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self.runner.setup()
        port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
        if self.session is not None:
            await self.session.close()
