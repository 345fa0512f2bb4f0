"""Helpers shared by the functions tests."""

from __future__ import annotations

from typing import Any

from callers import Api


async def make_function(admin: Api, name: str, code: str, **extra: Any) -> dict:
    r = await admin.post("/api/functions", json={"name": name, "code": code, **extra})
    assert r.status == 201, r
    return r.data
