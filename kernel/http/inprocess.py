"""Calling the aiohttp app in this process without a socket: what the ASGI and
Lambda runtimes stand on.

:class:`InProcessApp` starts the app as ``workeros serve`` does (an
``AppRunner``: cleanup contexts run, the app freezes) but opens no port.
:meth:`InProcessApp.call` builds an aiohttp request from a method, a path, the
headers and a body, runs it through the app's own handler (middlewares,
routing, sub-apps), and reports the response through callbacks as aiohttp
writes it: ``start(status, headers)`` once, then ``body(chunk, more)`` for each
chunk. Hop-by-hop headers are dropped (the host frames the response itself).
WebSocket upgrades are not supported (the runtimes that use this declare
``realtime=False``); a streamed response such as SSE streams as far as the host
lets it.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web
from aiohttp.http import HttpVersion11, RawRequestMessage
from aiohttp.streams import EMPTY_PAYLOAD, StreamReader
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

Start = Callable[[int, list[tuple[str, str]]], Awaitable[None]]
Body = Callable[[bytes, bool], Awaitable[None]]
HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection", "te",
                        "trailer"})
READ_LIMIT = 2 ** 16


class _Transport(asyncio.Transport):
    """What aiohttp asks of a connection's transport (addresses, closing)."""

    def __init__(self, peername: Any, sockname: Any) -> None:
        super().__init__()
        self._extra = {"peername": peername, "sockname": sockname}
        self._closing = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._extra.get(name, default)

    def is_closing(self) -> bool:
        return self._closing

    def close(self) -> None:
        self._closing = True

    def write(self, data: Any) -> None:  # responses go through the writer, never here
        pass


class _Protocol:
    """The per-connection object aiohttp's request reads its limits and
    addresses from. Flow control works as on a socket: while the request's
    buffer is full, the body feeder waits."""

    max_field_size = 8190
    max_line_length = 8190
    max_headers = 128

    def __init__(self, transport: _Transport, ssl: bool) -> None:
        self.transport = transport
        self.peername = transport.get_extra_info("peername")
        self.sockname = transport.get_extra_info("sockname")
        self.ssl_context = True if ssl else None
        self.writer: Any = None
        self.connected = True
        self._reading_paused = False
        self.resumed = asyncio.Event()
        self.resumed.set()

    def pause_reading(self) -> None:
        self._reading_paused = True
        self.resumed.clear()

    def resume_reading(self, resume_parser: bool = True) -> None:
        self._reading_paused = False
        self.resumed.set()


class _Writer:
    """aiohttp's payload writer interface, reporting to ``start``/``body``."""

    def __init__(self, start: Start, body: Body) -> None:
        self._start = start
        self._body = body
        self.buffer_size = 0
        self.output_size = 0
        self.length: int | None = None
        self._compress: Any = None
        self.started = False
        self.finished = False

    def enable_chunking(self) -> None:
        pass

    def enable_compression(self, encoding: str = "deflate", strategy: int | None = None) -> None:
        wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
        self._compress = zlib.compressobj(wbits=wbits, strategy=zlib.Z_DEFAULT_STRATEGY if strategy is None
                                          else strategy)

    async def write_headers(self, status_line: str, headers: Any) -> None:
        status = int(status_line.split(" ", 2)[1])
        out = [(k, v) for k, v in headers.items() if k.lower() not in HOP_BY_HOP]
        self.started = True
        await self._start(status, out)

    def send_headers(self) -> None:
        pass

    async def write(self, chunk: bytes, *, drain: bool = True, LIMIT: int = 0x10000) -> None:  # noqa: N803
        if self._compress is not None:
            chunk = self._compress.compress(chunk)
        if chunk:
            self.output_size += len(chunk)
            await self._body(bytes(chunk), True)

    async def write_eof(self, chunk: bytes = b"") -> None:
        if self.finished:
            return
        if self._compress is not None:
            chunk = self._compress.compress(chunk) + self._compress.flush()
        self.output_size += len(chunk)
        self.finished = True
        await self._body(bytes(chunk), False)

    async def drain(self) -> None:
        pass

    def set_eof(self) -> None:
        pass


