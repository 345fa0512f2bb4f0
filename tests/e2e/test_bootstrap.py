"""First start of a real ``workeros serve`` process, both dialects: the first
admin from WORKEROS_ADMIN_EMAIL/WORKEROS_ADMIN_PASSWORD (idempotent across
restarts), and the warning for a fresh instance reachable from other machines
with open sign-up."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from tests.conftest import FIRST_PARTY
from workeros.sdk.testing import ServerProcess

BASE = {"WORKEROS_LOAD_PLUGINS": ",".join(FIRST_PARTY), "WORKEROS_AUTH_PASSWORD_ARGON2_TIME_COST": "1",
        "WORKEROS_AUTH_PASSWORD_ARGON2_MEMORY_KIB": "1024"}
ADMIN = {"WORKEROS_ADMIN_EMAIL": "Root@Example.com", "WORKEROS_ADMIN_PASSWORD": "a long admin password 1"}
WARNING = "whoever signs up first becomes admin"


def call(url, path, body=None, token=None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url + path, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def login(url, email, password):
    return call(url, "/api/auth/login", {"email": email, "password": password, "mode": "json"})


def test_admin_from_the_environment_is_created_once(tmp_path, wos_database_url) -> None:
    with ServerProcess(data_dir=tmp_path, database_url=wos_database_url, env={**BASE, **ADMIN}) as server:
        status, body = login(server.url, "root@example.com", ADMIN["WORKEROS_ADMIN_PASSWORD"])
        assert status == 200, body
        token = body["data"]["access_token"]
        status, me = call(server.url, "/api/users/me", token=token)
        assert me["data"]["role"] == "admin"
        # Sign-up after it is an ordinary user, not a second admin.
        status, other = call(server.url, "/api/auth/sign-up", {"email": "bob@example.com",
                                                               "password": "bob's password 1"})
        assert status == 201 and other["data"]["role"] != "admin"
    assert "created admin root@example.com" in server.log()
    assert ADMIN["WORKEROS_ADMIN_PASSWORD"] not in server.log()

    # A restart with the same (or another) password keeps the account as it is.
    again = {**BASE, **ADMIN, "WORKEROS_ADMIN_PASSWORD": "a different password 2"}
    with ServerProcess(data_dir=tmp_path, database_url=wos_database_url, env=again) as server:
        assert login(server.url, "root@example.com", ADMIN["WORKEROS_ADMIN_PASSWORD"])[0] == 200
        assert login(server.url, "root@example.com", "a different password 2")[0] == 401
        token = login(server.url, "root@example.com", ADMIN["WORKEROS_ADMIN_PASSWORD"])[1]["data"]["access_token"]
        status, listing = call(server.url, "/api/users", token=token)
        assert sorted(u["email"] for u in listing["data"]) == ["bob@example.com", "root@example.com"]


def test_half_an_admin_stops_boot(tmp_path) -> None:
    import pytest

    server = ServerProcess(data_dir=tmp_path, env={**BASE, "WORKEROS_ADMIN_EMAIL": "root@example.com"},
                           startup_timeout=20)
    with pytest.raises(RuntimeError, match="exited with 2"):
        server.start()
    server.stop()
    assert "must be set together" in server.log() and "Traceback" not in server.log()


def test_exposed_fresh_instance_with_open_sign_up_warns(tmp_path, wos_database_url) -> None:
    exposed = {**BASE, "WORKEROS_SERVER_HOST": "0.0.0.0"}
    with ServerProcess(data_dir=tmp_path / "a", database_url=wos_database_url, env=exposed) as server:
        pass
    assert WARNING in server.log()
    with ServerProcess(data_dir=tmp_path / "b", database_url=wos_database_url, env=BASE) as server:
        pass
    assert WARNING not in server.log(), "loopback only: no warning"
    closed = {**exposed, "WORKEROS_AUTH_SIGN_UP": "closed"}
    with ServerProcess(data_dir=tmp_path / "c", database_url=wos_database_url, env=closed) as server:
        pass
    assert WARNING not in server.log()
