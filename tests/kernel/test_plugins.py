"""The loader: isolation of broken plugins, strict mode, allow/block lists,
essentials, plugins_dir, name clashes between distributions."""

from __future__ import annotations

import logging
import shutil
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import FIRST_PARTY, FIXTURES
from workeros.config import Settings
from workeros.errors import PluginConflict, StartupError
from workeros.hookspecs import hookimpl
from workeros.hookspecs.storage import StorageBackend
from workeros.plugins import BUILTINS, Plugins
from workeros.registry import Registry


def fixture_dir(tmp_path: Path, *names: str) -> Path:
    folder = tmp_path / "plugins"
    folder.mkdir(exist_ok=True)
    for name in names:
        shutil.copy(FIXTURES / f"{name}.py", folder / f"{name}.py")
    return folder


def test_builtins_and_first_party_load() -> None:
    plugins = Plugins(load=FIRST_PARTY)
    plugins.load_all()
    assert set(BUILTINS) <= set(plugins.infos)
    assert {"sqlite", "rest"} <= set(plugins.infos)
    rest = plugins.infos["rest"]
    assert (rest.distribution, rest.version, rest.essential) == ("workeros-rest", "0.1.0", True)
    assert "workeros_register_transports" in rest.hooks
    assert plugins.failed == []


def test_broken_plugin_is_reported_and_boot_continues(tmp_path, caplog) -> None:
    folder = fixture_dir(tmp_path, "broken_on_import", "greeter")
    with caplog.at_level(logging.ERROR, "workeros.plugins"):
        plugins = Plugins(load=FIRST_PARTY, plugins_dir=folder)
        plugins.load_all()
    assert "greeter" in plugins.infos
    (failed,) = plugins.failed
    assert failed.name == "broken_on_import"
    assert "RuntimeError: this fixture plugin is broken on purpose" in failed.error
    assert "Traceback" in failed.error
    assert "broken_on_import" in caplog.text


def test_strict_mode_stops_boot(tmp_path) -> None:
    plugins = Plugins(load=FIRST_PARTY, plugins_dir=fixture_dir(tmp_path, "broken_on_import"), strict=True)
    with pytest.raises(StartupError, match="broken on purpose"):
        plugins.load_all()


def test_unknown_hook_is_a_load_error(tmp_path) -> None:
    plugins = Plugins(load=FIRST_PARTY, plugins_dir=fixture_dir(tmp_path, "unknown_hook"))
    plugins.load_all()
    (failed,) = plugins.failed
    assert "workeros_register_transportz" in failed.error


def test_allowlist_and_blocklist() -> None:
    only = Plugins(load=["sqlite"])
    only.load_all()
    assert "sqlite" in only.infos and "postgres" not in only.infos
    assert "rest" in only.infos  # essential: always loaded
    blocked = Plugins(load=FIRST_PARTY, disable=["postgres", "rest"])
    blocked.load_all()
    assert "postgres" not in blocked.infos
    assert "rest" in blocked.infos
    assert any("essential" in w for w in blocked.warnings)


def test_allowlisted_plugin_that_is_not_installed_is_a_warning() -> None:
    plugins = Plugins(load=["sqlite", "nonexistent"])
    plugins.load_all()
    assert any("nonexistent" in w for w in plugins.warnings)


def test_hook_that_raises_is_isolated_to_its_plugin(tmp_path, caplog) -> None:
    class Exploding:
        @hookimpl
        def workeros_register_storage_backends(self):
            raise ValueError("kaboom")

    plugins = Plugins(load=FIRST_PARTY)
    plugins.load_all()
    plugins.register(Exploding(), name="exploding", distribution="exploding-dist", version="9.9")
    results = plugins.collect("workeros_register_storage_backends")
    # The first-party backends still answer; the exploding plugin is out.
    assert "exploding" not in {info.name for info, _ in results} and "files" in {info.name for info, _ in results}
    assert plugins.failed[-1].name == "exploding"
    assert "kaboom" in plugins.failed[-1].error
    assert "exploding" not in plugins.infos


