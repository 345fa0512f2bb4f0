"""/api/openapi.json: a valid OpenAPI 3.1 document of the live schema, shaped by
the caller's permissions; a schemathesis run over it (bounded, seeded examples)
finds no 5xx and no response that violates it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from openapi_spec_validator import validate

from tests.conftest import TEST_CALLER_HEADER, TestCallers
from tests.plugins.rest.items_setup import create_blog


async def test_document_is_valid_openapi_31_of_the_live_schema(api: Any) -> None:
    await create_blog(api)
    r = await api.as_admin().get("/api/openapi.json")
    assert r.status == 200
    doc = r.json
    validate(doc)
    assert doc["openapi"] == "3.1.0"
    assert set(doc["paths"]) >= {"/items/posts", "/items/posts/{id}", "/items/authors", "/items/tags"}
    assert set(doc["paths"]["/items/posts"]) == {"get", "post", "patch", "delete"}
    posts = doc["components"]["schemas"]["Posts"]["properties"]
    assert posts["rating"] == {"type": ["string", "null"]}
    assert posts["published_at"]["format"] == "date-time"
    create = doc["components"]["schemas"]["PostsCreate"]
    assert create["required"] == ["title"] and "tags" not in create["properties"]


async def test_anonymous_caller_sees_no_collection_it_cannot_use(api: Any) -> None:
    await create_blog(api)
    r = await api.anonymous().get("/api/openapi.json")
    assert r.status == 200
    validate(r.json)
    # Generic routes (/items/{slug}/{id}/restore) are listed; no collection is.
    assert not [p for p in r.json["paths"] if p.startswith("/items/") and not p.startswith("/items/{")]
    assert "Posts" not in r.json["components"]["schemas"]


async def test_document_covers_the_whole_api(api: Any) -> None:
    await create_blog(api)
    r = await api.as_admin().get("/api/openapi.json")
    doc = r.json
    validate(doc)
    paths = doc["paths"]
    for path, method in [
        ("/auth/login", "post"), ("/auth/sign-up", "post"), ("/auth/refresh", "post"), ("/auth/logout", "post"),
        ("/auth/providers", "get"), ("/auth/magic-link", "post"), ("/users", "get"), ("/users/me", "get"),
        ("/roles", "post"), ("/roles/{id}", "patch"), ("/permissions", "get"), ("/collections", "post"),
        ("/schema/snapshot", "get"), ("/schema/apply", "post"), ("/activity", "get"),
        ("/import/{collection}", "post"), ("/graphql", "post"), ("/server/health", "get"),
    ]:
        assert method in paths.get(path, {}), (path, method, sorted(paths))
    assert any(p.startswith("/fields") for p in paths) and any(p.startswith("/relations") for p in paths)
    assert any(p.startswith("/revisions") for p in paths)
    assert any(p.startswith("/realtime") for p in paths)
    ids = [op["operationId"] for item in paths.values() for op in item.values() if isinstance(op, dict)
           and "operationId" in op]
    assert len(ids) == len(set(ids))
    assert {t["name"] for t in doc["tags"]} >= {"auth", "users", "roles", "permissions", "schema", "realtime"}
    # Each path parameter is declared.
    role = paths["/roles/{id}"]["patch"]
    assert role["parameters"][0]["name"] == "id" and role["tags"] == ["roles"]


async def test_docs_page_is_served_locally(api: Any) -> None:
    import re

    async with api.client.get("/api/docs") as r:
        assert r.status == 200 and r.content_type == "text/html"
        page = await r.text()
    links = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert links and all(link.startswith("/api/docs/") for link in links), links
    assert "http://" not in page and "https://" not in page and "//cdn" not in page
    for link in links:
        async with api.client.get(link) as r:
            assert r.status == 200, link
            body = await r.read()
            assert len(body) > 100
    async with api.client.get("/api/docs/init.js") as r:
        assert "/api/openapi.json" in await r.text()
    async with api.client.get("/api/docs/static/..%2Fsetup.py") as r:
        assert r.status == 404


# -- schemathesis ------------------------------------------------------------------------

class ThreadServer:
    """The app on a real port, served from its own thread and event loop, so a
    synchronous client (schemathesis uses requests) can call it."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.url = ""
        self.error: BaseException | None = None

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        self.ready.set()
        if self.error is None:
            self.loop.run_forever()
        self.loop.run_until_complete(self._stop())
        self.loop.close()

    async def _start(self) -> None:
        from aiohttp.test_utils import TestServer

        from workeros.http.app import create_app
        from workeros.plugins import Plugins

        try:
            s = self.settings
            plugins = Plugins(load=s["load_plugins"], disable=s["disable_plugins"] or (), strict=s["strict_plugins"],
                              plugins_dir=s["plugins_dir"])
            plugins.load_all()
            plugins.register(TestCallers(), name="test-callers", distribution="test-fixtures")
            self.server = TestServer(await create_app(s, plugins=plugins))
            await self.server.start_server()
            self.url = str(self.server.make_url("")).rstrip("/")
        except BaseException as exc:  # reported to the test thread
            self.error = exc

    async def _stop(self) -> None:
        if getattr(self, "server", None) is not None:
            await self.server.close()

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        self.ready.wait(60)
        if self.error is not None:
            raise self.error
        return self

    def __exit__(self, *exc: Any) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)


