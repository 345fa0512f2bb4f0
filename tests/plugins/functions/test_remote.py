"""The http sandbox through the reference executor: the same behavioural tests
as the quickjs sandbox (collected here again with this module's ``booted``),
plus the executor's own refusals."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from callers import Api, TestCallers
from test_bridge import (  # noqa: F401 (collected again, on the http sandbox)
    test_db_reads_as_two_roles_equal_rest,
    test_db_writes_follow_rules_and_failures_write_nothing,
    test_email_env_and_user,
    test_fetch_under_the_network_rule,
)
from test_functions import (  # noqa: F401
    test_crud_validation_versions_and_admin_only,
    test_no_host_access_and_no_shared_state,
    test_request_return_throw_timeout_memory,
    test_runaway_functions_do_not_hold_the_server,
    test_who_may_run_and_logs,
)
from workeros_quickjs import QuickJS
from workeros_remote_sandbox.executor import executor_app, sign

from workeros.http.app import create_app
from workeros.http.keys import SERVICES
from workeros.plugins import Plugins
from workeros.sdk.testing import free_port

SECRET = "test-executor-secret"


@pytest.fixture
async def executor() -> AsyncIterator[str]:
    server = TestServer(executor_app(QuickJS(), SECRET), host="127.0.0.1", port=free_port())
    await server.start_server()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        await server.close()


@pytest.fixture
def booted(wos_settings: Any, executor: str) -> Callable[..., Any]:
    @asynccontextmanager
    async def run(*extra: Any, **overrides: Any) -> AsyncIterator[tuple[Api, Any, TestClient]]:
        port = free_port()
        s = wos_settings.with_overrides(functions__sandbox="http", remote_sandbox__url=executor,
                                        remote_sandbox__secret=SECRET,
                                        remote_sandbox__callback_url=f"http://127.0.0.1:{port}", **overrides)
        plugins = Plugins(load=s["load_plugins"], disable=s["disable_plugins"] or (), strict=s["strict_plugins"],
                          plugins_dir=s["plugins_dir"])
        plugins.load_all()
        plugins.register(TestCallers(), name="test-callers", distribution="test-fixtures")
        server = TestServer(await create_app(s, plugins=plugins), host="127.0.0.1", port=port)
        await server.start_server()
        try:
            async with TestClient(server) as client:
                assert type(server.app[SERVICES].sandbox).__name__ == "RemoteSandbox"
                yield Api(client).as_admin(), server.app[SERVICES], client
        finally:
            await server.close()

    return run


async def test_executor_refuses_unsigned_and_bridge_refuses_unknown_tokens(booted, executor) -> None:
    async with booted() as (admin, _, _), aiohttp.ClientSession() as http:
        body = b'{"code": "export default () => 1"}'
        for headers in ({}, sign("wrong secret", body), sign(SECRET, body, at=1)):
            async with http.post(executor + "/run", data=body, headers=headers) as r:
                assert r.status == 401
        async with http.post(executor + "/run", data=body, headers=sign(SECRET, body)) as r:
            assert r.status == 200 and (await r.json())["ok"] == 1
        for token in ("", "made-up"):
            r = await admin.anonymous().post("/api/sandbox/bridge", json={"call": "db.read", "args": ["x"]},
                                             headers={"Workeros-Invocation": token})
            assert r.code == "INVALID_CREDENTIALS", r


def test_functions_executor_command(tmp_path) -> None:
    """``workeros functions-executor`` as a process: signed runs, unsigned refused."""
    import os
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.request
    from pathlib import Path

    port = free_port()
    cli = Path(sys.executable).parent / "workeros"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKEROS_")}
    proc = subprocess.Popen([str(cli), "--data-dir", str(tmp_path), "functions-executor", "--port", str(port),
                             "--secret", SECRET], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(base + "/health", timeout=5) as r:
                    assert r.status == 200
                    break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read().decode()[-2000:]
                time.sleep(0.2)

        def post(path: str, body: bytes, headers: dict) -> tuple[int, bytes]:
            req = urllib.request.Request(base + path, data=body, method="POST",
                                         headers={"Content-Type": "application/json", **headers})
            try:
                with urllib.request.urlopen(req, timeout=60) as r:
                    return r.status, r.read()
            except urllib.error.HTTPError as exc:
                return exc.code, exc.read()

        body = b'{"code": "export default async (req) => req.n * 2", "args": {"req": {"n": 21}}}'
        status, raw = post("/run", body, sign(SECRET, body))
        assert status == 200 and json_loads(raw) == {"ok": 42, "logs": []}, raw
        assert post("/run", body, sign("nope", body))[0] == 401
        body = b'{"code": "export default (=> 1"}'
        status, raw = post("/check", body, sign(SECRET, body))
        assert status == 200 and json_loads(raw)["error"][1] == 1, raw
    finally:
        proc.terminate()
        proc.wait(30)


def json_loads(raw: bytes) -> Any:
    import json

    return json.loads(raw)
