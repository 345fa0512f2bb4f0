"""A delivery survives the SIGKILL of the server sending it: a real
``workeros serve`` is killed mid-delivery, a new one sends it again under
the same delivery id. On both dialects."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest
from receiver import Receiver, eventually

from workeros.sdk.testing import ServerProcess

pytestmark = pytest.mark.slow

ENV = {"WORKEROS_NETWORK_ALLOW_PRIVATE": "1", "WORKEROS_WEBHOOKS_CLAIM_SECONDS": "2",
       "WORKEROS_WEBHOOKS_POLL_SECONDS": "0.2", "WORKEROS_WEBHOOKS_TIMEOUT": "1.5"}


async def call(session: aiohttp.ClientSession, method: str, url: str, token: str | None = None,
               **kw: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with session.request(method, url, headers=headers, **kw) as r:
        body = await r.json(content_type=None) if r.status != 204 else None
        assert r.status < 300, (r.status, body)
        return body["data"] if body else None


async def test_a_delivery_survives_sigkill_and_restart(tmp_path, wos_database_url: str,
                                                       receiver: Receiver) -> None:
    receiver.hang_first = True  # the first attempt is in flight when the server dies
    first = ServerProcess(data_dir=tmp_path, database_url=wos_database_url, env=ENV)
    await asyncio.to_thread(first.start)
    try:
        async with aiohttp.ClientSession() as s:
            base = first.url
            await call(s, "POST", base + "/api/auth/sign-up", json={"email": "admin@example.com",
                                                                    "password": "correct horse 42"})
            login = await call(s, "POST", base + "/api/auth/login", json={
                "email": "admin@example.com", "password": "correct horse 42", "mode": "json"})
            token = login["access_token"]
            await call(s, "POST", base + "/api/collections", token,
                       json={"collection": "orders", "fields": [{"field": "total", "type": "integer"}]})
            hook = await call(s, "POST", base + "/api/webhooks", token,
                              json={"name": "orders", "url": receiver.url + "/orders", "events": ["items.create"]})
            await call(s, "POST", base + "/api/items/orders", token, json={"total": 42})
            await eventually(lambda: receiver.requests, timeout=10)
            first.proc.kill()  # SIGKILL while the receiver still holds the first attempt
            await asyncio.to_thread(first.proc.wait, 10)
    finally:
        first.stop()

    second = ServerProcess(data_dir=tmp_path, database_url=wos_database_url, env=ENV)
    await asyncio.to_thread(second.start)
    try:
        await eventually(lambda: len(receiver.requests) >= 2, timeout=20)
        ids = {r.headers["Workeros-Delivery"] for r in receiver.requests}
        assert len(ids) == 1
        assert receiver.requests[-1].json()["payload"]["total"] == 42
        async with aiohttp.ClientSession() as s:
            login = await call(s, "POST", second.url + "/api/auth/login", json={
                "email": "admin@example.com", "password": "correct horse 42", "mode": "json"})

            async def delivered() -> Any:
                log = await call(s, "GET", second.url + f"/api/webhooks/{hook['id']}/deliveries",
                                 login["access_token"])
                return log if log and log[0]["status"] == "delivered" else None

            [delivery] = await eventually(delivered, timeout=10)
        assert delivery["id"] in ids and delivery["attempts"][-1]["status_code"] == 200
    finally:
        second.stop()
