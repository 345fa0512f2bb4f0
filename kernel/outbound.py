"""Outbound HTTP under the network rule (DESIGN §6): every call the server makes
on a user's behalf — webhook deliveries, the flow ``request`` step, a
function's ``fetch``, importing a file from a URL — goes through
:class:`Outbound`.

The rule: loopback, private, link-local (cloud metadata at 169.254.169.254
included), CGNAT, multicast and reserved addresses are refused — checked on the
addresses a name resolves to, at connect time (so a name that resolves to a
private address is refused however it was spelled, and DNS answers cannot
change between the check and the connection), and again for every redirect,
which is followed here hop by hop. ``network.allow_private`` lifts the rule
for self-hosted intranets and tests. Every call has a timeout and a response
size cap.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from workeros.config import setting_or
from workeros.errors import InvalidPayload
from workeros.hookspecs.lifecycle import ConfigKey

REDIRECTS = frozenset({301, 302, 303, 307, 308})


class OutboundRefused(InvalidPayload):
    """The network rule refused a destination (400 ``INVALID_PAYLOAD``)."""


class OutboundError(InvalidPayload):
    """The destination could not be reached, timed out or answered too much."""


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def address_allowed(address: str, allowed: tuple[Network, ...] = ()) -> bool:
    """Whether an IP address is a public, routable one (or inside one of the
    ``allowed`` networks)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    if mapped is not None:
        ip = mapped
    if any(ip in net for net in allowed if net.version == ip.version):
        return True
    return bool(ip.is_global) and not ip.is_multicast


class _PolicyResolver(AbstractResolver):
    """Resolves through the default resolver, then refuses the name if any of
    its addresses is not public (no mixing of public and private answers)."""

    def __init__(self, allowed: tuple[Network, ...]) -> None:
        self.inner = DefaultResolver()
        self.allowed = allowed

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
                      ) -> list[ResolveResult]:
        results = await self.inner.resolve(host, port, family)
        for result in results:
            if not address_allowed(result["host"], self.allowed):
                raise OutboundRefused(f"The address of {host[:100]!r} is not allowed: it is not a public address "
                                      "(network.allow_private lifts this rule)")
        return results

    async def close(self) -> None:
        await self.inner.close()


@dataclass
class FetchResult:
    """A whole response: ``status``, ``headers``, ``body`` (at most the size
    cap) and the final ``url`` after redirects."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class Outbound:
    """The app's outbound HTTP client. One per app (``services.outbound``)."""

    config_keys = (
        ConfigKey("network.allow_private", "bool", False,
                  "Let outbound calls (webhooks, flows, functions, URL imports) reach loopback, private and "
                  "link-local addresses"),
        ConfigKey("network.allow_hosts", "list", [],
                  "Addresses or networks (CIDR) outbound calls may reach although they are not public, "
                  "such as one intranet service"),
        ConfigKey("network.timeout", "float", 10.0, "Seconds an outbound call may take in all"),
        ConfigKey("network.max_response_bytes", "int", 10 * 1024 * 1024,
                  "Largest response body an outbound call reads (larger is an error)"),
        ConfigKey("network.max_redirects", "int", 5, "Redirects an outbound call follows"),
    )

    def __init__(self, settings: Any) -> None:
        self.allow_private = bool(setting_or(settings, "network.allow_private", False))
        self.allowed = tuple(ipaddress.ip_network(str(n), strict=False)
                             for n in setting_or(settings, "network.allow_hosts", None) or ())
        self.timeout = float(setting_or(settings, "network.timeout", 10.0))
        self.max_bytes = int(setting_or(settings, "network.max_response_bytes", 10 * 1024 * 1024))
        self.max_redirects = int(setting_or(settings, "network.max_redirects", 5))
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            resolver = DefaultResolver() if self.allow_private else _PolicyResolver(self.allowed)
            connector = aiohttp.TCPConnector(resolver=resolver, limit=100, ttl_dns_cache=0, use_dns_cache=False)
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False, auto_decompress=True)
        return self._session

    def check_url(self, url: str | URL) -> URL:
        """Refuse what is not an http(s) URL, and a literal address the rule
        refuses (names are checked when they are resolved)."""
        parsed = URL(str(url)) if not isinstance(url, URL) else url
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise OutboundRefused("Only http and https URLs can be fetched")
        if not self.allow_private:
            host = parsed.host.strip("[]")
            try:
                ipaddress.ip_address(host.split("%", 1)[0])
            except ValueError:
                if host.lower() == "localhost" or host.lower().endswith(".localhost"):
                    raise OutboundRefused(f"The address {host[:100]!r} is not allowed") from None
                return parsed
            if not address_allowed(host, self.allowed):
                raise OutboundRefused(f"The address {host[:100]!r} is not allowed: it is not a public address "
                                      "(network.allow_private lifts this rule)")
        return parsed

    @asynccontextmanager
    async def open(self, method: str, url: str, *, headers: Mapping[str, str] | None = None, data: Any = None,
                   timeout: float | None = None, follow_redirects: bool = True
                   ) -> AsyncIterator[aiohttp.ClientResponse]:
        """A streaming response (read it with ``response.content``), after
        following and checking every redirect."""
        client_timeout = aiohttp.ClientTimeout(total=timeout or self.timeout)
        target = self.check_url(url)
        response: aiohttp.ClientResponse | None = None
        try:
            for _ in range(self.max_redirects + 1):
                response = await self.session().request(method, target, headers=headers, data=data,
                                                        allow_redirects=False, timeout=client_timeout)
                location = response.headers.get("Location")
                if not follow_redirects or response.status not in REDIRECTS or not location:
                    break
                response.release()
                target = self.check_url(urljoin(str(target), location))
                if response.status == 303 or (response.status in (301, 302) and method.upper() == "POST"):
                    method, data = "GET", None
            else:
                raise OutboundError(f"More than {self.max_redirects} redirects")
            assert response is not None
            yield response
        except (OutboundRefused, OutboundError):
            raise
        except TimeoutError:
            raise OutboundError("The request timed out") from None
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.__cause__, OutboundRefused):
                raise exc.__cause__ from None
            raise OutboundError(f"Could not connect to {target.host!r}") from None
        except aiohttp.ClientError:
            raise OutboundError(f"The request to {target.host!r} failed") from None
        finally:
            if response is not None:
                response.release()

    async def fetch(self, method: str, url: str, *, headers: Mapping[str, str] | None = None, data: Any = None,
                    timeout: float | None = None, max_bytes: int | None = None) -> FetchResult:
        """The whole response, refused when its body exceeds ``max_bytes``."""
        cap = max_bytes or self.max_bytes
        async with self.open(method, url, headers=headers, data=data, timeout=timeout) as response:
            chunks: list[bytes] = []
            size = 0
            try:
                async for chunk in response.content.iter_chunked(65536):
                    size += len(chunk)
                    if size > cap:
                        raise OutboundError(f"The response is larger than {cap} bytes")
                    chunks.append(chunk)
            except TimeoutError:
                raise OutboundError("The request timed out") from None
            except aiohttp.ClientError:
                raise OutboundError("The response could not be read") from None
            return FetchResult(response.status, dict(response.headers), b"".join(chunks), str(response.url))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