class SyncApi:
    """Enough of tests.conftest.Api, synchronously, for create_blog."""

    def __init__(self, url: str, caller: str | None = "admin") -> None:
        self.url, self.caller = url, caller

    def as_admin(self) -> SyncApi:
        return SyncApi(self.url, "admin")

    async def post(self, path: str, **kw: Any) -> Any:
        r = requests.post(self.url + path, headers={TEST_CALLER_HEADER: self.caller or ""}, timeout=30, **kw)
        r.status = r.status_code  # type: ignore[attr-defined]
        return r


@pytest.fixture
def live(wos_settings: Any) -> Iterator[str]:
    settings = wos_settings.with_overrides(load_plugins=__import__("tests.conftest").conftest.FIRST_PARTY)
    with ThreadServer(settings) as server:
        yield server.url


def test_schemathesis_finds_no_server_error_and_no_spec_violation(live: str) -> None:
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    asyncio.run(create_blog(SyncApi(live)))
    headers = {TEST_CALLER_HEADER: "admin"}
    doc = requests.get(live + "/api/openapi.json", headers=headers, timeout=30).json()
    schema = schemathesis.openapi.from_dict(doc)
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
    session = requests.Session()
    # The items API of each collection (the routes generated from the live
    # schema); the rest of the document describes routes with their own tests.
    operations = [op for op in (result.ok() for result in schema.get_all_operations())
                  if op.path.startswith("/items/") and not op.path.startswith("/items/{")]
    assert len(operations) >= 12
    for operation in operations:
        @settings(max_examples=12, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            response = case.call(base_url=live + "/api", session=session, headers=headers, timeout=30)
            case.validate_response(response, checks=checks)

        run()


# -- the rest of the API -------------------------------------------------------------------
# Every route of the live document outside the generated items API, for a
# not-a-server-error run, and a hand-written set of the same routes with loose
# parameter and body schemas (strings and unbounded integers), so hostile strings
# (NUL...) and integers beyond 64 bits reach every handler.

_S: dict[str, Any] = {"type": "string"}
_I: dict[str, Any] = {"type": "integer"}
_OBJ: dict[str, Any] = {"type": "object"}
_ANY_RESPONSE = {"default": {"description": "any"}}


def _q(*names: str, kind: dict[str, Any] = _S) -> list[dict[str, Any]]:
    return [{"name": n, "in": "query", "schema": kind} for n in names]


def _p(name: str, kind: dict[str, Any] = _S) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": kind}


def _op(params: list[dict[str, Any]] | None = None, body: dict[str, Any] | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {"responses": _ANY_RESPONSE}
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return op


def _obj(**props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": props}


LIST_PARAMS = [*_q("search", "filter", "sort", "fields"), *_q("limit", "offset", "page", kind=_I)]
EXTRA_PATHS: dict[str, Any] = {
    "/auth/login": {"post": _op(body=_obj(email=_S, password=_S, mode=_S))},
    "/auth/sign-up": {"post": _op(body=_obj(email=_S, password=_S, first_name=_S, last_name=_S))},
    "/auth/refresh": {"post": _op(body=_obj(refresh_token=_S))},
    "/auth/password/request": {"post": _op(body=_obj(email=_S))},
    "/auth/password/reset": {"post": _op(body=_obj(token=_S, password=_S))},
    "/users": {"get": _op(LIST_PARAMS + _q("role", "status")),
               "post": _op(body=_obj(email=_S, first_name=_S, last_name=_S, role=_S))},
    "/users/{id}": {"get": _op([_p("id")]), "patch": _op([_p("id")], _obj(first_name=_S, status=_S)),
                    "delete": _op([_p("id")])},
    "/roles": {"get": _op(), "post": _op(body=_obj(name=_S, description=_S))},
    "/roles/{id}": {"get": _op([_p("id")]), "patch": _op([_p("id")], _obj(name=_S))},
    "/permissions": {"get": _op(_q("role", "collection")),
                     "post": _op(body=_obj(role=_S, collection=_S, action=_S, filter=_OBJ))},
    "/permissions/{id}": {"get": _op([_p("id", _I)]), "patch": _op([_p("id", _I)], _obj(filter=_OBJ)),
                          "delete": _op([_p("id", _I)])},
    "/activity": {"get": _op(LIST_PARAMS)},
    "/revisions": {"get": _op(LIST_PARAMS + _q("collection", "item", "at"))},
    "/revisions/{id}/restore": {"post": _op([_p("id", _I)])},
    "/items/posts/{id}/restore": {"post": _op([_p("id", _I), *_q("at")])},
    "/collections": {"get": _op(_q("system")), "post": _op(body=_obj(collection=_S, note=_S))},
    "/collections/{collection}": {"get": _op([_p("collection")])},
    "/fields/{collection}": {"get": _op([_p("collection")])},
    "/fields/{collection}/{field}": {"get": _op([_p("collection"), _p("field")])},
    "/relations/{collection}/{field}": {"get": _op([_p("collection"), _p("field")])},
    "/api-keys": {"get": _op(), "post": _op(body=_obj(name=_S, expires_at=_S))},
    "/api-keys/{id}": {"delete": _op([_p("id")])},
    "/users/me/sessions/{family}": {"delete": _op([_p("family")])},
    "/schema/diff": {"post": _op(body=_OBJ)},
    "/graphql": {"post": _op(body=_obj(query=_S, variables=_OBJ))},
}


def test_schemathesis_finds_no_server_error_in_the_rest_of_the_api(live: str) -> None:
    """Every endpoint beyond the generated items API (auth, users, roles,
    permissions, activity, revisions, schema, relations, API keys, webhooks,
    GraphQL...) as an admin: no 5xx for any generated input."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error

    asyncio.run(create_blog(SyncApi(live)))
    headers = {TEST_CALLER_HEADER: "admin"}
    doc = requests.get(live + "/api/openapi.json", headers=headers, timeout=30).json()
    # streams never end by themselves: their routes have their own tests
    described = {k: v for k, v in doc["paths"].items()
                 if not k.startswith("/items/") and not k.startswith("/realtime")} | {
        k: v for k, v in doc["paths"].items() if k.startswith("/items/{")}
    runs = []
    for paths, examples in ((described, 4), (EXTRA_PATHS, 8)):
        schema = schemathesis.openapi.from_dict({**doc, "paths": paths} if paths is described else
                                                {"openapi": "3.1.0", "info": {"title": "rest", "version": "1"},
                                                 "paths": paths})
        runs += [(result.ok(), examples) for result in schema.get_all_operations()]
    assert len(runs) >= 60
    session = requests.Session()
    for operation, examples in runs:
        @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            response = case.call(base_url=live + "/api", session=session, headers=headers, timeout=30)
            case.validate_response(response, checks=[not_a_server_error])

        run()
