from __future__ import annotations

import io
import json
import logging

from tests.conftest import FIRST_PARTY
from workeros.logs import JsonFormatter, configure_logging
from workeros.plugins import Plugins


def test_json_log_lines_carry_extra_fields() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("workeros.test.json")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("hello %s", "there", extra={"request_id": "r1", "status": 201})
    finally:
        logger.removeHandler(handler)
    line = json.loads(stream.getvalue())
    assert line["message"] == "hello there"
    assert (line["level"], line["request_id"], line["status"]) == ("warning", "r1", 201)
    assert line["time"].endswith("Z")


def test_configure_logging_switches_format(capsys) -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure_logging("info", "json")
        logging.getLogger("workeros.x").info("structured")
        assert json.loads(capsys.readouterr().err.strip().splitlines()[-1])["message"] == "structured"
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


async def test_access_log_has_request_id(wos_settings, caplog) -> None:
    import aiohttp
    from aiohttp import web

    from workeros.http.access_log import AccessLogger
    from workeros.http.app import create_app

    runner = web.AppRunner(await create_app(wos_settings), access_log_class=AccessLogger,
                           access_log=logging.getLogger("workeros.access"))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        with caplog.at_level(logging.INFO, "workeros.access"):
            async with aiohttp.ClientSession() as session:
                async with session.get(f"http://127.0.0.1:{port}/api/server/health",
                                       headers={"X-Request-Id": "acc-1"}):
                    pass
    finally:
        await runner.cleanup()
    record = next(r for r in caplog.records if r.name == "workeros.access")
    assert record.request_id == "acc-1"
    assert (record.status, record.path) == (200, "/api/server/health")


def test_trace_plugins_logs_hook_calls(caplog) -> None:
    plugins = Plugins(load=FIRST_PARTY, trace=True)
    plugins.load_all()
    with caplog.at_level(logging.INFO, "workeros.plugins"):
        plugins.collect("workeros_register_db_dialects")
        plugins.hook.workeros_register_transports()
    assert "hook workeros_register_db_dialects -> sqlite" in caplog.text
    assert "hook workeros_register_transports" in caplog.text


def test_log_handler_writes_to_the_current_stderr(monkeypatch) -> None:
    """A stderr replaced (and closed) after logging was configured is never
    written to: no "--- Logging error --- I/O operation on closed file"."""
    import io
    import sys

    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure_logging("info", "text")
        first = io.StringIO()
        monkeypatch.setattr(sys, "stderr", first)
        logging.getLogger("workeros.x").info("into the first stream")
        assert "into the first stream" in first.getvalue()
        first.close()
        second = io.StringIO()
        monkeypatch.setattr(sys, "stderr", second)
        logging.getLogger("workeros.x").info("into the second stream")
        assert "into the second stream" in second.getvalue()
        assert "Logging error" not in second.getvalue()
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
