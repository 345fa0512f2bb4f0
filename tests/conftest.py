"""Project-wide test configuration. Third-party plugins that happen to be installed
are kept out: only this repository's own plugins autoload (datasette #438)."""

from __future__ import annotations

import configparser
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from callers import TEST_CALLER_HEADER, Api, ApiResponse, TestCallers  # noqa: F401 (shared with tests)

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

    from workeros.http.app import create_app
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


@pytest.fixture
async def api(make_server: Callable[..., Any]) -> AsyncIterator[Api]:
    """The app running on the test's dialect, and an :class:`Api` on it (anonymous;
    use ``api.as_admin()`` and friends)."""
    from aiohttp.test_utils import TestClient

    async with make_server(TestCallers()) as server, TestClient(server) as client:
        api = Api(client)
        api.server = server  # type: ignore[attr-defined]
        yield api


# -- a real SMTP server on loopback --------------------------------------------------------

class Inbox:
    """Messages received by an aiosmtpd server on loopback (``smtp_inbox``
    fixture). ``messages`` are ``email.message.EmailMessage`` objects."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.host = "127.0.0.1"
        self.port = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd API)
        import email
        import email.policy

        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.messages.append(message)
        return "250 Message accepted"

    def to(self, address: str) -> list[Any]:
        return [m for m in self.messages if m["To"] == address]

    async def wait_for(self, address: str, count: int = 1, timeout: float = 10.0) -> None:
        """Until ``count`` messages to ``address`` have arrived (mail sent in the
        background after the response)."""
        import asyncio

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.to(address)) < count and loop.time() < deadline:
            await asyncio.sleep(0.02)

    def last(self, address: str) -> Any:
        found = self.to(address)
        assert found, f"no mail to {address}; got {[m['To'] for m in self.messages]}"
        return found[-1]

    @staticmethod
    def text(message: Any) -> str:
        return message.get_body(preferencelist=("plain",)).get_content()

    def settings(self) -> dict[str, Any]:
        """Settings pointing the SMTP backend here."""
        return {"smtp.host": self.host, "smtp.port": self.port, "smtp.security": "none",
                "smtp.from": "workeros <no-reply@wos.test>"}


@pytest.fixture
def smtp_inbox() -> Any:
    """A real SMTP server (aiosmtpd) on a free loopback port, and what it received."""
    from aiosmtpd.controller import Controller

    from workeros.sdk.testing import free_port

    # aiosmtpd logs every connection at INFO from its own thread, past the
    # test's capture; its warnings and errors still show.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    inbox = Inbox()
    inbox.port = free_port()
    controller = Controller(inbox, hostname=inbox.host, port=inbox.port)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()


#: Modules whose tests measure time against a deadline or load the machine on
#: purpose: `make test` runs them after the parallel part, alone.
SERIAL_MODULES = {
    "tests/kernel/realtime/test_stream_lifetime.py",
    "tests/e2e/test_slow_clients.py",
    "tests/e2e/test_serve.py",
    "tests/e2e/test_local_bus.py",
    "tests/e2e/test_schema_under_load.py",
    "tests/e2e/test_durability.py",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if Path(item.fspath).resolve().relative_to(ROOT).as_posix() in SERIAL_MODULES:
            item.add_marker(pytest.mark.serial)
