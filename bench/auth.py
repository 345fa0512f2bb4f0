"""Cost of authentication per request and of a password sign-in.

A ``workeros serve`` on a fresh SQLite data dir; ``wrk`` (2 threads, 16
connections, 5 s) on ``GET /api/server/health`` with a Bearer access token and
with an API key, against the same route without credentials (the baseline, mean
of a run before and after: same stack, no credential check), so the difference
is what checking a credential costs. Sign-in latency is the
median ``POST /api/auth/login`` with the default argon2id cost (64 MiB, t=3).
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.common import PYTHON, clean_env, report, wait_http_ok

PASSWORD = "bench password 42"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(url: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(request, timeout=30) as r:
        return json.loads(r.read() or b"{}")


def _wrk(url: str, seconds: int, headers: dict[str, str]) -> float:
    argv = ["wrk", "-t2", "-c16", f"-d{seconds}s"]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    out = subprocess.run([*argv, url], check=True, capture_output=True, text=True).stdout
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def run(quick: bool = False) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        print("  wrk not installed: skipped")
        return {"skipped": "wrk not installed"}
    seconds = 2 if quick else 5
    port = _port()
    base = f"http://127.0.0.1:{port}"
    data = tempfile.mkdtemp(prefix="wos-bench-auth-")
    workeros = str(Path(PYTHON).parent / "workeros")
    proc = subprocess.Popen([workeros, "serve", "--port", str(port), "--data-dir", data],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=clean_env(WORKEROS_LOG_ACCESS="false", WORKEROS_RATELIMIT_ENABLED="false"))
    try:
        wait_http_ok(base + "/api/server/health", proc)
        _post(base + "/api/auth/sign-up", {"email": "bench@example.com", "password": PASSWORD})
        logins = []
        for _ in range(3 if quick else 7):
            start = time.perf_counter()
            session = _post(base + "/api/auth/login",
                            {"email": "bench@example.com", "password": PASSWORD, "mode": "json"})["data"]
            logins.append(time.perf_counter() - start)
        bearer = {"Authorization": f"Bearer {session['access_token']}"}
        key = _post(base + "/api/api-keys", {"name": "bench"}, bearer)["data"]["key"]
        health = _wrk(base + "/api/server/health", seconds, {})
        jwt_rps = _wrk(base + "/api/server/health", seconds, bearer)
        key_rps = _wrk(base + "/api/server/health", seconds, {"Authorization": f"Bearer {key}"})
        health_again = _wrk(base + "/api/server/health", seconds, {})
        health = (health + health_again) / 2
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(data, ignore_errors=True)
    return {
        "health_with_access_token_rps": report("GET /server/health + Bearer JWT (req/s)", jwt_rps, health, "r/s"),
        "health_with_api_key_rps": report("GET /server/health + API key (req/s)", key_rps, health, "r/s"),
        "login_median_s": report("POST /auth/login, argon2id 64 MiB t=3 (s)", statistics.median(logins),
                                 statistics.median(logins), "s"),
    }
