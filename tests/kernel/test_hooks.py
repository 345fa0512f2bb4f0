"""One test per hook spec (``test_hook_<name>``), each through a booted app on
both dialects. A meta-test in test_hookspecs.py keeps this list complete."""

from __future__ import annotations

import shutil

import pytest
from aiohttp import web

from tests.conftest import FIXTURES
from workeros.bus.events import Events
from workeros.cli import main
from workeros.errors import PluginConflict, StartupError
from workeros.hookspecs import hookimpl
from workeros.hookspecs.auth import AuthProvider
from workeros.hookspecs.db import Dialect
from workeros.hookspecs.email import EmailBackend, EmailMessage
from workeros.hookspecs.lifecycle import ConfigKey, Runtime
from workeros.hookspecs.realtime import BusBackend, RealtimeTransport
from workeros.hookspecs.sandbox import SandboxBackend
from workeros.hookspecs.storage import StorageBackend
from workeros.hookspecs.transport import Transport
from workeros.hookspecs.vectors import VectorBackend
from workeros.http.keys import REGISTRY, SERVICES, SETTINGS


def sub_app(text: str) -> web.Application:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"data": text})

    app = web.Application()
    app.router.add_get("", handler)
    app.router.add_get("/", handler)
    return app


async def test_hook_workeros_register_config_keys(make_server) -> None:
    class P:
        @hookimpl
        def workeros_register_config_keys(self):
            return [ConfigKey("tp.answer", "int", 41, "The answer")]

    async with make_server(P()) as server:
        assert server.app[SETTINGS]["tp.answer"] == 41
    async with make_server(P(), tp__answer="42") as server:
        assert server.app[SETTINGS]["tp.answer"] == 42
        row = next(r for r in server.app[SETTINGS].describe() if r.name == "tp.answer")
        assert (row.owner, row.description) == ("test-fixtures", "The answer")


