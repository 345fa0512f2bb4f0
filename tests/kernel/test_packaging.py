"""Packaging rules from DESIGN §1: every extra names a distribution in this repo,
every plugin is its own distribution with an entry point, the root maps the
import packages."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

from tests.conftest import first_party_distributions

ROOT = Path(__file__).resolve().parents[2]


def read_cfg(path: Path) -> configparser.ConfigParser:
    cfg = configparser.ConfigParser()
    cfg.read(path)
    return cfg


def requirement_names(text: str) -> list[str]:
    return [re.split(r"[<>=!~\[; ]", line.strip(), maxsplit=1)[0] for line in text.strip().splitlines() if line.strip()]


def test_every_extra_names_a_distribution_in_this_repo() -> None:
    extras = read_cfg(ROOT / "setup.cfg")["options.extras_require"]
    ours = set(first_party_distributions())
    assert extras, "the root distribution declares extras"
    for extra, requirements in extras.items():
        for name in requirement_names(requirements):
            assert name in ours, f"extra [{extra}] names {name}, which is not under plugins/ or contrib/"


def test_all_extra_covers_every_other_extra() -> None:
    extras = read_cfg(ROOT / "setup.cfg")["options.extras_require"]
    everything = set(requirement_names(extras["all"]))
    for extra, requirements in extras.items():
        assert set(requirement_names(requirements)) <= everything, f"[all] misses what [{extra}] installs"


def test_each_plugin_is_its_own_distribution() -> None:
    for dist, folder in first_party_distributions().items():
        cfg = read_cfg(folder / "setup.cfg")
        assert dist == "workeros-" + folder.name, f"{folder} must build workeros-{folder.name}"
        package = "workeros_" + folder.name.replace("-", "_")
        assert (folder / package / "__init__.py").is_file()
        assert (folder / "pyproject.toml").is_file()
        entry_points = cfg["options.entry_points"]["workeros"]
        assert package in entry_points, f"{dist} registers its package in the 'workeros' entry-point group"
        assert "workeros" in requirement_names(cfg["options"]["install_requires"])


def test_root_maps_the_import_packages() -> None:
    options = read_cfg(ROOT / "setup.cfg")["options"]
    mapping = dict(line.split("=") for line in options["package_dir"].strip().splitlines())
    assert {k.strip(): v.strip() for k, v in mapping.items()} == {
        "workeros": "kernel", "workeros.hookspecs": "hookspecs", "workeros.sdk": "sdk"}
    listed = set(requirement_names(options["packages"]))
    on_disk = {"workeros." + ".".join(p.parent.relative_to(ROOT / "kernel").parts)
               for p in (ROOT / "kernel").rglob("__init__.py")}
    on_disk = {p.rstrip(".") for p in on_disk} | {"workeros.hookspecs", "workeros.sdk"}
    assert listed == on_disk, "setup.cfg [options] packages must list every package under kernel/"


def test_default_plugins_are_dependencies_of_the_root() -> None:
    requires = set(requirement_names(read_cfg(ROOT / "setup.cfg")["options"]["install_requires"]))
    assert {"workeros-sqlite", "workeros-rest"} <= requires
    # As Directus does: GraphQL and WebSocket come with the default install;
    # extras are for optional parts (PostgreSQL, Redis, more sign-in methods).
    assert {"workeros-graphql", "workeros-websocket", "workeros-sse"} <= requires
    extras = read_cfg(ROOT / "setup.cfg")["options.extras_require"]
    assert not {"graphql", "websocket"} & set(extras)


def test_license_is_mit() -> None:
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
