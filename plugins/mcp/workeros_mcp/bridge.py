"""``workeros mcp --url URL --key KEY``: a stdio bridge for desktop agents
(Claude Desktop, Cursor…) that start an MCP server as a process. It relays
newline-delimited JSON-RPC from stdin to ``POST URL`` (the server's ``/mcp``)
with ``Authorization: Bearer KEY``, and each answer back to stdout. The server
does everything else — authentication, guards, permissions — so a key's guards
hold over the bridge exactly as over HTTP. Logs go to stderr only."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

import orjson

from workeros.hookspecs.lifecycle import Command


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", required=True, help="The server's MCP endpoint, e.g. https://api.example.com/mcp")
    parser.add_argument("--key", default=None,
                        help="API key (pak_…) or access token; default: the WORKEROS_KEY environment variable")


def _write(message: Any) -> None:
    sys.stdout.buffer.write(orjson.dumps(message) + b"\n")
    sys.stdout.buffer.flush()


def _error(id_: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id_, "error": {"code": code, "message": message}}


async def relay(url: str, key: str) -> int:
    import aiohttp

    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json",
               "Accept": "application/json, text/event-stream"}
    loop = asyncio.get_running_loop()
    timeout = aiohttp.ClientTimeout(total=None, sock_read=300)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.buffer.readline)
            if not line:
                return 0
            if not line.strip():
                continue
            try:
                message = orjson.loads(line)
            except orjson.JSONDecodeError:
                _write(_error(None, -32700, "Parse error: a line is not JSON"))
                continue
            id_ = message.get("id") if isinstance(message, dict) else None
            try:
                async with http.post(url, data=line, headers=headers) as r:
                    body = await r.read()
                    if isinstance(message, dict) and message.get("method") == "initialize" and r.status == 200:
                        version = orjson.loads(body).get("result", {}).get("protocolVersion")
                        if version:
                            headers["MCP-Protocol-Version"] = version
                    if r.status == 202 or not body:
                        continue
                    try:
                        answer = orjson.loads(body)
                    except orjson.JSONDecodeError:
                        answer = None
                    if isinstance(answer, dict) and "jsonrpc" in answer:
                        _write(answer)
                    elif id_ is not None:
                        # An HTTP refusal (401, 403, 400) in the contract's envelope.
                        errors = (answer or {}).get("errors") if isinstance(answer, dict) else None
                        text = errors[0]["message"] if errors else f"HTTP {r.status}"
                        _write(_error(id_, -32001 if r.status in (401, 403) else -32600, text))
            except aiohttp.ClientError as exc:
                print(f"workeros mcp: {url}: {exc}", file=sys.stderr)
                if id_ is not None:
                    _write(_error(id_, -32603, f"The server could not be reached: {type(exc).__name__}"))


def run(args: argparse.Namespace, ctx: Any) -> Any:
    key = args.key or os.environ.get("WORKEROS_KEY")
    if not key:
        print("workeros mcp: give --key or set WORKEROS_KEY", file=sys.stderr)
        return 2
    return relay(args.url, key)  # the CLI runs it to completion


COMMAND = Command("mcp", "Relay MCP between stdin/stdout and a server (for desktop agents)", run=run,
                  configure=configure)
