"""Slow and excess connections against a real ``workeros serve`` process, with
raw sockets (issue 21, item 9): a client trickling its headers is closed after
``server.header_timeout``; over ``server.max_connections`` a connection is
answered 503 at once; at the file-descriptor limit failed accepts are logged
once per interval, not a traceback each."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import sys
import time
from pathlib import Path

from tests.conftest import FIRST_PARTY
from workeros.sdk.testing import ServerProcess

ENV = {"WORKEROS_LOAD_PLUGINS": ",".join(FIRST_PARTY)}


def _connect(server: ServerProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return sock


def _closed_by_peer(sock: socket.socket) -> bool:
    try:
        return sock.recv(4096) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True


async def test_a_client_trickling_headers_is_closed(tmp_path: Path, wos_database_url: str) -> None:
    env = {**ENV, "WORKEROS_SERVER_HEADER_TIMEOUT": "1"}
    with ServerProcess(data_dir=tmp_path, database_url=wos_database_url, env=env) as server:
        sock = _connect(server)
        started = time.monotonic()
        sock.sendall(b"GET /api/server/health HTTP/1.1\r\nHost: x\r\n")
        closed = False
        try:
            for _ in range(20):  # one header byte every 0.25 s: never a complete head
                await asyncio.sleep(0.25)
                sock.sendall(b"X")
        except (BrokenPipeError, ConnectionResetError):
            closed = True
        if not closed:
            sock.settimeout(5)
            closed = _closed_by_peer(sock)
        assert closed and time.monotonic() - started < 3.5, "the slow client was held past the header timeout"
        sock.close()

        # an ordinary client on a keep-alive connection is not affected by the timer
        sock = _connect(server)
        for _ in range(2):
            sock.sendall(b"GET /api/server/health HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
            await asyncio.sleep(1.2)
        sock.close()


async def test_connections_over_the_cap_get_503(tmp_path: Path, wos_database_url: str) -> None:
    env = {**ENV, "WORKEROS_SERVER_MAX_CONNECTIONS": "4", "WORKEROS_SERVER_HEADER_TIMEOUT": "30"}
    with ServerProcess(data_dir=tmp_path, database_url=wos_database_url, env=env) as server:
        await asyncio.sleep(0.5)  # the health checks' connections are gone
        idle = [_connect(server) for _ in range(4)]
        await asyncio.sleep(0.3)
        extra = _connect(server)
        extra.sendall(b"GET /api/server/health HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = extra.recv(4096)
        assert answer.startswith(b"HTTP/1.1 503"), answer
        assert b"SERVICE_UNAVAILABLE" in answer
        extra.close()
        for sock in idle:
            sock.close()
        await asyncio.sleep(0.3)
        sock = _connect(server)
        sock.sendall(b"GET /api/server/health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        sock.close()


async def test_the_file_descriptor_limit_is_logged_once_per_interval(tmp_path: Path, wos_database_url: str) -> None:
    python = tmp_path / "python-low-nofile"
    python.write_text(f"#!/bin/sh\nulimit -n 200\nexec {sys.executable} \"$@\"\n")
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    env = {**ENV, "WORKEROS_SERVER_MAX_CONNECTIONS": "0", "WORKEROS_SERVER_ACCEPT_ERROR_LOG_INTERVAL": "60"}
    with ServerProcess(data_dir=tmp_path, database_url=wos_database_url, env=env, python=str(python)) as server:
        held = []
        try:
            for _ in range(260):
                try:
                    held.append(_connect(server))
                except OSError:
                    break
            await asyncio.sleep(3.5)  # asyncio retries accept() every second
            log = server.log()
        finally:
            for sock in held:
                sock.close()
    assert log.count("cannot accept connections") == 1, log[-3000:]
    assert "Traceback" not in log and "out of system resource" not in log, log[-3000:]
    assert os.strerror(24) in log  # "Too many open files"
