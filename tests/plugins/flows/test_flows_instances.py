"""Two instances on one PostgreSQL database run each schedule tick once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from callers import Api, TestCallers


async def test_each_tick_runs_once_across_two_instances(make_server: Callable[..., Any], wos_dialect: str) -> None:
    if wos_dialect != "postgres":
        pytest.skip("several instances share a PostgreSQL database")
    async with make_server(TestCallers()) as one, make_server(TestCallers()) as two, \
            TestClient(one) as c1, TestClient(two) as c2:
        admin = Api(c1).as_admin()
        r = await admin.post("/api/flows", json={"name": "every 2s", "trigger": "schedule",
                                                 "options": {"cron": "*/2 * * * * *"},
                                                 "operations": [{"key": "tick", "type": "transform",
                                                                 "options": {"json": "{{ $trigger.tick }}"}}]})
        assert r.status == 201, r
        await asyncio.sleep(9)
        await Api(c2).as_admin().patch(f"/api/flows/{r.data['id']}", json={"status": "inactive"})
        await asyncio.sleep(0.5)
        runs = (await admin.get(f"/api/flows/{r.data['id']}/runs")).data
        ticks = [run["steps"][0]["output"] for run in runs]
        assert 3 <= len(ticks) <= 5, ticks
        assert len(set(ticks)) == len(ticks), ticks  # no tick ran twice
        seconds = sorted(int(t[17:19]) for t in ticks)
        assert all(s % 2 == 0 for s in seconds)
