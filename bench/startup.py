"""CLI start (``workeros --version``), boot-to-healthy (``workeros serve`` on a
fresh SQLite data dir until /api/server/health answers 200) and idle memory.

Each boot is measured three ways: wall time to the first 200, the CPU time the
server process used until then (user + system, which the machine's load barely
moves), and its resident set (VmRSS) one second after it answered. Boots run
with every installed plugin, and with only the default plugins (the ``workeros-*``
distributions the root package requires, chosen with ``WORKEROS_LOAD_PLUGINS``).

Before any timing, the project's own modules are byte-compiled (as installing a
wheel does): with an editable install and ``PYTHONDONTWRITEBYTECODE`` set, every
boot would otherwise compile the kernel and plugins from source (about 190
modules), a cost no installed server pays.

Baselines, same run: the bare interpreter (``python -c pass``) for CLI start, and
a bare aiohttp app answering one route for boot and memory. Targets: CLI under
0.3 s; boot under 0.4 s and idle RSS under 80 MB with the default plugins.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
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


#: The project's source folders (the editable install's packages).
SOURCES = ("kernel", "hookspecs", "sdk", "plugins")


def compile_sources() -> None:
    """Write the bytecode of the project's own modules, as a wheel install does."""
    root = Path(__file__).resolve().parent.parent
    subprocess.run([PYTHON, "-m", "compileall", "-q", *(str(root / name) for name in SOURCES)],
                   check=True, stdout=subprocess.DEVNULL, env=clean_env())


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: Seconds the server idles after its first 200 before its memory is read.
IDLE_S = 1.0


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def _boot(argv_for_port, env: dict[str, str] | None = None) -> tuple[float, float, float]:
    """(wall seconds to healthy, CPU seconds to healthy, idle RSS in MB)."""
    port = _port()
    start = time.perf_counter()
    proc = subprocess.Popen(argv_for_port(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=env or clean_env())
    try:
        wait_http_ok(f"http://127.0.0.1:{port}/api/server/health", proc, timeout=120)
        wall = time.perf_counter() - start
        cpu = _cpu_seconds(proc.pid)
        time.sleep(IDLE_S)
        return wall, cpu, _rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(30)


def default_plugins() -> list[str]:
    """Entry-point names of the plugins the root distribution requires (not its extras)."""
    from packaging.requirements import Requirement

    required = {Requirement(r).name for r in md.requires("workeros") or ()
                if Requirement(r).marker is None and r.startswith("workeros-")}
    return sorted({ep.name for ep in md.entry_points(group="workeros") if ep.dist and ep.dist.name in required})


def _medians(samples: list[tuple[float, float, float]]) -> tuple[float, float, float]:
    return tuple(statistics.median(s[i] for s in samples) for i in range(3))  # type: ignore[return-value]


def run(quick: bool = False) -> dict[str, Any]:
    runs = 3 if quick else 11
    compile_sources()
    workeros = shutil.which("workeros") or str(Path(PYTHON).parent / "workeros")
    env = clean_env()
    cli, _ = median_of(lambda: time_command([workeros, "--version"], env), runs)
    interp, _ = median_of(lambda: time_command([PYTHON, "-c", "pass"], env), runs)

    def workeros_boot(port: int) -> list[str]:
        data = tempfile.mkdtemp(prefix="wos-bench-")
        return [workeros, "--data-dir", data, "serve", "--port", str(port)]

    boots = max(3, runs // 2)
    defaults = default_plugins()
    default_env = clean_env(WORKEROS_LOAD_PLUGINS=",".join(defaults))
    every = _medians([_boot(workeros_boot) for _ in range(boots)])
    default = _medians([_boot(workeros_boot, default_env) for _ in range(boots)])
    bare = _medians([_boot(lambda port: [PYTHON, "-c", BARE_AIOHTTP, str(port)]) for _ in range(boots)])
    installed = len({ep.name for ep in md.entry_points(group="workeros")})
    print(f"  (default plugins: {len(defaults)}; installed: {installed}; load average {os.getloadavg()[0]:.2f})")
    return {
        "cli_start": report("CLI start: workeros --version (median)", cli, interp),
        "boot_to_healthy": report("boot to healthy, every plugin (median)", every[0], bare[0]),
        "boot_cpu": report("CPU to healthy, every plugin (median)", every[1], bare[1]),
        "idle_rss_mb": report("idle RSS, every plugin (median)", every[2], bare[2], "MB"),
        "default_boot_to_healthy": report("boot to healthy, default plugins", default[0], bare[0]),
        "default_boot_cpu": report("CPU to healthy, default plugins", default[1], bare[1]),
        "default_idle_rss_mb": report("idle RSS, default plugins", default[2], bare[2], "MB"),
        "default_plugins": defaults,
        "installed_plugins": installed,
        "load_average": os.getloadavg()[0],
        "targets": {"cli_start_s": 0.3, "boot_to_healthy_s": 0.4, "idle_rss_mb": 80},
    }
