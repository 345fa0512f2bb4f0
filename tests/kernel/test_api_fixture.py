"""The test helpers every HTTP test uses: callers and responses."""

from __future__ import annotations

from tests.conftest import Api


async def test_api_fixture_callers(api: Api) -> None:
    r = await api.get("/api/server/plugins")
    assert (r.status, r.code) == (403, "FORBIDDEN")
    r = await api.as_role("editor", user="u1").get("/api/server/plugins")
    assert r.status == 403
    r = await api.as_admin().get("/api/server/plugins")
    assert r.status == 200 and "plugins" in r.data
