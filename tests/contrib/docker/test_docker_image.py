"""Build the image and run it where a Docker daemon is usable; otherwise skip
and say why."""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from workeros.sdk.testing import free_port

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = ROOT / "contrib" / "docker" / "workeros_docker" / "Dockerfile"

pytestmark = pytest.mark.slow


def docker_unusable() -> str | None:
    if shutil.which("docker") is None:
        return "the docker command is not installed"
    info = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True,
                          timeout=30)
    if info.returncode != 0:
        last = (info.stderr.strip().splitlines() or ["no answer"])[-1]
        return f"the Docker daemon is not usable here: {last}"
    return None


def test_docker_files_command_writes_the_shipped_files(tmp_path: Path) -> None:
    import sys

    done = subprocess.run([sys.executable, "-m", "workeros", "--data-dir", str(tmp_path / "d"), "docker-files",
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "Dockerfile").read_text() == DOCKERFILE.read_text()
    again = subprocess.run([sys.executable, "-m", "workeros", "--data-dir", str(tmp_path / "d"), "docker-files",
                            str(tmp_path / "out")], capture_output=True, text=True, timeout=120)
    assert again.returncode == 1 and "--force" in again.stdout


def test_image_builds_runs_unprivileged_and_is_healthy() -> None:
    reason = docker_unusable()
    if reason:
        pytest.skip(reason)
    tag = f"workeros-test:{uuid.uuid4().hex[:8]}"
    name = f"workeros-test-{uuid.uuid4().hex[:8]}"
    port = free_port()
    subprocess.run(["docker", "build", "-f", str(DOCKERFILE), "-t", tag, str(ROOT)], check=True, timeout=1800)
    try:
        subprocess.run(["docker", "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8055", tag], check=True,
                       timeout=60)
        user = subprocess.run(["docker", "exec", name, "id", "-u"], capture_output=True, text=True, timeout=30)
        assert user.stdout.strip() == "10001"
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/server/ready", timeout=2) as r:
                    assert r.status == 200
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60)
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, timeout=60)
