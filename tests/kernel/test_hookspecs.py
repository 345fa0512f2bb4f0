"""Every hook spec is reference documentation: documented in docs/plugin-hooks.md,
covered by a ``test_hook_<name>``, and its docstring says when it is called, its
return contract, firstresult or not, since when, with an example."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import pytest

from workeros.hookspecs import SPEC_MODULES

ROOT = Path(__file__).resolve().parents[2]


def all_specs() -> list[tuple[str, object]]:
    specs = []
    for module_name in SPEC_MODULES:
        module = importlib.import_module(module_name)
        for name, fn in vars(module).items():
            if name.startswith("workeros_") and callable(fn):
                specs.append((name, fn))
    return sorted(specs, key=lambda s: s[0])


SPECS = all_specs()
SPEC_NAMES = [name for name, _ in SPECS]


def test_there_are_specs_for_every_area() -> None:
    areas = {m.rsplit(".", 1)[1] for m in SPEC_MODULES}
    assert areas == {"lifecycle", "db", "storage", "auth", "email", "sandbox", "vectors", "realtime", "transport",
                     "items", "data", "mcp", "admin"}


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_plugin_hooks_have_tests(name: str) -> None:
    sources = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("test_*.py"))
    assert re.search(rf"def test_hook_{name}\b", sources), f"no test_hook_{name} in tests/"


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_plugin_hooks_are_documented(name: str) -> None:
    doc = (ROOT / "docs" / "plugin-hooks.md").read_text()
    assert re.search(rf"^#+ `?{name}", doc, re.M), f"{name} has no heading in docs/plugin-hooks.md"


@pytest.mark.parametrize("name,fn", SPECS, ids=SPEC_NAMES)
def test_spec_docstrings_are_reference(name: str, fn: object) -> None:
    doc = inspect.getdoc(fn) or ""
    assert "Called" in doc, "say when it is called"
    assert ":return:" in doc or "return" in doc.lower()
    assert "firstresult" in doc.lower(), "say whether it is firstresult"
    assert ".. versionadded::" in doc
    assert "Example::" in doc
    hints = inspect.get_annotations(fn)
    assert "return" in hints, "specs are typed"


def test_no_spec_is_firstresult() -> None:
    """Hooks may return awaitables, so none may be firstresult."""
    from workeros.plugins import Plugins

    pm = Plugins().pm
    for name in SPEC_NAMES:
        assert not getattr(pm.hook, name).spec.opts.get("firstresult"), name


def test_plugin_hooks_doc_is_current() -> None:
    import runpy

    module = runpy.run_path(str(ROOT / "scripts" / "gen_hook_docs.py"))
    assert (ROOT / "docs" / "plugin-hooks.md").read_text() == module["render"](), (
        "docs/plugin-hooks.md is stale: run python scripts/gen_hook_docs.py")
