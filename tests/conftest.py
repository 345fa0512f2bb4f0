"""Project-wide test configuration. Third-party plugins that happen to be installed
are kept out: only this repository's own plugins autoload (datasette #438)."""

from __future__ import annotations

import configparser
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "plugins" / "fixtures"


def first_party_distributions() -> dict[str, Path]:
    """distribution name -> folder, for every plugin under plugins/ and contrib/."""
    out = {}
    for setup_cfg in sorted([*ROOT.glob("plugins/*/setup.cfg"), *ROOT.glob("contrib/*/setup.cfg")]):
        cfg = configparser.ConfigParser()
        cfg.read(setup_cfg)
        out[cfg["metadata"]["name"]] = setup_cfg.parent
    return out


def first_party_plugins() -> list[str]:
    names = []
    for folder in first_party_distributions().values():
        cfg = configparser.ConfigParser()
        cfg.read(folder / "setup.cfg")
        entry_points = cfg.get("options.entry_points", "workeros", fallback="")
        names += [line.split("=")[0].strip() for line in entry_points.strip().splitlines() if "=" in line]
    return sorted(names)


FIRST_PARTY = first_party_plugins()


@pytest.fixture
def wos_load_plugins() -> list[str]:
    return FIRST_PARTY


@pytest.fixture
def make_server(wos_settings: Any) -> Callable[..., Any]:
    """Boot an app with extra plugin objects registered by hand:
    ``async with make_server(plugin, settings=...) as server:``."""
    from aiohttp.test_utils import TestServer

    from workeros.app import create_app
    from workeros.plugins import Plugins

    @asynccontextmanager
    async def run(*extra: Any, settings: Any = None, **overrides: Any) -> AsyncIterator[TestServer]:
        s = (settings or wos_settings).with_overrides(**overrides)
        plugins = Plugins(load=s["load_plugins"], disable=s["disable_plugins"] or (), strict=s["strict_plugins"],
                          plugins_dir=s["plugins_dir"])
        plugins.load_all()
        for i, plugin in enumerate(extra):
            plugins.register(plugin, name=getattr(plugin, "name", f"test-plugin-{i}"), distribution="test-fixtures")
        server = TestServer(await create_app(s, plugins=plugins))
        await server.start_server()
        try:
            yield server
        finally:
            await server.close()

    return run
