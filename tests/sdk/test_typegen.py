"""``workeros typegen`` from a running server, a snapshot file and the
database, on both dialects; the Python output checked by mypy (with the typed
client), the TypeScript output by tsc (as the Schema of @directus/sdk)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from served import ServerProcess, call, node_ready

EMAIL, PASSWORD = "typegen-admin@example.com", "correct horse 1"
SDK = Path(__file__).resolve().parents[2] / "sdk"


@pytest.fixture(scope="module")
def server(served: ServerProcess) -> ServerProcess:
    call(served, "POST", "/api/auth/sign-up", {"email": EMAIL, "password": PASSWORD})

    def admin(method: str, path: str, body: Any = None) -> Any:
        token = call(served, "POST", "/api/auth/login", {"email": EMAIL, "password": PASSWORD, "mode": "json"})
        return call(served, method, path, body, token["access_token"])

    admin("POST", "/api/collections", {"collection": "authors", "fields": [
        {"field": "name", "type": "string", "nullable": False}]})
    admin("POST", "/api/collections", {"collection": "posts", "fields": [
        {"field": "title", "type": "string"}, {"field": "score", "type": "integer"},
        {"field": "meta", "type": "json"}, {"field": "published", "type": "boolean"}]})
    admin("POST", "/api/relations", {"collection": "posts", "field": "author", "related_collection": "authors"})
    role = admin("POST", "/api/roles", {"name": "reader"})
    admin("POST", "/api/permissions", {"role": role["id"], "collection": "posts", "action": "read",
                                       "fields": ["id", "title"]})
    me = admin("GET", "/api/users/me")
    served.key = admin("POST", "/api/api-keys", {"name": "typegen", "user": me["id"]})["key"]  # type: ignore[attr-defined]
    served.snapshot = json.dumps(admin("GET", "/api/schema/snapshot?include=access"))  # type: ignore[attr-defined]
    return served


def typegen(server: ServerProcess, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "workeros", *args], capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin"})
    if check:
        assert done.returncode == 0, done.stderr
    return done


def from_server(server: ServerProcess, lang: str, *extra: str) -> str:
    return typegen(server, "typegen", "--lang", lang, "--url", server.url, "--token", server.key, *extra).stdout


def test_every_source_gives_the_same_types(server: ServerProcess, tmp_path: Path) -> None:
    remote = from_server(server, "typescript")
    snapshot = tmp_path / "snapshot.json"
    snapshot.write_text(server.snapshot)
    assert typegen(server, "typegen", "--lang", "typescript", "--snapshot", str(snapshot)).stdout == remote
    if server.dialect == "sqlite":
        local = ["--data-dir", str(server.data_dir), "typegen"]
    else:
        local = ["typegen", "--database-url", server.database_url]
    assert typegen(server, *local, "--lang", "typescript").stdout == remote
    assert "export interface Posts {" in remote and "author: number | Authors | null;" in remote
    assert "name: string;" in remote  # not nullable


def test_a_role_gets_what_it_may_read(server: ServerProcess) -> None:
    out = from_server(server, "typescript", "--role", "reader")
    assert "Authors" not in out and "score" not in out
    assert "export interface Schema {\n  posts: Posts[];\n}" in out
    missing = typegen(server, "typegen", "--lang", "python", "--url", server.url, "--token", server.key,
                      "--role", "nobody", check=False)
    assert missing.returncode == 1 and "no role 'nobody'" in missing.stderr
    refused = typegen(server, "typegen", "--lang", "python", "--url", server.url, "--token", "pak_wrong", check=False)
    assert refused.returncode == 1 and "HTTP 401" in refused.stderr


def test_python_types_check_under_mypy(server: ServerProcess, tmp_path: Path) -> None:
    mypy = shutil.which("mypy", path=str(Path(sys.executable).parent))
    if mypy is None:
        pytest.skip("mypy is not installed (requirements-dev.txt)")
    (tmp_path / "wos_types.py").write_text(from_server(server, "python"))
    # workeros as a wheel installs it (the editable install of this repository
    # is invisible to mypy): the client as it ships, the kernel API as Any.
    site = tmp_path / "site" / "workeros"
    (site / "sdk").mkdir(parents=True)
    (site / "__init__.py").write_text("")
    (site / "api.pyi").write_text("from typing import Any\ndef __getattr__(name: str) -> Any: ...\n")
    for name in ("__init__.py", "client.py", "py.typed"):
        shutil.copy(SDK / name, site / "sdk" / name)
    (tmp_path / "good.py").write_text('''
from wos_types import Client, Posts

async def main() -> list[str | None]:
    async with Client("http://127.0.0.1:8055", token="pak_x") as wos:
        rows: list[Posts] = await wos.items("posts").read(limit=5)
        one = await wos.items("posts").create({"title": "x", "score": 1})
        score: int | None = one.get("score")
        other = await wos.items("not_generated").read()
        anything: dict[str, object] = other[0]
        return [row.get("title") for row in rows] + [str(score), str(anything)]
''')
    (tmp_path / "bad.py").write_text('''
from wos_types import Client

async def main() -> None:
    async with Client("http://127.0.0.1:8055") as wos:
        rows = await wos.items("posts").read()
        wrong: int = rows[0]["title"]
        nope = rows[0]["nope"]
''')
    run = [mypy, "--strict", "--no-incremental", "--cache-dir", str(tmp_path / ".mypy"), "--follow-imports=silent"]
    env = {"PATH": "/usr/bin:/bin", "MYPYPATH": str(tmp_path / "site")}
    good = subprocess.run([*run, "good.py", "wos_types.py"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600, env=env)
    assert good.returncode == 0, good.stdout + good.stderr
    bad = subprocess.run([*run, "bad.py"], cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env)
    assert bad.returncode == 1, bad.stdout
    assert 'Incompatible types in assignment (expression has type "str | None"' in bad.stdout
    assert '"nope"' in bad.stdout


def test_typescript_schema_types_the_directus_sdk(server: ServerProcess) -> None:
    folder = node_ready()
    typed = folder / "typed"
    (typed / "schema.ts").write_text(from_server(server, "typescript"))
    tsc = [str(folder / "node_modules" / ".bin" / "tsc"), "-p", "tsconfig.json"]
    good = subprocess.run([*tsc], cwd=typed, capture_output=True, text=True, timeout=600)
    assert good.returncode == 0, good.stdout + good.stderr
    wrong = subprocess.run([str(folder / "node_modules" / ".bin" / "tsc"), "--strict", "--noEmit", "--skipLibCheck",
                            "--module", "NodeNext", "--moduleResolution", "NodeNext", "--target", "ES2022",
                            "wrong.ts"], cwd=typed, capture_output=True, text=True, timeout=600)
    assert wrong.returncode != 0
    assert '"nope"' in wrong.stdout and "not assignable to type 'number'" in wrong.stdout, wrong.stdout
