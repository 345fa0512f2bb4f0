"""Helpers shared by the benchmark suites."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKEROS_")}
    env.update(extra)
    return env


def median_of(fn: Callable[[], float], runs: int) -> tuple[float, list[float]]:
    samples = [fn() for _ in range(runs)]
    return statistics.median(samples), samples


def time_command(argv: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, env=env)
    return time.perf_counter() - start


def wait_http_ok(url: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.01)
    raise RuntimeError(f"{url} not ready after {timeout}s")


def report(label: str, value: float, baseline: float, unit: str = "s") -> dict[str, float]:
    ratio = value / baseline if baseline else float("nan")
    print(f"  {label:<44} {value:8.3f} {unit}   baseline {baseline:8.3f} {unit}   ratio {ratio:5.2f}x")
    return {"value": value, "baseline": baseline, "ratio": ratio}

PYTHON = sys.executable
