"""CLI start (``workeros --version``) and boot-to-healthy (``workeros serve`` on a
fresh SQLite data dir until /api/server/health answers 200).

Baselines, same run: the bare interpreter (``python -c pass``) for CLI start, and
a bare aiohttp app answering one route for boot-to-healthy. Targets: under 0.3 s
and under 1.5 s.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from bench.common import PYTHON, clean_env, median_of, report, time_command, wait_http_ok

BARE_AIOHTTP = """
import sys
from aiohttp import web
async def health(request):
    return web.json_response({"data": {"status": "ok"}})
app = web.Application()
app.router.add_get("/api/server/health", health)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _boot(argv_for_port) -> float:
    import time

    port = _port()
    start = time.perf_counter()
    proc = subprocess.Popen(argv_for_port(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=clean_env())
    try:
        wait_http_ok(f"http://127.0.0.1:{port}/api/server/health", proc)
        return time.perf_counter() - start
    finally:
        proc.terminate()
        proc.wait(30)


def run(quick: bool = False) -> dict[str, Any]:
    runs = 3 if quick else 11
    workeros = shutil.which("workeros") or str(Path(PYTHON).parent / "workeros")
    env = clean_env()
    cli, _ = median_of(lambda: time_command([workeros, "--version"], env), runs)
    interp, _ = median_of(lambda: time_command([PYTHON, "-c", "pass"], env), runs)

    def workeros_boot(port: int) -> list[str]:
        data = tempfile.mkdtemp(prefix="wos-bench-")
        return [workeros, "--data-dir", data, "serve", "--port", str(port)]

    boot, _ = median_of(lambda: _boot(workeros_boot), max(3, runs // 2))
    bare, _ = median_of(lambda: _boot(lambda port: [PYTHON, "-c", BARE_AIOHTTP, str(port)]), max(3, runs // 2))
    return {
        "cli_start": report("CLI start: workeros --version (median)", cli, interp),
        "boot_to_healthy": report("boot to healthy, fresh SQLite (median)", boot, bare),
        "targets": {"cli_start_s": 0.3, "boot_to_healthy_s": 1.5},
    }
