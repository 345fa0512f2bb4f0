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


FAST = {"WORKEROS_AUTH_PASSWORD_ARGON2_TIME_COST": "1", "WORKEROS_AUTH_PASSWORD_ARGON2_MEMORY_KIB": "1024"}


def _archive_rows(path, member):
    import zipfile

    with zipfile.ZipFile(path) as archive:
        if member not in archive.namelist():
            return None
        return [json.loads(line) for line in archive.read(member).splitlines() if line.strip()]


def test_export_archives_are_private_and_can_leave_secrets_out(tmp_path, wos_database_url) -> None:
    import stat

    db = ["--database-url", wos_database_url]
    made = run_cli(tmp_path, "create-user", "--email", "root@example.com", "--admin", "--password-stdin", *db,
                   env=FAST, input="a long password 1\n")
    assert made.returncode == 0, made.stderr

    full = tmp_path / "full.zip"
    result = run_cli(tmp_path, "export", str(full), *db)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(full.stat().st_mode) == 0o600
    assert "holds secrets" in result.stderr and "--no-secrets" in result.stderr
    users = _archive_rows(full, "system/wos_users.jsonl")
    assert users[0]["password_hash"].startswith("$argon2id$")
    assert _archive_rows(full, "system/wos_api_keys.jsonl") is not None
    assert any(r["key"] == "auth.secret" for r in _archive_rows(full, "system/wos_settings.jsonl"))

    bare = tmp_path / "bare.zip"
    result = run_cli(tmp_path, "export", str(bare), "--no-secrets", *db)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(bare.stat().st_mode) == 0o600
    assert "holds secrets" not in result.stderr
    users = _archive_rows(bare, "system/wos_users.jsonl")
    assert users[0]["email"] == "root@example.com"
    assert users[0]["password_hash"] is None and users[0]["totp_secret"] is None
    assert _archive_rows(bare, "system/wos_api_keys.jsonl") is None
    assert not any(r["key"] == "auth.secret" for r in _archive_rows(bare, "system/wos_settings.jsonl"))

    # The archive without secrets imports into a fresh instance, with a progress bar.
    target = ["--database-url", f"sqlite:///{tmp_path / 'fresh.db'}"]
    result = run_cli(tmp_path, "import", str(bare), "--progress", *target)
    assert result.returncode == 0, result.stderr
    assert "import: 100%" in result.stderr and "rows" in result.stderr
    result = run_cli(tmp_path, "export", str(tmp_path / "again.zip"), "--progress", *target)
    assert result.returncode == 0 and "export: 100%" in result.stderr


def _doc(fields, access=None):
    doc = {"format": "workeros-schema", "version": 1, "relations": [], "collections": [{
        "collection": "posts", "primary_key": "id", "pk_type": "integer",
        "fields": [{"field": "id", "type": "integer", "nullable": False}]
        + [{"field": f, "type": "string"} for f in fields]}]}
    if access is not None:
        doc["access"] = access
    return json.dumps(doc)


def _fields(tmp_path, db):
    result = run_cli(tmp_path, "schema", "snapshot", "--json", *db)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    return [f["field"] for c in doc["collections"] for f in c["fields"]], doc


def _apply_on_a_terminal(tmp_path, db, path, answer):
    import os

    master, slave = os.openpty()
    try:
        os.write(master, answer.encode() + b"\n")
        base = {"WORKEROS_DATA_DIR": str(tmp_path), "WORKEROS_LOAD_PLUGINS": ",".join(FIRST_PARTY),
                "PATH": "/usr/bin:/bin"}
        return subprocess.run([sys.executable, "-m", "workeros", "schema", "apply", str(path), *db], stdin=slave,
                              capture_output=True, text=True, env=base, timeout=60)
    finally:
        os.close(master)
        os.close(slave)