def test_two_distributions_claiming_one_backend_name() -> None:
    class A:
        @hookimpl
        def workeros_register_storage_backends(self):
            return [StorageBackend(name="fs", factory=lambda s: None)]

    class B(A):
        pass

    plugins = Plugins(load=FIRST_PARTY)
    plugins.load_all()
    plugins.register(A(), name="a", distribution="workeros-fs", version="1.0")
    plugins.register(B(), name="b", distribution="acme-fs", version="2.0")
    with pytest.raises(PluginConflict, match="workeros-fs 1.0 and acme-fs 2.0"):
        Registry.build(plugins, Settings(env={}))


def test_entry_point_plugins_from_a_distribution(tmp_path, monkeypatch) -> None:
    """A real installed distribution (a .dist-info on sys.path) whose plugin is
    broken: reported with its distribution and version."""
    site = tmp_path / "site"
    dist_info = site / "acme_broken-1.2.3.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-broken\nVersion: 1.2.3\n")
    (dist_info / "entry_points.txt").write_text("[workeros]\nacme = acme_broken\n")
    (site / "acme_broken.py").write_text(textwrap.dedent("""
        import nonexistent_module_for_tests
    """))
    monkeypatch.syspath_prepend(str(site))
    plugins = Plugins(load=[*FIRST_PARTY, "acme"])
    plugins.load_all()
    (failed,) = plugins.failed
    assert (failed.name, failed.distribution, failed.version) == ("acme", "acme-broken", "1.2.3")
    assert "nonexistent_module_for_tests" in failed.error
    sys.modules.pop("acme_broken", None)


# -- pluggy's markers -----------------------------------------------------------------------

def _keys_plugin(name: str, **marks: bool):
    from workeros.hookspecs import hookimpl
    from workeros.hookspecs.lifecycle import ConfigKey

    class P:
        @hookimpl(**marks)
        def workeros_register_config_keys(self):
            return [ConfigKey(f"order.{name}", "str")]

    P.__name__ = name
    return P()


def _order(plugins) -> list[str]:
    return [keys[0].name.split(".")[1] for info, keys in plugins.collect("workeros_register_config_keys")
            if keys and keys[0].name.startswith("order.")]


def test_collect_follows_pluggys_call_order() -> None:
    """tryfirst implementations first, trylast ones last, the rest most recently
    registered first — as a plain pluggy call runs them."""
    plugins = Plugins(load=[])
    plugins.load_all()
    for name, marks in (("late", {"trylast": True}), ("a", {}), ("early", {"tryfirst": True}), ("b", {})):
        plugins.register(_keys_plugin(name, **marks), name=name)
    assert _order(plugins) == ["early", "b", "a", "late"]
    # The same order pluggy itself uses.
    direct = [keys[0].name.split(".")[1] for keys in plugins.hook.workeros_register_config_keys()
              if keys and keys[0].name.startswith("order.")]
    assert direct == _order(plugins)


@pytest.mark.parametrize("marks", [{"hookwrapper": True}, {"wrapper": True}], ids=["hookwrapper", "wrapper"])
def test_hook_wrappers_are_refused_with_a_clear_error(marks, caplog) -> None:
    plugins = Plugins(load=[])
    plugins.load_all()
    plugins.register(_keys_plugin("wrapping", **marks), name="wrapping")
    assert "wrapping" not in plugins.infos
    (failed,) = [f for f in plugins.failed if f.name == "wrapping"]
    assert "workeros_register_config_keys" in failed.error and "wrapper" in failed.error
    strict = Plugins(load=[], strict=True)
    strict.load_all()
    with pytest.raises(StartupError, match="hook wrapper"):
        strict.register(_keys_plugin("wrapping", **marks), name="wrapping")
