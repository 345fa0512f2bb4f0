"""The third-party-style plugins under ``examples/``, as their users get them:
each built into a wheel and installed into a venv, checked by ``workeros plugins
check`` and its own tests run there (on SQLite and on PostgreSQL: the test kit's
``wos_dialect``). Each stays under 100 lines of code."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from plugin_venv import PluginVenv

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

#: (folder, entry point, the hooks it must implement, a backend it declares)
EXAMPLES = [
    ("plugin-sqlar", "sqlar", {"workeros_register_storage_backends"}, ("storage", "sqlar")),
    ("plugin-proxyauth", "proxyauth", {"workeros_register_auth_providers"}, ("auth", "proxy")),
    ("plugin-feeds", "feeds", {"workeros_register_transports"}, ("transport", "feeds")),
]


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> PluginVenv:
    env = PluginVenv(tmp_path_factory.mktemp("examples-venv"))
    env.install(*(ROOT / "examples" / folder for folder, *_ in EXAMPLES))
    return env


@pytest.mark.parametrize(("folder", "name", "hooks", "backend"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_example_is_checked_and_its_own_tests_pass(venv: PluginVenv, folder: str, name: str, hooks: set[str],
                                                   backend: tuple[str, str], tmp_path: Path) -> None:
    source = ROOT / "examples" / folder
    code = [line for path in source.glob("workeros_*/*.py") for line in path.read_text().splitlines()
            if line.strip()]
    assert len(code) < 100, f"{folder} has {len(code)} lines of code"

    dist = f"workeros-{folder}"
    checked = venv.workeros("plugins", "check", dist, "--json")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    report = json.loads(checked.stdout)
    assert report["ok"] and hooks <= set(report["hooks"])
    assert backend in {(b["area"], b["name"]) for b in report["backends"]}
    assert not [f for f in report["findings"] if f["level"] == "error"]

    listed = json.loads(venv.workeros("--data-dir", str(tmp_path), "plugins", "--json").stdout)
    loaded = {p["name"]: p for p in listed["plugins"]}
    assert loaded[name]["distribution"] == dist and loaded[name]["error"] is None

    ran = venv.pytest(source)
    output = ran.stdout + ran.stderr
    assert ran.returncode == 0, output[-6000:]
    assert " passed" in output and " failed" not in output
    if os.environ.get("WOS_TEST_REQUIRE_POSTGRES") == "1":
        assert "skipped" not in output, output[-3000:]


def test_example_tests_import_the_installed_copy(venv: PluginVenv) -> None:
    done = venv.run("-c", "import workeros_sqlar; print(workeros_sqlar.__file__)",
                    cwd=ROOT / "examples" / "plugin-sqlar")
    assert done.returncode == 0, done.stderr
    assert "site-packages" in done.stdout and Path(done.stdout.strip()).is_file()


@pytest.mark.parametrize("folder", sorted(p.parent.name for p in (ROOT / "examples").glob("*/setup.cfg")))
def test_every_example_passes_the_check_from_its_source(folder: str) -> None:
    from workeros.sdk import plugincheck

    meta, described, findings = plugincheck.check(str(ROOT / "examples" / folder))
    assert findings == [], findings
    assert meta.name == f"workeros-{folder}" and described.hooks
