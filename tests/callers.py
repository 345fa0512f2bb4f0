"""Calling the API as different callers in tests: :class:`Api` (admin, a role,
anonymous, a Bearer token) and the test-only :class:`TestCallers` plugin. Imported
by ``tests/conftest.py`` and by tests that boot their own server
(``from callers import Api, TestCallers``)."""

from __future__ import annotations

from typing import Any


class ApiResponse:
    def __init__(self, status: int, headers: Any, body: bytes) -> None:
        import orjson

        self.status = status
        self.headers = headers
        self.raw = body
        try:
            self.json = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            self.json = None

    @property
    def data(self) -> Any:
        return (self.json or {}).get("data")

    @property
    def code(self) -> str | None:
        errors = (self.json or {}).get("errors") or [{}]
        return errors[0].get("extensions", {}).get("code")

    def __repr__(self) -> str:
        return f"<ApiResponse {self.status} {self.raw[:300]!r}>"


class Api:
    """Requests to the running app as one caller. ``api.as_admin()``,
    ``api.as_role("editor", user="u1")`` and ``api.anonymous()`` give views with
    another caller; ``await api.get("/api/items/x", params=...)`` returns an
    :class:`ApiResponse` (``status``, ``json``, ``data``, ``code``)."""

    def __init__(self, client: Any, caller: str | None = None, token: str | None = None) -> None:
        self.client = client
        self.caller = caller
        #: A Bearer credential (access token or API key) sent with every request.
        self.token = token

    def as_admin(self) -> Api:
        return Api(self.client, "admin")

    def as_role(self, role: str, user: str | None = None) -> Api:
        return Api(self.client, f"role:{role}:{user or ''}")

    def anonymous(self) -> Api:
        return Api(self.client, None)

    def with_token(self, token: str) -> Api:
        """Calls with ``Authorization: Bearer <token>`` (an access token or API key)."""
        return Api(self.client, None, token=token)

    async def sign_in(self, email: str, password: str) -> Api:
        """Sign in for real (``POST /api/auth/login``, no cookies) and return an
        :class:`Api` sending the access token; ``.session`` holds the login's data."""
        r = await self.anonymous().post("/api/auth/login",
                                        json={"email": email, "password": password, "mode": "json"})
        assert r.status == 200, r
        signed_in = Api(self.client, None, token=r.data["access_token"])
        signed_in.session = r.data  # type: ignore[attr-defined]
        return signed_in

    async def request(self, method: str, path: str, **kw: Any) -> ApiResponse:
        headers = dict(kw.pop("headers", None) or {})
        if self.caller:
            headers[TEST_CALLER_HEADER] = self.caller
        if self.token and "Authorization" not in headers:
            headers["Authorization"] = f"Bearer {self.token}"
        async with self.client.request(method, path, headers=headers, **kw) as r:
            return ApiResponse(r.status, r.headers, await r.read())

    async def get(self, path: str, **kw: Any) -> ApiResponse:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, **kw: Any) -> ApiResponse:
        return await self.request("POST", path, **kw)

    async def patch(self, path: str, **kw: Any) -> ApiResponse:
        return await self.request("PATCH", path, **kw)

    async def delete(self, path: str, **kw: Any) -> ApiResponse:
        return await self.request("DELETE", path, **kw)


TEST_CALLER_HEADER = "X-Workeros-Test-Caller"


class TestCallers:
    """Test-only plugin: the caller named in a request header. Stands in for
    sign-in until the accounts service issues real tokens; never installed
    outside this test suite."""

    name = "test-callers"

    from workeros.hookspecs import hookimpl as _hookimpl

    @_hookimpl
    def workeros_after_app_created(self, app: Any) -> None:
        from aiohttp import web

        from workeros.accountability import Accountability
        from workeros.http.keys import ACCOUNTABILITY

        @web.middleware
        async def caller(request: Any, handler: Any) -> Any:
            value = request.headers.get(TEST_CALLER_HEADER)
            if value == "admin":
                request[ACCOUNTABILITY] = Accountability(user="test-admin", role="admin", admin=True,
                                                         ip=request.remote)
            elif value and value.startswith("role:"):
                _, role, user = value.split(":", 2)
                request[ACCOUNTABILITY] = Accountability(user=user or None, role=role, ip=request.remote)
            return await handler(request)

        app.middlewares.append(caller)


async def high_and_low_readers(admin: Api, collection: str = "notes") -> tuple[dict[str, str], dict[str, str]]:
    """The realtime visibility set-up: role ``high`` reads rows of ``collection``
    with ``score >= 10``, role ``low`` those below 10, both only ``id``, ``title``
    and ``score``. Returns the role ids of ``high`` and ``low``, and the
    test-caller header values of ``high``, ``low`` and ``everyone`` (an admin)."""
    roles, callers = {}, {}
    for name, rule in (("high", {"score": {"_gte": 10}}), ("low", {"score": {"_lt": 10}})):
        r = await admin.post("/api/roles", json={"name": name})
        assert r.status in (200, 201), r
        roles[name] = role = str(r.data["id"])
        r = await admin.post("/api/permissions", json={"role": role, "collection": collection, "action": "read",
                                                       "filter": rule, "fields": ["id", "title", "score"]})
        assert r.status in (200, 201), r
        callers[name] = f"role:{role}:{name[0]}"
    callers["everyone"] = "admin"
    return roles, callers