def test_hook_workeros_register_commands(tmp_path, capsys, monkeypatch) -> None:
    folder = tmp_path / "plugins"
    folder.mkdir()
    shutil.copy(FIXTURES / "greeter.py", folder)
    monkeypatch.setenv("WORKEROS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("WORKEROS_GREETER_GREETING", "ahoy")
    assert main(["--plugins-dir", str(folder), "greet", "bob"]) == 0
    assert capsys.readouterr().out.strip() == "ahoy, bob"


def test_commands_with_one_name_are_refused(tmp_path, capsys, monkeypatch) -> None:
    folder = tmp_path / "plugins"
    folder.mkdir()
    shutil.copy(FIXTURES / "greeter.py", folder / "greeter.py")
    shutil.copy(FIXTURES / "greeter.py", folder / "greeter2.py")
    (folder / "greeter2.py").write_text((folder / "greeter2.py").read_text().replace("greeter.greeting", "g2.x"))
    monkeypatch.setenv("WORKEROS_DATA_DIR", str(tmp_path))
    assert main(["--plugins-dir", str(folder), "greet", "bob"]) == 2
    assert "command 'greet' is registered by both" in capsys.readouterr().err


async def test_hook_workeros_cleanup_contexts(make_server) -> None:
    events: list[str] = []

    class P:
        @hookimpl
        def workeros_cleanup_contexts(self, app):
            async def ctx(app):
                # The kernel's context runs first: services are open here.
                events.append(f"setup:{app[SERVICES].db.dialect}")
                yield
                events.append("teardown")

            return [ctx]

    async with make_server(P()) as server:
        assert events == [f"setup:{server.app[SERVICES].db.dialect}"]
    assert events[-1] == "teardown"


async def test_hook_workeros_register_runtimes(make_server) -> None:
    class P:
        @hookimpl
        def workeros_register_runtimes(self):
            return [Runtime(name="edge", factory=lambda app: app, realtime=False)]

        @hookimpl
        def workeros_register_realtime_transports(self):
            return [RealtimeTransport(name="stream", prefix="/api/stream", factory=lambda root: sub_app("s"))]

    async with make_server(P()) as server:
        assert server.app[REGISTRY].get("runtime").name == "aiohttp"
    async with make_server(P(), runtime="edge") as server:
        assert server.app[REGISTRY].get("runtime").name == "edge"
        from aiohttp.test_utils import TestClient

        async with TestClient(server) as client:
            # A runtime without realtime mounts no realtime transport.
            assert (await client.get("/api/stream")).status == 404


async def test_hook_workeros_after_app_created(make_server) -> None:
    class P:
        @hookimpl
        def workeros_after_app_created(self, app):
            async def hello(request):
                return web.json_response({"data": "hi"})

            app.router.add_get("/hello", hello)

    from aiohttp.test_utils import TestClient

    async with make_server(P()) as server, TestClient(server) as client:
        assert await (await client.get("/hello")).json() == {"data": "hi"}


async def test_hook_workeros_register_db_dialects(make_server, wos_settings) -> None:
    """A dialect registered under its own scheme is chosen by the URL."""
    calls: list[str] = []

    class Wrapped:
        @hookimpl
        def workeros_register_db_dialects(self):
            def factory(url, settings):
                real = url.removeprefix("wrapped+")
                calls.append(real)
                return real_registry.get("db").factory(real, settings)

            return [Dialect(name="wrapped", schemes=("wrapped+sqlite", "wrapped+postgresql"), factory=factory)]

    async with make_server() as plain:
        real_registry = plain.app[REGISTRY]
        url = wos_settings["database.url"]
    async with make_server(Wrapped(), database__url="wrapped+" + url) as server:
        assert server.app[REGISTRY].get("db").name == "wrapped"
        assert calls == [url]
        assert await server.app[SERVICES].db.ping() >= 0

    class Clash:
        @hookimpl
        def workeros_register_db_dialects(self):
            return [Dialect(name="other", schemes=("sqlite",), factory=lambda u, s: None)]

    with pytest.raises(PluginConflict, match="scheme 'sqlite'"):
        async with make_server(Clash()):
            pass
    with pytest.raises(StartupError, match="no installed dialect serves database URLs starting mysql://"):
        async with make_server(database__url="mysql://x/y"):
            pass


async def test_hook_workeros_register_storage_backends(make_server) -> None:
    class P:
        @hookimpl
        def workeros_register_storage_backends(self):
            return [
                StorageBackend(name="mem", factory=lambda s: {"kind": "mem"}, priority=5),
                StorageBackend(name="cloud", factory=lambda s: {"kind": "cloud"}, priority=10,
                               check=lambda: "the cloud SDK is not installed"),
            ]

    async with make_server(P()) as server:
        # Auto-selection skips the unavailable backend despite its priority.
        assert server.app[SERVICES].storage == {"kind": "mem"}
        summary = server.app[REGISTRY].summary()["storage"]
        assert summary["active"] == "mem"
        assert summary["unavailable"] == {"cloud": "the cloud SDK is not installed"}
    with pytest.raises(StartupError, match="unavailable: the cloud SDK is not installed"):
        async with make_server(P(), storage__backend="cloud"):
            pass
    with pytest.raises(StartupError, match="'nope', which no installed plugin provides"):
        async with make_server(P(), storage__backend="nope"):
            pass


async def test_hook_workeros_register_auth_providers(make_server) -> None:
    routes = web.RouteTableDef()

    @routes.post("/token-exchange")
    async def exchange(request):
        return web.json_response({"data": {"provider": "tx"}})

    class P:
        @hookimpl
        def workeros_register_auth_providers(self):
            return [AuthProvider(name="tx", kind="redirect", routes=lambda: routes)]

    from aiohttp.test_utils import TestClient

    async with make_server(P()) as server, TestClient(server) as client:
        assert "tx" in [p.name for p in server.app[REGISTRY].all("auth")]
        response = await client.post("/api/auth/token-exchange")
        assert await response.json() == {"data": {"provider": "tx"}}
    async with make_server(P(), auth__providers=[]) as server, TestClient(server) as client:
        assert (await client.post("/api/auth/token-exchange")).status == 404


async def test_hook_workeros_register_email_backends(make_server) -> None:
    sent: list[EmailMessage] = []

    class Mailer:
        async def send(self, message: EmailMessage) -> None:
            sent.append(message)

    class P:
        @hookimpl
        def workeros_register_email_backends(self):
            return [EmailBackend(name="list", factory=lambda settings: Mailer())]

    async with make_server(P()) as server:
        await server.app[SERVICES].mailer.send(EmailMessage(to="a@example.com", subject="s", text="t"))
    assert [m.to for m in sent] == ["a@example.com"]


async def test_hook_workeros_register_sandboxes(make_server) -> None:
    class Echo:
        async def run(self, source, *, entry, args, timeout_ms, memory_mb):
            return {"entry": entry, "args": args}

    class P:
        @hookimpl
        def workeros_register_sandboxes(self):
            return [SandboxBackend(name="echo", factory=lambda settings: Echo())]

    async with make_server(P(), functions__sandbox="echo") as server:
        result = await server.app[SERVICES].sandbox.run("", entry="main", args=[1], timeout_ms=10, memory_mb=1)
        assert result == {"entry": "main", "args": [1]}


async def test_hook_workeros_register_vector_stores(make_server) -> None:
    class Store:
        def __init__(self, database):
            self.database = database

    class P:
        @hookimpl
        def workeros_register_vector_stores(self):
            return [VectorBackend(name="flat", factory=lambda settings, database: Store(database))]

    # Named: the first-party vectors plugin's own stores would win the auto-selection.
    async with make_server(P(), vectors__backend="flat") as server:
        services = server.app[SERVICES]
        assert services.vectors.database is services.db


async def test_hook_workeros_register_realtime_transports(make_server) -> None:
    class P:
        @hookimpl
        def workeros_register_realtime_transports(self):
            return [RealtimeTransport(name="stream", prefix="/api/stream", factory=lambda root: sub_app("s"))]

    from aiohttp.test_utils import TestClient

    async with make_server(P()) as server, TestClient(server) as client:
        assert await (await client.get("/api/stream")).json() == {"data": "s"}
        # registered beside the first-party transports, which keep their paths
        assert {"stream", "sse", "websocket"} <= {t.name for t in server.app[REGISTRY].all("realtime")}


async def test_hook_workeros_register_event_buses(make_server) -> None:
    log: list[tuple] = []

    class RecordingBus:
        def __init__(self):
            self.handlers = {}

        async def start(self):
            log.append(("start",))

        async def publish(self, channel, message):
            log.append(("publish", channel))
            for handler in self.handlers.get(channel, []):
                await handler(message)

        def subscribe(self, channel, handler):
            self.handlers.setdefault(channel, []).append(handler)
            return lambda: self.handlers[channel].remove(handler)

        async def close(self):
            log.append(("close",))

    class P:
        @hookimpl
        def workeros_register_event_buses(self):
            return [BusBackend(name="recording", factory=lambda settings, db: RecordingBus(), priority=50)]

    received = []
    async with make_server(P()) as server:
        events: Events = server.app[SERVICES].events
        events.subscribe("schema", received.append)
        await events.publish("schema", {"version": 2})
    assert log == [("start",), ("publish", "schema"), ("close",)]
    assert received[0]["version"] == 2 and received[0]["instance"] == events.instance


async def test_hook_workeros_register_transports(make_server) -> None:
    class P:
        @hookimpl
        def workeros_register_transports(self):
            return [Transport(name="rpc", prefix="/api/rpc", factory=lambda root: sub_app("rpc"))]

    from aiohttp.test_utils import TestClient

    async with make_server(P()) as server, TestClient(server) as client:
        assert await (await client.get("/api/rpc")).json() == {"data": "rpc"}
        # The REST transport at /api still answers beside it (longest prefix wins).
        assert (await client.get("/api/server/health")).status == 200

    class Clash:
        @hookimpl
        def workeros_register_transports(self):
            return [Transport(name="rest2", prefix="/api", factory=lambda root: sub_app("x"))]

    with pytest.raises(PluginConflict, match="both mount /api"):
        async with make_server(Clash()):
            pass
