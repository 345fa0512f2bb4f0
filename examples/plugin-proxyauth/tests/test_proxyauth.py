"""The proxy's header signs people in, only from the proxy's address; on SQLite
and PostgreSQL."""

import pytest

FAST = {"auth.password.argon2_time_cost": 1, "auth.password.argon2_memory_kib": 8192}


@pytest.fixture
def wos_settings_overrides():
    return {**FAST, "auth.proxy.trusted": ["127.0.0.0/8", "::1/128"]}


async def test_the_header_signs_in_and_creates_the_account(wos_client):
    response = await wos_client.post("/api/auth/proxy/login", json={"mode": "json"},
                                     headers={"X-Forwarded-Email": "Ada@Example.com"})
    assert response.status == 200, await response.text()
    token = (await response.json())["data"]["access_token"]
    me = await wos_client.get("/api/users/me", headers={"Authorization": f"Bearer {token}"})
    assert (await me.json())["data"]["email"] == "ada@example.com"
    again = await wos_client.post("/api/auth/proxy/login", json={"mode": "json"},
                                  headers={"X-Forwarded-Email": "ada@example.com"})
    assert again.status == 200
    providers = await (await wos_client.get("/api/auth/providers")).json()
    assert "proxy" in str(providers)


async def test_no_header_is_refused(wos_client):
    response = await wos_client.post("/api/auth/proxy/login", json={"mode": "json"})
    assert response.status == 401
    assert (await response.json())["errors"][0]["extensions"]["code"] == "INVALID_CREDENTIALS"


@pytest.mark.parametrize("wos_settings_overrides", [{**FAST, "auth.proxy.trusted": ["10.0.0.0/8"]}])
async def test_the_header_from_elsewhere_is_refused(wos_client):
    response = await wos_client.post("/api/auth/proxy/login", json={"mode": "json"},
                                     headers={"X-Forwarded-Email": "mallory@example.com"})
    assert response.status == 401
    assert "token" not in await response.text()
