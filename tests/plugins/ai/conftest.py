"""A fake Anthropic Messages API: a real aiohttp server on loopback (its own
thread and event loop, one per test module) answering ``POST /v1/messages``
the way the API does — a message whose content is a ``tool_use`` block, with
``usage`` — from answers each test scripts, and recording every request it
received (headers and JSON body) so tests can check what the model was sent."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.accounts_setup import FAST_HASH, make_server, password, sign_up  # noqa: F401

API_KEY = "sk-ant-test-key"
_ids = itertools.count(1)


class Status:
    """A scripted HTTP error answer."""

    def __init__(self, status: int, kind: str = "api_error", message: str = "Internal server error") -> None:
        self.status, self.kind, self.message = status, kind, message


class Text:
    """A scripted answer without the tool call (plain text)."""

    def __init__(self, text: str) -> None:
        self.text = text


class FakeAnthropic:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.script: list[Any] = []
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: Any = None

    def answer(self, *answers: Any) -> None:
        """Queue answers: a dict is the input of the tool the request forced;
        :class:`Status` an HTTP error; :class:`Text` a text-only message."""
        self.script.extend(answers)

    def reset(self) -> None:
        self.requests.clear()
        self.script.clear()

    async def _messages(self, request: Any) -> Any:
        from aiohttp import web

        raw = await request.text()
        body = json.loads(raw)
        self.requests.append({"headers": {k.lower(): v for k, v in request.headers.items()}, "body": body, "raw": raw})
        if not self.script:
            return web.json_response({"type": "error", "error": {"type": "api_error", "message": "unscripted"}},
                                     status=500)
        step = self.script.pop(0)
        if isinstance(step, Status):
            return web.json_response({"type": "error", "error": {"type": step.kind, "message": step.message}},
                                     status=step.status)
        usage = {"input_tokens": 100 + len(request.headers), "output_tokens": 42}
        if isinstance(step, Text):
            content = [{"type": "text", "text": step.text}]
            stop = "end_turn"
        else:
            tool = body["tool_choice"]["name"]
            content = [{"type": "tool_use", "id": f"toolu_{next(_ids):04d}", "name": tool, "input": step}]
            stop = "tool_use"
        return web.json_response({"id": f"msg_{next(_ids):04d}", "type": "message", "role": "assistant",
                                  "model": body.get("model"), "content": content, "stop_reason": stop,
                                  "stop_sequence": None, "usage": usage})

    def start(self) -> None:
        from aiohttp import web

        ready = threading.Event()

        async def serve() -> None:
            app = web.Application()
            app.router.add_post("/v1/messages", self._messages)
            self._runner = web.AppRunner(app)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self.url = f"http://127.0.0.1:{port}"
            ready.set()

        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(serve(), self._loop)
        if not ready.wait(10):
            raise RuntimeError("the fake Anthropic server did not start")

    def stop(self) -> None:
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)

    @classmethod
    @contextlib.contextmanager
    def running(cls) -> Iterator[FakeAnthropic]:
        """A started server, stopped on leaving the block."""
        server = cls()
        server.start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="module")
def fake_anthropic_server() -> Iterator[FakeAnthropic]:
    with FakeAnthropic.running() as server:
        yield server


@pytest.fixture
def fake_anthropic(fake_anthropic_server: FakeAnthropic) -> Iterator[FakeAnthropic]:
    fake_anthropic_server.reset()
    yield fake_anthropic_server
    fake_anthropic_server.reset()


@pytest.fixture
def wos_settings_overrides(fake_anthropic: FakeAnthropic, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    return {**FAST_HASH, "ai.api_key": API_KEY, "ai.base_url": fake_anthropic.url, "ai.max_retries": 0,
            "ai.timeout": 20.0}