class InProcessApp:
    """The app, started, answering calls made in this process::

        app = InProcessApp(await create_app(settings))
        await app.startup()
        await app.call("GET", "/api/server/health", [], b"", start=..., body=...)
        await app.shutdown()
    """

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.runner = web.AppRunner(app, handle_signals=False, access_log=None)
        self.started = False

    async def startup(self) -> None:
        await self.runner.setup()
        self.started = True

    async def shutdown(self) -> None:
        if self.started:
            self.started = False
            await self.runner.cleanup()

    async def call(self, method: str, path: str, headers: Iterable[tuple[str, str]],
                   body: bytes | AsyncIterator[bytes], *, start: Start, send: Body,
                   client: tuple[str, int] | None = None, server: tuple[str, int] | None = None,
                   scheme: str = "http") -> None:
        """Run one request; the response arrives through ``start`` and ``send``."""
        server_obj = self.runner.server
        assert server_obj is not None, "startup() first"
        loop = asyncio.get_running_loop()
        transport = _Transport(client or ("127.0.0.1", 0), server or ("127.0.0.1", 80))
        protocol = _Protocol(transport, ssl=scheme == "https")
        writer = _Writer(start, send)
        protocol.writer = writer
        hdrs = CIMultiDict(headers)
        message = RawRequestMessage(method.upper(), path, HttpVersion11, CIMultiDictProxy(hdrs),
                                    tuple((k.encode("latin-1"), v.encode("latin-1")) for k, v in hdrs.items()),
                                    False, None, False, "chunked" in hdrs.get("Transfer-Encoding", "").lower(),
                                    URL(path, encoded=True))
        feeder = None
        if isinstance(body, bytes | bytearray):
            if body:
                payload: Any = StreamReader(protocol, READ_LIMIT, loop=loop)  # type: ignore[arg-type]
                payload.feed_data(bytes(body))
                payload.feed_eof()
            else:
                payload = EMPTY_PAYLOAD
        else:
            payload = StreamReader(protocol, READ_LIMIT, loop=loop)  # type: ignore[arg-type]
            feeder = asyncio.create_task(_feed(protocol, payload, body))
        task = asyncio.current_task()
        assert task is not None
        request = server_obj.request_factory(message, payload, protocol, writer, task)  # type: ignore[arg-type]
        try:
            try:
                response = await server_obj.request_handler(request)
            except web.HTTPException as exc:  # raised outside the error middleware (rare)
                response = web.Response(status=exc.status, reason=exc.reason, text=exc.text,
                                        headers=exc.headers)
            if not writer.started:
                await response.prepare(request)
            await response.write_eof()
            if not writer.finished:
                await writer.write_eof()
        finally:
            if feeder is not None:
                feeder.cancel()
            protocol.connected = False
            transport.close()


    async def call_buffered(self, method: str, path: str, headers: Iterable[tuple[str, str]], body: bytes,
                            **kwargs: Any) -> tuple[int, list[tuple[str, str]], bytes]:
        """One call, the whole response in memory: ``(status, headers, body)``."""
        head: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def start(status: int, out: list[tuple[str, str]]) -> None:
            head["status"], head["headers"] = status, out

        async def send(chunk: bytes, _more: bool) -> None:
            chunks.append(chunk)

        await self.call(method, path, headers, body, start=start, send=send, **kwargs)
        return head["status"], head["headers"], b"".join(chunks)


async def _feed(protocol: _Protocol, payload: StreamReader, chunks: AsyncIterator[bytes]) -> None:
    try:
        async for chunk in chunks:
            await protocol.resumed.wait()
            if chunk:
                payload.feed_data(chunk)
        payload.feed_eof()
    except Exception as exc:  # the client went away
        payload.set_exception(exc)
