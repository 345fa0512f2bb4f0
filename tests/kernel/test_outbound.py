"""The outbound network rule, against real HTTP servers on loopback: refused
addresses (literal, by name, through a redirect), the switch that lifts the
rule, timeouts and the size cap."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from workeros.outbound import Outbound, OutboundError, OutboundRefused, address_allowed
from workeros.sdk.testing import free_port


def outbound(**settings: Any) -> Outbound:
    defaults = {"network.allow_private": False, "network.allow_hosts": [], "network.timeout": 5.0,
                "network.max_response_bytes": 1000, "network.max_redirects": 3}
    return Outbound({**defaults, **settings})


@pytest.fixture
async def server() -> AsyncIterator[Any]:
    """An HTTP server on 127.0.0.1 and one on 127.0.0.2 (both loopback)."""
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello")

    async def big(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * 5000)

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(3)
        return web.Response(text="late")

    async def bounce(request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query.get("to", "/bounce"))

    app = web.Application()
    app.router.add_get("/hello", hello)
    app.router.add_get("/big", big)
    app.router.add_get("/slow", slow)
    app.router.add_get("/bounce", bounce)
    runner = web.AppRunner(app)
    await runner.setup()
    ports = {}
    for host in ("127.0.0.1", "127.0.0.2"):
        ports[host] = free_port()
        await web.TCPSite(runner, host, ports[host]).start()

    class Where:
        def url(self, host: str, path: str) -> str:
            return f"http://{host}:{ports[host]}{path}"

    yield Where()
    await runner.cleanup()


@pytest.mark.parametrize("address,allowed", [
    ("127.0.0.1", False), ("::1", False), ("10.1.2.3", False), ("172.16.0.1", False), ("192.168.1.1", False),
    ("169.254.169.254", False), ("100.64.0.1", False), ("0.0.0.0", False), ("224.0.0.1", False),
    ("fd00:ec2::254", False), ("fe80::1", False), ("::ffff:127.0.0.1", False), ("8.8.8.8", True),
    ("2606:4700:4700::1111", True), ("not an address", False),
])
def test_which_addresses_are_public(address: str, allowed: bool) -> None:
    assert address_allowed(address) is allowed


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:{port}/hello", "http://[::1]:{port}/hello", "http://localhost:{port}/hello",
    "http://{hostname}:{port}/hello", "http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/",
    "http://100.64.1.1/", "ftp://example.com/file", "file:///etc/passwd",
])
async def test_non_public_destinations_are_refused(url: str, server: Any) -> None:
    """Literal addresses are refused before connecting; a name (this machine's
    own host name, which resolves to a loopback or private address) when it is
    resolved."""
    hostname = socket.gethostname()
    if "{hostname}" in url:
        try:
            socket.getaddrinfo(hostname, 80)
        except OSError:
            pytest.skip(f"this machine's host name {hostname!r} does not resolve")
    client = outbound()
    try:
        with pytest.raises(OutboundRefused):
            await client.fetch("GET", url.format(port=server.url("127.0.0.1", "").rsplit(":", 1)[1],
                                                 hostname=hostname))
    finally:
        await client.close()


async def test_allow_private_lifts_the_rule(server: Any) -> None:
    client = outbound(**{"network.allow_private": True})
    try:
        result = await client.fetch("GET", server.url("127.0.0.1", "/hello"))
        assert (result.status, result.text()) == (200, "hello")
    finally:
        await client.close()


async def test_allowed_hosts_and_redirects_are_checked_hop_by_hop(server: Any) -> None:
    client = outbound(**{"network.allow_hosts": ["127.0.0.2/32"]})
    try:
        assert (await client.fetch("GET", server.url("127.0.0.2", "/hello"))).text() == "hello"
        # A redirect to an address that is not allowed is refused, though the first hop was.
        to_loopback = server.url("127.0.0.2", "/bounce") + "?to=" + server.url("127.0.0.1", "/hello")
        with pytest.raises(OutboundRefused):
            await client.fetch("GET", to_loopback)
        to_itself = server.url("127.0.0.2", "/bounce") + "?to=" + server.url("127.0.0.2", "/hello")
        assert (await client.fetch("GET", to_itself)).text() == "hello"
    finally:
        await client.close()


async def test_size_cap_timeouts_and_redirect_limit(server: Any) -> None:
    client = outbound(**{"network.allow_private": True, "network.timeout": 1.0})
    try:
        with pytest.raises(OutboundError, match="larger than 1000 bytes"):
            await client.fetch("GET", server.url("127.0.0.1", "/big"))
        assert len((await client.fetch("GET", server.url("127.0.0.1", "/big"), max_bytes=10_000)).body) == 5000
        with pytest.raises(OutboundError, match="timed out"):
            await client.fetch("GET", server.url("127.0.0.1", "/slow"))
        loop = server.url("127.0.0.1", "/bounce")  # redirects to itself forever
        with pytest.raises(OutboundError, match="redirects"):
            await client.fetch("GET", loop)
        closed = f"http://127.0.0.1:{free_port()}/nothing-listens"
        with pytest.raises(OutboundError, match="Could not connect"):
            await client.fetch("GET", closed)
    finally:
        await client.close()
