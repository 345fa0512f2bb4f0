"""The plugin author kit: ``workeros new-plugin`` scaffolds a distribution whose
own tests pass once it is installed into a venv, ``workeros plugins check``
catches what would keep a plugin from loading or being listed, and ``workeros
plugins listing`` lists every first-party plugin with the hooks, backends and
settings the kernel's own loader finds in it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet
from plugin_venv import PluginVenv

from tests.conftest import first_party_distributions
from workeros import __version__
from workeros.cli import main
from workeros.sdk import listing, plugincheck, scaffold


def new_plugin(name: str, parent: Path) -> Path:
    done = subprocess.run([sys.executable, "-m", "workeros", "new-plugin", name, "--dir", str(parent)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return parent / ("workeros-plugin-" + name.replace("_", "-"))


# -- new-plugin ---------------------------------------------------------------------
def test_scaffold_metadata(tmp_path: Path) -> None:
    folder = new_plugin("acme_meta", tmp_path)
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == [
        "README.md", "pyproject.toml", "setup.cfg", "tests/test_plugin.py", "workeros_acme_meta/__init__.py"]
    meta = plugincheck.load_meta(str(folder))
    assert meta.name == "workeros-plugin-acme-meta"
    assert meta.entry_points == [("acme_meta", "workeros_acme_meta")]
    assert plugincheck.CLASSIFIER in meta.classifiers and plugincheck.KEYWORD in meta.keywords
    requirement = meta.workeros_requirement
    assert requirement is not None and requirement.specifier.contains(__version__)
    assert requirement.specifier == SpecifierSet(scaffold.version_bound(__version__).removeprefix("workeros"))
    assert plugincheck.check(str(folder))[2] == []  # not even a warning


def test_scaffold_refuses_bad_names_and_existing_folders(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["--data-dir", str(tmp_path), "new-plugin", "Bad Name", "--dir", str(tmp_path)]) == 1
    assert "invalid plugin name" in capsys.readouterr().err
    assert main(["--data-dir", str(tmp_path), "new-plugin", "twice", "--dir", str(tmp_path)]) == 0
    assert main(["--data-dir", str(tmp_path), "new-plugin", "twice", "--dir", str(tmp_path)]) == 1
    assert "already exists" in capsys.readouterr().err


def test_version_bounds() -> None:
    assert scaffold.version_bound("0.1.0") == "workeros>=0.1,<0.2"
    assert scaffold.version_bound("2.3.1") == "workeros>=2.3,<3"


@pytest.mark.slow
def test_scaffold_tests_pass_in_a_venv(tmp_path: Path) -> None:
    folder = new_plugin("acme_notes", tmp_path)
    venv = PluginVenv(tmp_path / "venv")
    venv.install(folder)
    checked = venv.workeros("plugins", "check", "workeros-plugin-acme-notes")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.rstrip().endswith("ok")
    ran = venv.pytest(folder)
    output = ran.stdout + ran.stderr
    assert ran.returncode == 0, output[-6000:]
    # four tests, each on SQLite and PostgreSQL (skipped, with the reason, when no server answers)
    assert "8 passed" in output or ("4 passed" in output and "4 skipped" in output), output[-3000:]
    if os.environ.get("WOS_TEST_REQUIRE_POSTGRES") == "1":
        assert "8 passed" in output, output[-3000:]


# -- plugins check ------------------------------------------------------------------
def variant(tmp_path: Path, name: str, edit_cfg=None, edit_module=None) -> Path:  # type: ignore[no-untyped-def]
    """A scaffold (module name unique per test) with its setup.cfg or module edited."""
    folder = scaffold.write(name, tmp_path, __version__)
    cfg, module = folder / "setup.cfg", folder / f"workeros_{name}" / "__init__.py"
    if edit_cfg:
        cfg.write_text(edit_cfg(cfg.read_text()))
    if edit_module:
        module.write_text(edit_module(module.read_text()))
    return folder


def codes(folder: Path, level: str = "error") -> set[str]:
    return {f.code for f in plugincheck.check(str(folder))[2] if f.level == level}


def test_check_catches_a_missing_entry_point(tmp_path: Path) -> None:
    folder = variant(tmp_path, "chk_noep", edit_cfg=lambda t: t[:t.index("[options.entry_points]")])
    assert codes(folder) == {"entry-point"}


def test_check_catches_a_bad_hook_signature(tmp_path: Path) -> None:
    folder = variant(tmp_path, "chk_sig", edit_module=lambda t: t.replace(
        "def workeros_after_app_created(app):", "def workeros_after_app_created(app, request):"))
    found = plugincheck.check(str(folder))[2]
    assert {f.code for f in found if f.level == "error"} == {"bad-signature"}
    assert "request" in found[0].message


def test_check_catches_a_missing_version_bound(tmp_path: Path) -> None:
    unbounded = variant(tmp_path, "chk_unbound", edit_cfg=lambda t: t.replace("workeros>=0.1,<0.2", "workeros"))
    assert codes(unbounded) == {"version-bound"}
    missing = variant(tmp_path, "chk_noreq", edit_cfg=lambda t: t.replace("    workeros>=0.1,<0.2\n", ""))
    assert codes(missing) == {"version-bound"}
    no_upper = variant(tmp_path, "chk_noupper", edit_cfg=lambda t: t.replace("workeros>=0.1,<0.2", "workeros>=0.1"))
    assert codes(no_upper) == set() and codes(no_upper, "warning") == {"version-bound"}


def test_check_catches_unknown_hooks_wrappers_import_errors_and_a_missing_classifier(tmp_path: Path) -> None:
    typo = variant(tmp_path, "chk_typo", edit_module=lambda t: t + "\n\n@hookimpl\ndef workeros_after_app_creatd(app):"
                   "\n    pass\n")
    assert codes(typo) == {"unknown-hook"}
    wrapper = variant(tmp_path, "chk_wrap", edit_module=lambda t: t.replace(
        "@hookimpl\ndef workeros_after_app_created", "@hookimpl(wrapper=True)\ndef workeros_after_app_created"))
    assert codes(wrapper) == {"wrapper"}
    unmarked = variant(tmp_path, "chk_unmarked", edit_module=lambda t: t.replace(
        "@hookimpl\ndef workeros_after_app_created", "def workeros_after_app_created"))
    assert codes(unmarked) == set() and "not-marked" in codes(unmarked, "warning")
    broken = variant(tmp_path, "chk_broken", edit_module=lambda t: "import not_a_module_anywhere\n" + t)
    assert codes(broken) == {"import"}
    unclassified = variant(tmp_path, "chk_nocls", edit_cfg=lambda t: t.replace("    Framework :: workeros\n", ""))
    assert codes(unclassified) == {"classifier"}


def test_check_command_exit_status_and_wheels(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = variant(tmp_path, "chk_cli_bad", edit_cfg=lambda t: t[:t.index("[options.entry_points]")])
    assert main(["--data-dir", str(tmp_path), "plugins", "check", str(bad)]) == 1
    assert "[entry-point]" in capsys.readouterr().out
    good = variant(tmp_path, "chk_cli_good")
    wheels = tmp_path / "wheels"
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                           "-w", str(wheels), str(good)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    wheel = next(wheels.glob("*.whl"))
    assert main(["--data-dir", str(tmp_path), "plugins", "check", str(wheel), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["distribution"] == "workeros-plugin-chk-cli-good"
    assert report["settings"][0]["name"] == "chk_cli_good.greeting"
    assert main(["--data-dir", str(tmp_path), "plugins", "check", "no-such-distribution"]) == 1
    assert "no installed distribution" in capsys.readouterr().err


def test_first_party_plugins_pass_the_check() -> None:
    for dist in first_party_distributions():
        findings = plugincheck.check(dist)[2]
        assert not [f for f in findings if f.level == "error"], (dist, findings)


# -- plugins listing ----------------------------------------------------------------
def loaded_by_the_kernel(data_dir: Path) -> dict[str, dict]:
    """What the kernel's own loader finds in each installed plugin, by distribution."""
    from workeros.api import prepare
    from workeros.config import Settings
    from workeros.plugins import Plugins

    plugins = Plugins()
    plugins.load_all()
    settings = Settings(env={}, cli={"data_dir": str(data_dir)})
    _, registry = prepare(settings, plugins)
    out: dict[str, dict] = {}
    for info in plugins.infos.values():
        if info.origin != "entrypoint":
            continue
        row = out.setdefault(info.distribution, {"hooks": set(), "settings": set(), "backends": set()})
        row["hooks"] |= set(info.hooks)
    for info, keys in plugins.collect("workeros_register_config_keys"):
        if info.origin == "entrypoint":
            out[info.distribution]["settings"] |= {k.name for k in keys}
    for area, entries in registry.entries.items():
        for name, registered in entries.items():
            if registered.plugin.origin == "entrypoint":
                out[registered.plugin.distribution]["backends"].add((area, name))
    return out


