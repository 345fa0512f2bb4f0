"""``@directus/sdk`` 18.0.3 (Node) against a real server on each dialect: every
operation docs/client.md lists as working (tests/sdk_node/directus_sdk.mjs)."""

from __future__ import annotations

import json
import os
import subprocess

from served import ACCESS_TOKEN_TTL, node_ready

#: Every check the script must report, passed: a check that silently stopped
#: running fails here too.
EXPECTED = [
    "login json mode",
    "refresh json mode",
    "readMe",
    "createItem and readItem",
    "createItems",
    "readItems with filter, sort, limit and relational fields",
    "updateItem",
    "updateItems by keys",
    "aggregate with groupBy",
    "staticToken with an API key",
    "graphql on items",
    "deleteItem and deleteItems by keys",
    "realtime at /api/realtime, handshake mode",
    "realtime default URL (/websocket)",
    "subscribe to delete events only, which carry the keys",
    "realtime strict mode (?access_token= on the upgrade)",
    "TOKEN_EXPIRED: the SDK re-authenticates in place, the subscription lives on",
    "cookie mode: login, refresh from the session cookie, logout",
    "session mode: the cookie is the credential",
    "fields on /users/me and /users",
    "deleteItems by query filter",
    "updateItemsBatch (an array of items with their keys)",
    "SEARCH with a query body (withSearch)",
    "server ping, info, OpenAPI spec; GET /auth",
    "graphql system endpoint",
    "logout json mode",
]


def test_directus_sdk(served) -> None:
    folder = node_ready()
    done = subprocess.run(
        ["node", "directus_sdk.mjs", served.url, "sdk-admin@example.com", "correct horse 1"],
        cwd=folder, capture_output=True, text=True, timeout=300,
        env={**os.environ, "WOS_ACCESS_TOKEN_TTL": str(ACCESS_TOKEN_TTL)})
    results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    failures = [r for r in results if not r["ok"]]
    assert not failures, json.dumps(failures, indent=1) + "\n" + done.stderr[-3000:] + served.log()[-3000:]
    assert [r["check"] for r in results] == EXPECTED, done.stdout + done.stderr[-3000:]
    assert done.returncode == 0, done.stderr[-3000:]
