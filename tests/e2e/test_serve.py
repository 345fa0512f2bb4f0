"""A real ``workeros serve`` process: boot, health, graceful SIGTERM, plugin
isolation and strict mode, multiple workers."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time

import aiohttp
import pytest

from tests.conftest import FIRST_PARTY, FIXTURES
from workeros.sdk.testing import ServerProcess, free_port

ENV = {"WORKEROS_LOAD_PLUGINS": ",".join(FIRST_PARTY)}


def plugins_dir(tmp_path, *names):
    folder = tmp_path / "plugins"
    folder.mkdir(exist_ok=True)
    for name in names:
        shutil.copy(FIXTURES / f"{name}.py", folder)
    return str(folder)


async def test_serve_answers_health_and_drains_on_sigterm(tmp_path, wos_database_url) -> None:
    args = ["--plugins-dir", plugins_dir(tmp_path, "slow_route")]
    with ServerProcess(data_dir=tmp_path, database_url=wos_database_url, args=args, env=ENV) as server:
        async with aiohttp.ClientSession() as session:
            async with session.get(server.url + "/api/server/health") as r:
                assert r.status == 200
            slow = asyncio.create_task(session.get(server.url + "/slow?s=1.5"))
            await asyncio.sleep(0.4)  # the request is in flight
            server.proc.send_signal(__import__("signal").SIGTERM)
            response = await slow
            assert response.status == 200, "an in-flight request finishes during shutdown"
            assert (await response.json()) == {"data": {"slept": True}}
            await asyncio.get_running_loop().run_in_executor(None, server.proc.wait, 20)
            assert server.proc.returncode == 0, server.log()
            with pytest.raises(aiohttp.ClientConnectionError):
                await session.get(server.url + "/api/server/health")
    assert "shutting down gracefully" in server.log()


def test_broken_plugin_does_not_stop_boot_but_strict_mode_does(tmp_path) -> None:
    args = ["--plugins-dir", plugins_dir(tmp_path, "broken_on_import")]
    with ServerProcess(data_dir=tmp_path, args=args, env=ENV) as server:
        pass
    assert "broken_on_import" in server.log() and "broken on purpose" in server.log()

    env = {**ENV, "WORKEROS_STRICT_PLUGINS": "1"}
    strict = ServerProcess(data_dir=tmp_path, args=args, env=env, startup_timeout=15)
    with pytest.raises(RuntimeError, match="server exited with 2"):
        strict.start()
    strict.stop()
    assert "failed to load" in strict.log()


def test_workers_share_one_port(tmp_path) -> None:
    with ServerProcess(data_dir=tmp_path, args=[], env={**ENV, "WORKEROS_SERVER_WORKERS": "2"}) as server:
        pids = set()
        import urllib.request

        for _ in range(40):
            with urllib.request.urlopen(server.url + "/api/server/health") as r:
                assert r.status == 200
        # Two worker processes are children of the supervisor.
        out = subprocess.run(["pgrep", "-P", str(server.proc.pid)], capture_output=True, text=True).stdout
        pids = set(out.split())
        assert len(pids) == 2
        assert server.terminate() == 0


def test_workers_stop_when_their_supervisor_is_killed(tmp_path) -> None:
    """SIGKILL leaves the supervisor no chance to signal its workers: they
    notice it is gone and shut down instead of serving on alone."""
    import psutil

    with ServerProcess(data_dir=tmp_path, args=[], env={**ENV, "WORKEROS_SERVER_WORKERS": "2"}) as server:
        workers = psutil.Process(server.proc.pid).children()
        assert len(workers) == 2
        server.proc.kill()
        server.proc.wait(30)
        gone, alive = psutil.wait_procs(workers, timeout=60)
        for orphan in alive:
            orphan.kill()
        assert not alive, "workers kept serving after their supervisor was killed"


def test_cli_plugins_json_and_version(tmp_path) -> None:
    env = {"WORKEROS_DATA_DIR": str(tmp_path), "WORKEROS_LOAD_PLUGINS": ",".join(FIRST_PARTY), "PATH": ""}
    out = subprocess.run([sys.executable, "-m", "workeros", "plugins", "--json"], capture_output=True, text=True,
                         env=env, check=True).stdout
    data = json.loads(out)
    by_name = {p["name"]: p for p in data["plugins"]}
    assert by_name["sqlite"]["distribution"] == "workeros-sqlite"
    assert by_name["rest"]["version"] == "0.1.0"
    assert "workeros_register_db_dialects" in by_name["sqlite"]["hooks"]
    assert data["backends"]["db"]["active"] == "sqlite"
    version = subprocess.run([sys.executable, "-m", "workeros", "--version"], capture_output=True, text=True,
                             env=env, check=True).stdout
    assert version.startswith("workeros 0.1.0")
    assert "workeros-sqlite 0.1.0" in version


def test_cli_config_shows_sources_and_hides_secrets(tmp_path) -> None:
    (tmp_path / "workeros.toml").write_text('[server]\nport = 9001\n[log]\nlevel = "warning"\n[bogus]\nx = 1\n')
    env = {"WORKEROS_DATA_DIR": str(tmp_path), "WORKEROS_LOAD_PLUGINS": ",".join(FIRST_PARTY),
           "WORKEROS_DATABASE_URL": "postgresql://app:hunter2@127.0.0.1/x", "WORKEROS_LOG_LEVEL": "error"}
    out = subprocess.run([sys.executable, "-m", "workeros", "config", "--json"], capture_output=True, text=True,
                         env=env, check=True).stdout
    data = json.loads(out)
    rows = {r["name"]: r for r in data["settings"]}
    assert (rows["server.port"]["value"], rows["server.port"]["source"]) == (9001, "file")
    assert (rows["log.level"]["value"], rows["log.level"]["source"]) == ("error", "env")
    assert rows["server.host"]["source"] == "default"
    assert "hunter2" not in out
    assert {"source": "file", "name": "bogus.x"} in data["unknown"]


def test_serve_refuses_a_bad_setting_clearly(tmp_path) -> None:
    port = free_port()
    result = subprocess.run([sys.executable, "-m", "workeros", "--data-dir", str(tmp_path), "serve", "--port",
                             str(port), "--database-url", "mysql://x/y"], capture_output=True, text=True,
                            env={"WORKEROS_LOAD_PLUGINS": ",".join(FIRST_PARTY)}, timeout=30)
    assert result.returncode == 2
    assert "no installed dialect serves database URLs starting mysql://" in result.stderr
    assert "Traceback" not in result.stderr


def test_health_latency_is_reported(tmp_path) -> None:
    with ServerProcess(data_dir=tmp_path, env=ENV) as server:
        import urllib.request

        start = time.perf_counter()
        with urllib.request.urlopen(server.url + "/api/server/health") as r:
            body = json.loads(r.read())
        assert body["data"]["checks"]["database"]["latency_ms"] < (time.perf_counter() - start) * 1000 + 1
