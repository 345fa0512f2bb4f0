"""Brute force → 429 ``RATE_LIMITED`` with ``Retry-After``, per account and per IP,
counted in the database so two instances share one limit (both dialects)."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

LIMITS = {"ratelimit__login__per_account": 3, "ratelimit__login__per_ip": 100, "ratelimit__login__window": 600}


async def _login(client, email, password):
    async with client.post("/api/auth/login", json={"email": email, "password": password, "mode": "json"}) as r:
        return r.status, r.headers, await r.json()


async def test_brute_force_is_429_across_two_instances(make_server, password):
    async with make_server(**LIMITS) as one, make_server(**LIMITS) as two, \
            TestClient(one) as a, TestClient(two) as b:
        async with a.post("/api/auth/sign-up", json={"email": "ada@example.com", "password": password}) as r:
            assert r.status == 201
        statuses = [(await _login(c, "ada@example.com", "wrong-password"))[0] for c in (a, b, a)]
        assert statuses == [401, 401, 401]
        status, headers, body = await _login(b, "ada@example.com", "wrong-password")
        assert status == 429 and body["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        assert 1 <= int(headers["Retry-After"]) <= 601
        # Even the right password is refused while the account is limited.
        assert (await _login(a, "ada@example.com", password))[0] == 429
        # Another account is not affected.
        async with a.post("/api/auth/sign-up", json={"email": "bob@example.com", "password": password}) as r:
            assert r.status == 201
        assert (await _login(b, "bob@example.com", password))[0] == 200


async def test_per_ip_limit(make_server, password):
    limits = {"ratelimit__login__per_account": 0, "ratelimit__login__per_ip": 2}
    async with make_server(**limits) as server, TestClient(server) as client:
        assert [(await _login(client, f"u{i}@example.com", "x-x-x-x-x"))[0] for i in range(3)] == [401, 401, 429]


async def test_sign_up_and_reset_requests_are_limited(make_server, password):
    limits = {"ratelimit__sign_up__per_ip": 2}
    async with make_server(**limits) as server, TestClient(server) as client:
        codes = []
        for i in range(3):
            async with client.post("/api/auth/sign-up", json={"email": f"u{i}@example.com", "password": password}) as r:
                codes.append(r.status)
        assert codes == [201, 201, 429]


async def test_limits_can_be_turned_off(make_server, password):
    async with make_server(ratelimit__enabled=False, ratelimit__login__per_account=1) as server, \
            TestClient(server) as client:
        assert [(await _login(client, "a@example.com", "x-x-x-x-x"))[0] for _ in range(3)] == [401, 401, 401]


async def test_database_counters_are_atomic_per_window_and_swept(wos_services):
    import asyncio
    import time

    import sqlalchemy as sa

    from workeros.accounts.ratelimit import DatabaseStore
    from workeros.db.tables.accounts import rate_limits

    store = DatabaseStore(wos_services.db, wos_services.settings)
    now = int(time.time() // 60 * 60)
    counts = await asyncio.gather(*(store.bump(["k1", "k2"], now, 60) for _ in range(10)))
    assert sorted(c[0] for c in counts) == list(range(1, 11))
    assert sorted(c[1] for c in counts) == list(range(1, 11))
    assert await store.bump(["k1"], now + 60, 60) == [1]  # a new window starts over
    await store.forget("k2")
    async with wos_services.db.read() as conn:
        keys = sorted((r.key, r.window_start) for r in await conn.execute(sa.select(rate_limits)))
    assert keys == [("k1", now), ("k1", now + 60)]
    await store.bump(["old"], now - 86400, 60)
    store._last_cleanup = 0.0
    await store.bump(["k1"], now, 60)  # sweeps windows long past
    async with wos_services.db.read() as conn:
        keys = sorted(r.key for r in await conn.execute(sa.select(rate_limits)))
    assert keys == ["k1", "k1"]