def test_listing_of_the_first_party_plugins(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    index = tmp_path / "index.toml"
    index.write_text('[[plugin]]\ndistribution = "workeros-s3"\ncategory = "storage"\ntags = ["s3", "r2"]\n'
                     'links = { Docs = "https://example.org/s3" }\n\n'
                     '[[plugin]]\ndistribution = "workeros_metrics"\nhidden = true\n')
    out = tmp_path / "site"
    assert main(["--data-dir", str(tmp_path), "plugins", "listing", "--index", str(index), "--out", str(out)]) == 0
    assert "plugins listed" in capsys.readouterr().out
    built = json.loads((out / "index.json").read_text())
    by_dist = {p["distribution"]: p for p in built["plugins"]}
    expected = loaded_by_the_kernel(tmp_path)
    first_party = set(first_party_distributions()) - {"workeros-metrics"}
    assert first_party <= set(by_dist)
    assert "workeros-metrics" not in by_dist  # hidden by the index
    for dist in first_party:
        plugin = by_dist[dist]
        assert plugin["listable"], (dist, plugin["findings"])
        assert set(plugin["hooks"]) == expected[dist]["hooks"], dist
        assert {s["name"] for s in plugin["settings"]} == expected[dist]["settings"], dist
        assert {(b["area"], b["name"]) for b in plugin["backends"]} == expected[dist]["backends"], dist
        assert plugin["workeros"] == f"=={__version__}" and plugin["compatible_with_this_workeros"]
        assert plugin["license"] == "MIT"
        page = (out / "plugins" / f"{plugin['slug']}.html").read_text()
        assert dist in page and all(h in page for h in plugin["hooks"])
        assert json.loads((out / "plugins" / f"{plugin['slug']}.json").read_text()) == plugin
    s3 = by_dist["workeros-s3"]
    assert s3["category"] == "storage" and s3["tags"] == ["s3", "r2"] and s3["links"]["Docs"].endswith("/s3")
    assert ("storage", "s3") in {(b["area"], b["name"]) for b in s3["backends"]}
    assert "workeros[s3]" in s3["installed_by"]
    secret = [s for s in s3["settings"] if s["secret"]]
    assert secret and all(s["default"] is None for s in secret)
    assert "workeros-s3" in (out / "index.html").read_text()


def test_listing_index_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    for text, message in [
        ('[[plugin]]\ndistribution = "workeros-s3"\ncolour = "red"\n', "unknown keys"),
        ('[[plugin]]\ncategory = "x"\n', "needs a 'distribution'"),
        ('[[plugin]]\ndistribution = "workeros-not-here"\n', "neither installed nor given a 'wheel'"),
        ('[[plugin]]\ndistribution = "x"\nwheel = "missing.whl"\n', "no installed distribution"),
        ("[[plugin]\n", "bad.toml"),
    ]:
        bad.write_text(text)
        with pytest.raises(listing.ListingIndexError, match=message):
            listing.build(bad)
