"""The repository as a new contributor meets it: plain ``pytest`` collects and
runs tests that import shared helpers (``tests.conftest``, ``callers``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_plain_pytest_works_like_python_m_pytest() -> None:
    pytest_bin = Path(sys.executable).with_name("pytest")
    target = "tests/e2e/test_cli.py::test_config_hides_declared_secrets_only"
    result = subprocess.run([str(pytest_bin), target, "-q", "-p", "no:randomly"], cwd=ROOT, capture_output=True,
                            text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "1 passed" in result.stdout


def test_curl_examples_with_brackets_in_the_url_use_g() -> None:
    """curl globs ``[...]`` in URLs: an example with ``filter[x][_eq]`` fails
    unless it passes ``-g``."""
    import re

    offenders = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.lstrip().startswith("curl "):
                continue
            urls = re.findall(r"""["']?(?:https?://|\$API)[^\s"']*""", line)
            if any("[" in url for url in urls) and not re.search(r"\s-g\b|--globoff", line):
                offenders.append(f"{path.name}:{number}: {line.strip()}")
    assert offenders == []


def test_libraries_imported_during_a_test_are_not_assertion_rewritten() -> None:
    """Only test modules (and the named pytest plugins) are rewritten: a library
    imported lazily inside a test loads with its ordinary loader, so no AST is
    rebuilt at the test's stack depth."""
    import importlib

    for name in ("schemathesis.specs.openapi.checks", "hypothesis.strategies", "anyio.streams.memory"):
        module = importlib.import_module(name)
        loader = type(module.__spec__.loader).__name__
        assert loader != "AssertionRewritingHook", name


def test_ci_runs_the_readme_test_command_and_it_lints_first() -> None:
    import re

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    command = re.search(r"^(make test)\b", readme, re.M)
    assert command, "the README names its test command"
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.strip().startswith("#")]
    assert ci[-1] == command.group(1)
    planned = subprocess.run(["make", "-n", "test"], cwd=ROOT, capture_output=True, text=True, timeout=60).stdout
    lines = [line for line in planned.splitlines() if line.strip()]
    pytest_at = next(i for i, line in enumerate(lines) if "-m pytest" in line)
    lint = ("ruff check", "lint_imports.py", "gen_hook_docs.py --check", "gen_config_docs.py --check")
    for step in lint:
        at = next((i for i, line in enumerate(lines) if step in line), None)
        assert at is not None and at < pytest_at, (step, lines)
