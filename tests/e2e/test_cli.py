"""The ``workeros`` command line as a new user meets it, run as a real
subprocess: settings shown as declared, users by role name, a taken port,
export archives, destructive schema changes."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import FIRST_PARTY


def run_cli(tmp_path, *args, env=None, input=None, timeout=60):  # noqa: A002
    base = {"WORKEROS_DATA_DIR": str(tmp_path), "WORKEROS_LOAD_PLUGINS": ",".join(FIRST_PARTY),
            "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "workeros", *args], capture_output=True, text=True,
                          env={**base, **(env or {})}, input=input, timeout=timeout)


def test_config_hides_declared_secrets_only(tmp_path) -> None:
    env = {"WORKEROS_AUTH_SECRET": "sup3r-s3cret-value", "WORKEROS_SMTP_PASSWORD": "mail-pass",
           "WORKEROS_AUTH_TOKEN_TTL": "7200"}
    result = run_cli(tmp_path, "config", "--json", env=env)
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)["settings"]}
    assert rows["auth.token_ttl"]["value"] == 7200 and not rows["auth.token_ttl"]["secret"]
    assert rows["auth.access_token_ttl"]["value"] == 900
    assert rows["auth.secret"]["value"] == "***" and rows["auth.secret"]["secret"]
    assert rows["smtp.password"]["value"] == "***"
    assert "sup3r-s3cret-value" not in result.stdout and "mail-pass" not in result.stdout


def test_serve_on_a_taken_port_says_so_in_one_line(tmp_path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(tmp_path, "serve", "--port", str(port))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("workeros:")]
    assert errors == [f"workeros: cannot listen on 127.0.0.1:{port}: the address is already in use "
                      "(another server is listening there?); choose another with --port / --host or "
                      "WORKEROS_SERVER_PORT"]
    assert len(result.stderr.strip().splitlines()) <= 2  # the start line and the error, nothing else
