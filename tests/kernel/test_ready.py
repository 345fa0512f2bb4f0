"""``/api/server/ready``: distinct from health; 503 while draining or behind on
migrations; on both dialects."""

from __future__ import annotations

import sqlalchemy as sa
from aiohttp.test_utils import TestClient

from workeros.http.keys import DRAINING, SERVICES


async def test_ready_when_database_answers_and_migrations_are_current(make_server) -> None:
    async with make_server() as server, TestClient(server) as client:
        r = await client.get("/api/server/ready")
        assert r.status == 200
        body = await r.json()
        assert body["data"]["status"] == "ready"
        assert body["data"]["checks"]["migrations"] == "current"


async def test_not_ready_while_draining_but_still_alive(make_server) -> None:
    async with make_server() as server, TestClient(server) as client:
        server.app[DRAINING].set()
        r = await client.get("/api/server/ready")
        assert r.status == 503
        assert r.headers["Retry-After"] == "1"
        body = await r.json()
        assert body["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
        assert body["errors"][0]["extensions"]["checks"]["draining"] is True
        assert (await client.get("/api/server/health")).status == 200


async def test_not_ready_when_a_migration_chain_is_behind(make_server) -> None:
    async with make_server() as server, TestClient(server) as client:
        db = server.app[SERVICES].db
        async with db.transaction() as conn:
            await conn.execute(sa.text("UPDATE wos_migrations SET version_num = '0001'"))
        r = await client.get("/api/server/ready")
        assert r.status == 503
        body = await r.json()
        assert body["errors"][0]["message"] == "Migrations are not current"
        assert body["errors"][0]["extensions"]["checks"]["migrations"] == ["workeros"]
