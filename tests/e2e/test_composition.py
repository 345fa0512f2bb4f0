"""What ``pip install workeros[postgres]`` does for users: build wheels of every
distribution, install compositions into a fresh virtual environment with
``--no-index --find-links``, boot, and check ``workeros plugins --json``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, first_party_distributions
from workeros.sdk.testing import ServerProcess

pytestmark = pytest.mark.slow


def run(*argv: str, **kw) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKEROS_")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    result = subprocess.run(argv, capture_output=True, text=True, env=env, **kw)
    assert result.returncode == 0, f"{' '.join(argv)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("wheels")
    sources = [str(ROOT), *map(str, first_party_distributions().values()), str(ROOT / "examples" / "plugin-hello")]
    # Our distributions first (no deps: they are all here), then everything they need.
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(folder), *sources)
    requirements = folder / "requirements.txt"
    deps = set()
    import configparser

    for source in sources:
        cfg = configparser.ConfigParser()
        cfg.read(Path(source) / "setup.cfg")
        for line in cfg["options"]["install_requires"].strip().splitlines():
            if line.strip() and not line.strip().startswith("workeros"):
                deps.add(line.strip())
    requirements.write_text("\n".join(sorted(deps)) + "\n")
    run(sys.executable, "-m", "pip", "wheel", "-q", "-w", str(folder), "-r", str(requirements))
    return folder


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("venv")
    run(sys.executable, "-m", "venv", str(folder))
    return folder


def plugins_json(venv: Path, tmp_path: Path) -> dict:
    out = run(str(venv / "bin" / "workeros"), "--data-dir", str(tmp_path), "plugins", "--json").stdout
    return json.loads(out)


def test_compositions_install_offline_and_boot(wheelhouse, venv, tmp_path) -> None:
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index", "--find-links", str(wheelhouse)]

    run(*pip, "workeros")
    data = plugins_json(venv, tmp_path)
    names = {p["name"]: p for p in data["plugins"]}
    assert {"sqlite", "rest", "graphql", "websocket", "sse"} <= set(names)
    assert all(names[n]["error"] is None for n in ("graphql", "websocket"))
    assert "postgres" not in names
    assert names["sqlite"]["distribution"] == "workeros-sqlite"

    run(*pip, "workeros[postgres]", "workeros-plugin-hello")
    data = plugins_json(venv, tmp_path)
    names = {p["name"]: p for p in data["plugins"]}
    assert names["postgres"]["distribution"] == "workeros-postgres"
    assert names["hello"]["distribution"] == "workeros-plugin-hello"
    assert names["hello"]["version"] == "1.0.0"
    assert all(p["error"] is None for p in data["plugins"])

    # The example's CLI subcommand and route work in the installed composition.
    out = run(str(venv / "bin" / "workeros"), "--data-dir", str(tmp_path), "hello", "Ada").stdout
    assert out.strip() == "Hello, Ada!"
    with ServerProcess(data_dir=tmp_path / "d", python=str(venv / "bin" / "python")) as server:
        import urllib.request

        with urllib.request.urlopen(server.url + "/api/hello?name=Grace") as r:
            assert json.loads(r.read()) == {"data": {"message": "Hello, Grace!"}}