def test_schema_apply_asks_before_deleting(tmp_path, wos_database_url) -> None:
    db = ["--database-url", wos_database_url]
    first = tmp_path / "first.json"
    first.write_text(_doc(["title", "body"]))
    result = run_cli(tmp_path, "schema", "apply", str(first), *db)
    assert result.returncode == 0, result.stderr  # only additions: no question
    smaller = tmp_path / "smaller.json"
    smaller.write_text(_doc(["title"]))

    refused = run_cli(tmp_path, "schema", "apply", str(smaller), *db)
    assert refused.returncode == 1
    assert "delete_field posts.body" in refused.stderr and "--yes" in refused.stderr
    assert "body" in _fields(tmp_path, db)[0]
    piped = run_cli(tmp_path, "schema", "apply", "-", *db, input=smaller.read_text())
    assert piped.returncode == 1 and "body" in _fields(tmp_path, db)[0]

    declined = _apply_on_a_terminal(tmp_path, db, smaller, "n")
    assert declined.returncode == 1 and "nothing applied" in declined.stderr
    assert "body" in _fields(tmp_path, db)[0]
    accepted = _apply_on_a_terminal(tmp_path, db, smaller, "y")
    assert accepted.returncode == 0, accepted.stderr
    assert "body" not in _fields(tmp_path, db)[0]

    first_again = run_cli(tmp_path, "schema", "apply", str(first), *db)
    assert first_again.returncode == 0
    forced = run_cli(tmp_path, "schema", "apply", str(smaller), "--yes", *db)
    assert forced.returncode == 0 and "applied" in forced.stdout
    assert "body" not in _fields(tmp_path, db)[0]


def test_snapshots_can_carry_roles_and_permissions(tmp_path, wos_database_url) -> None:
    db = ["--database-url", wos_database_url]
    _, plain = _fields(tmp_path, db)
    assert "access" not in plain
    access = {"roles": [
        {"id": "admin", "name": "admin", "description": "Full access; bypasses permissions", "admin_access": True},
        {"id": "editor", "name": "editor", "description": "Writes posts", "admin_access": False},
        {"id": "public", "name": "public", "description": None, "admin_access": False}],
        "permissions": [
            {"role": "editor", "collection": "posts", "action": "read", "fields": ["id", "title"],
             "filter": {"title": {"_nnull": True}}, "validation": None, "presets": None},
            {"role": "public", "collection": "posts", "action": "read", "fields": None, "filter": None,
             "validation": None, "presets": None}]}
    source = tmp_path / "with-access.json"
    source.write_text(_doc(["title"], access))
    result = run_cli(tmp_path, "schema", "apply", str(source), *db)
    assert result.returncode == 0, result.stderr
    assert "create_role role editor [access]" in result.stdout
    assert "create_permission permission editor posts.read [access]" in result.stdout

    result = run_cli(tmp_path, "schema", "snapshot", "--include-access", "--json", *db)
    assert result.returncode == 0, result.stderr
    taken = json.loads(result.stdout)["access"]
    assert {r["id"] for r in taken["roles"]} == {"admin", "editor", "public"}
    editor = next(p for p in taken["permissions"] if p["role"] == "editor")
    assert editor["fields"] == ["id", "title"] and editor["filter"] == {"title": {"_nnull": True}}

    # Into another instance: the same roles and permissions, nothing left to do after.
    other = ["--database-url", f"sqlite:///{tmp_path / 'other.db'}"]
    snap = tmp_path / "snap.json"
    snap.write_text(result.stdout)
    assert run_cli(tmp_path, "schema", "apply", str(snap), *other).returncode == 0
    again = run_cli(tmp_path, "schema", "diff", str(snap), *other)
    assert again.returncode == 0 and "no changes" in again.stdout

    # Dropping a role is a deletion: asked for, like a dropped field.
    access["roles"] = [r for r in access["roles"] if r["id"] != "editor"]
    access["permissions"] = [p for p in access["permissions"] if p["role"] != "editor"]
    source.write_text(_doc(["title"], access))
    refused = run_cli(tmp_path, "schema", "apply", str(source), *db)
    assert refused.returncode == 1 and "delete_role role editor [access]" in refused.stderr
    assert run_cli(tmp_path, "schema", "apply", str(source), "--yes", *db).returncode == 0
    result = run_cli(tmp_path, "schema", "snapshot", "--include-access", "--json", *db)
    assert {r["id"] for r in json.loads(result.stdout)["access"]["roles"]} == {"admin", "public"}
