"""examples/rag end to end over real HTTP: the collection filled by the
offline embedder, the ``answer`` function searching with ``ctx.db`` as the
caller and sending its prompt to an OpenAI-compatible chat server on loopback."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from callers import TEST_CALLER_HEADER, TestCallers

from workeros.api import SERVICES

ROOT = Path(__file__).resolve().parents[3]


def _example() -> Any:
    spec = importlib.util.spec_from_file_location("rag_example", ROOT / "examples" / "rag" / "rag.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


async def test_the_rag_example_answers_from_the_nearest_notes(make_server: Any) -> None:
    pytest.importorskip("wordllama", reason="the local embedder's package (wordllama) is not installed")
    prompts: list[str] = []

    async def chat(request: web.Request) -> web.Response:
        body = await request.json()
        prompts.append(body["messages"][0]["content"])
        return web.json_response({"choices": [{"message": {"role": "assistant", "content": "Within 14 days [1]."}}]})

    chat_app = web.Application()
    chat_app.router.add_post("/v1/chat/completions", chat)
    chat_server = TestServer(chat_app, host="127.0.0.1")
    await chat_server.start_server()
    try:
        settings = {"network.allow_hosts": ["127.0.0.1/32"],
                    "functions.env": {"CHAT_URL": str(chat_server.make_url("/v1/chat/completions"))}}
        async with make_server(TestCallers(), **settings) as server:
            if server.app[SERVICES].get("functions") is None:
                pytest.skip("the functions plugin is not installed")
            rag = _example()
            base = str(server.make_url("")).rstrip("/")
            async with aiohttp.ClientSession(headers={TEST_CALLER_HEADER: "admin"}) as session:
                await rag.setup(session, base)
                result = await rag.ask(session, base, "how long until my refund is paid back?")
        assert len(result["passages"]) == 3
        assert result["passages"][0]["body"] == rag.NOTES[0]
        assert [p["distance"] for p in result["passages"]] == sorted(p["distance"] for p in result["passages"])
        assert result["answer"] == "Within 14 days [1]."
        assert prompts == [result["prompt"]] and rag.NOTES[0] in prompts[0]
    finally:
        await chat_server.close()
