"""MCP: ``tools/call`` of the items-read tool beside the same REST list.

The REST suite's data set (100k rows, SQLite and PostgreSQL) and its list call,
``GET /api/items/bench?filter={"score":{"_gte":900}}&sort=-score&limit=20``,
against ``POST /mcp`` carrying one JSON-RPC ``tools/call`` of
``collections_list`` with the same filter, sort and limit (stateless streamable
HTTP, JSON response), with wrk at 32 connections on one server in one run. The
two answers are checked to hold the same rows first. Target: MCP at >= 0.8x
REST's requests/s.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any

CALL = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "collections_list",
                   "arguments": {"collection": "bench", "filter": {"score": {"_gte": 900}}, "sort": ["-score"],
                                 "limit": 20}}}
HEADERS = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"}


def _list_vs_rest(dialect: str, seconds: int) -> dict[str, Any]:
    from bench import rest

    body = json.dumps(CALL)
    lua = (
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(body)}\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
        + "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in HEADERS.items())
    )
    with rest.bench_database(dialect) as (url, work), rest.seeded_workeros(url, work) as base:
        rest_rows = json.loads(rest._request(base + rest.LIST_PATH))["data"]
        answer = json.loads(rest._request(base + "/mcp", "POST", body.encode(), HEADERS))
        if answer["result"]["structuredContent"]["data"] != rest_rows:
            raise RuntimeError("the MCP tool call and the REST call returned different rows")
        out: dict[str, Any] = rest._cases(base, seconds, (("rest", rest.LIST_PATH, None), ("mcp", "/mcp", lua)))
    out["rps_ratio"] = out["mcp"]["rps"] / out["rest"]["rps"]
    print(f"  {dialect:<8} list  mcp {out['mcp']['rps']:8.0f} req/s p99 {out['mcp']['p99_ms']:6.1f} ms | "
          f"rest {out['rest']['rps']:8.0f} req/s p99 {out['rest']['p99_ms']:6.1f} ms | "
          f"ratio {out['rps_ratio']:4.2f}x")
    return out


def run(quick: bool = False) -> dict[str, Any]:
    result: dict[str, Any] = {"targets": {"list_rps_ratio": 0.8}}
    if shutil.which("wrk") is None:
        print("  wrk is not installed: skipped (make bench installs it)")
        return {**result, "skipped": "wrk not installed"}
    dialects = [d for d in os.environ.get("WOS_BENCH_DIALECTS", "sqlite,postgres").split(",") if d]
    result["list"] = {d: _list_vs_rest(d, 3 if quick else 10) for d in dialects}
    return result
