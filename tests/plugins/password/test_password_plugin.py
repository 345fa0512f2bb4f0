"""The password plugin: it is essential, and ``workeros create-user`` makes an
account from the command line that can then sign in (both dialects)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from workeros.errors import StartupError
from workeros.plugins import ESSENTIAL, Plugins

WORKEROS = str(Path(sys.executable).parent / "workeros")


def test_password_is_essential():
    assert "password" in ESSENTIAL
    plugins = Plugins(load=None, disable=["password"], strict=False, plugins_dir=None)
    try:
        plugins.load_all()
    except StartupError:
        return
    assert "password" in plugins.infos  # an essential plugin cannot be disabled


def _cli(*args, stdin="", cwd=None):
    return subprocess.run([WORKEROS, *args], input=stdin, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "WORKEROS_AUTH_PASSWORD_ARGON2_MEMORY_KIB": "1024",
                               "WORKEROS_AUTH_PASSWORD_ARGON2_TIME_COST": "1"}, cwd=cwd)


async def test_create_user_from_the_command_line(wos_database_url, tmp_path, make_server):
    from aiohttp.test_utils import TestClient

    args = ("--data-dir", str(tmp_path), "create-user", "--email", "Root@Example.com", "--password-stdin",
            "--admin", "--database-url", wos_database_url)
    done = _cli(*args, stdin="a long password 1\n")
    assert done.returncode == 0, done.stderr
    assert "role admin" in done.stdout
    again = _cli(*args, stdin="a long password 1\n")
    assert again.returncode == 1 and "already exists" in again.stderr and "Traceback" not in again.stderr
    weak = _cli("--data-dir", str(tmp_path), "create-user", "--email", "x@example.com", "--password-stdin",
                "--database-url", wos_database_url, stdin="short\n")
    assert weak.returncode == 1 and "at least" in weak.stderr
    async with make_server(auth__password__argon2_memory_kib=1024, auth__password__argon2_time_cost=1) as server, \
            TestClient(server) as client:
        async with client.post("/api/auth/login", json={"email": "root@example.com", "password": "a long password 1",
                                                        "mode": "json"}) as r:
            assert r.status == 200
            token = (await r.json())["data"]["access_token"]
        async with client.get("/api/users", headers={"Authorization": f"Bearer {token}"}) as r:
            assert r.status == 200


async def test_create_user_takes_a_role_by_name_and_is_no_admin_by_default(wos_database_url, tmp_path,
                                                                           make_server):
    from aiohttp.test_utils import TestClient

    base = ("--data-dir", str(tmp_path), "create-user", "--password-stdin", "--database-url", wos_database_url)
    plain = _cli(*base, "--email", "plain@example.com", stdin="a long password 1\n")
    assert plain.returncode == 0, plain.stderr
    assert "no role" in plain.stdout and "admin" not in plain.stdout
    missing = _cli(*base, "--email", "ed@example.com", "--role", "editor", stdin="a long password 1\n")
    assert missing.returncode == 1 and "role 'editor' does not exist (roles: admin, public)" in missing.stderr
    assert "Traceback" not in missing.stderr
    both = _cli(*base, "--email", "ed@example.com", "--role", "editor", "--admin", stdin="x\n")
    assert both.returncode == 2 and "not allowed with" in both.stderr

    from callers import TEST_CALLER_HEADER, TestCallers

    async with make_server(TestCallers(), auth__password__argon2_memory_kib=1024,
                           auth__password__argon2_time_cost=1) as server, TestClient(server) as client:
        admin = {TEST_CALLER_HEADER: "admin"}
        async with client.post("/api/roles", json={"name": "editor"}, headers=admin) as r:
            assert r.status in (200, 201), await r.text()
            editor_id = (await r.json())["data"]["id"]
        # In a thread: the server in this event loop must keep running (and finish
        # what it holds on the database) while the command waits for it.
        ed = await asyncio.to_thread(_cli, *base, "--email", "ed@example.com", "--role", "editor",
                                     stdin="a long password 1\n")
        assert ed.returncode == 0, ed.stderr
        assert "role editor" in ed.stdout
        for email, role in (("plain@example.com", None), ("ed@example.com", editor_id)):
            async with client.post("/api/auth/login", json={"email": email, "password": "a long password 1",
                                                            "mode": "json"}) as r:
                token = (await r.json())["data"]["access_token"]
            async with client.get("/api/users/me", headers={"Authorization": f"Bearer {token}"}) as r:
                assert (await r.json())["data"]["role"] == role
            async with client.get("/api/users", headers={"Authorization": f"Bearer {token}"}) as r:
                assert r.status == 403


@pytest.fixture
def wos_settings_overrides():
    return {"auth.password.argon2_time_cost": 1, "auth.password.argon2_memory_kib": 1024}
