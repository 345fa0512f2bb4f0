"""What the admin plugin serves: the document, its modules, and the pages
plugins contribute through ``workeros_register_admin_pages`` (on both dialects;
the browser tests are in test_admin_browser.py)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from callers import Api, TestCallers

from workeros.api import StartupError
from workeros.hookspecs import hookimpl
from workeros.hookspecs.admin import AdminPage

STATIC = Path(__file__).resolve().parents[3] / "plugins" / "admin" / "workeros_admin" / "static"


def _pages(html: str) -> list[dict[str, Any]]:
    block = re.search(r'<script type="application/json" id="wos-pages">(.*?)</script>', html, re.S)
    assert block
    return json.loads(block.group(1))


async def test_admin_serves_the_app_with_core_and_plugin_pages(api: Api) -> None:
    r = await api.get("/admin/")
    assert r.status == 200 and r.headers["Content-Type"].startswith("text/html")
    html = r.raw.decode()
    pages = {p["name"]: p for p in _pages(html)}
    # the core pages and those of the installed plugins (flows, webhooks, files, functions), ordered
    assert {"data", "schema", "access", "activity", "server", "flows", "webhooks", "files", "functions"} <= set(pages)
    assert pages["files"]["collection"] == "wos_files" and pages["functions"]["admin_only"] is True
    assert [p["order"] for p in _pages(html)] == sorted(p["order"] for p in _pages(html))
    assert pages["webhooks"]["admin_only"] is True and pages["data"]["admin_only"] is False
    # every module the page list and the import map name is served, as JavaScript
    imports = json.loads(re.search(r'<script type="importmap">(.*?)</script>', html).group(1))["imports"]
    for url in [*imports.values(), *(p["module"] for p in pages.values()), "/admin/static/app.js"]:
        module = await api.get(url)
        assert module.status == 200, url
        assert module.headers["Content-Type"] == "text/javascript" or "javascript" in module.headers["Content-Type"]
        assert module.headers["X-Content-Type-Options"] == "nosniff"
    catalogue = await api.get("/admin/static/i18n/en.json")
    assert catalogue.status == 200 and catalogue.json["nav.data"] == "Data"
    assert (await api.get("/admin")).status in (200, 302)  # redirected to /admin/


async def test_the_document_runs_only_its_own_scripts(api: Api) -> None:
    import base64
    import hashlib

    r = await api.get("/admin/")
    csp = r.headers["Content-Security-Policy"]
    import_map = re.search(r'<script type="importmap">(.*?)</script>', r.raw.decode()).group(1)
    digest = base64.b64encode(hashlib.sha256(import_map.encode()).digest()).decode()
    assert f"script-src 'self' 'sha256-{digest}'" in csp
    assert "unsafe-eval" not in csp and "frame-ancestors 'none'" in csp
    assert r.headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize("path", [
    "/admin/static/../__init__.py", "/admin/static/%2e%2e/__init__.py", "/admin/static/nope.js",
    "/admin/pages/data/../../__init__.py", "/admin/pages/nope/data.js", "/admin/pages/data/%2e%2e%2f__init__.py",
])
async def test_files_outside_the_app_are_not_served(api: Api, path: str) -> None:
    r = await api.get(path)
    assert r.status == 404, r
    assert b"workeros_admin" not in r.raw and b"import" not in r.raw


def test_the_vendored_libraries_carry_their_licences() -> None:
    vendor = STATIC / "vendor"
    assert "MIT" in (vendor / "LICENSE-preact.txt").read_text()
    assert "Apache" in (vendor / "LICENSE-htm.txt").read_text()
    for module in ("preact.mjs", "preact-hooks.mjs", "htm.mjs"):
        assert (vendor / module).stat().st_size > 500


def test_every_text_key_the_app_uses_is_in_the_catalogue() -> None:
    catalogue = json.loads((STATIC / "i18n" / "en.json").read_text())
    root = STATIC.parents[2]
    sources = [*STATIC.glob("*.js"), *STATIC.glob("pages/*.js"),
               *root.glob("plugins/*/workeros_*/admin/*.js")]
    missing = set()
    for source in sources:
        for key in re.findall(r'\bt\("([a-z_]+\.[a-z_.\-]+)"', source.read_text()):
            if key not in catalogue:
                missing.add(f"{source.name}: {key}")
    assert sources and not missing


class Hello:
    name = "hello-admin"

    def __init__(self, folder: Path, pages: list[AdminPage] | None = None) -> None:
        (folder / "hello.js").write_text("export default function mount(el) { el.textContent = 'hello'; }\n")
        (folder / "hello.css").write_text("p { color: #123; }\n")
        self.pages = pages if pages is not None else [
            AdminPage("hello", "Hello", str(folder / "hello.js"), order=70, collection="wos_users")]

    @hookimpl
    def workeros_register_admin_pages(self) -> list[AdminPage]:
        return self.pages


async def test_a_third_party_page_is_listed_and_served_with_its_files(make_server: Callable[..., Any], tmp_path: Path) -> None:
    async with make_server(TestCallers(), Hello(tmp_path)) as server, TestClient(server) as client:
        api = Api(client)
        pages = {p["name"]: p for p in _pages((await api.get("/admin/")).raw.decode())}
        assert pages["hello"] == {"name": "hello", "title": "Hello", "icon": None, "order": 70,
                                  "collection": "wos_users", "admin_only": False,
                                  "module": "/admin/pages/hello/hello.js"}
        assert (await api.get("/admin/pages/hello/hello.js")).raw.startswith(b"export default")
        assert (await api.get("/admin/pages/hello/hello.css")).status == 200
        listed = (await api.get("/admin/pages.json")).json["data"]
        assert "hello" in [p["name"] for p in listed]


async def test_pages_of_plugins_that_are_not_installed_do_not_appear(make_server: Callable[..., Any],
                                                                     wos_settings: Any) -> None:
    contributed = {"flows": "flows", "webhooks": "webhooks", "files": "files", "functions": "functions", "ai": "ai"}
    async with make_server(TestCallers()) as server, TestClient(server) as client:
        listed = (await Api(client).as_admin().get("/api/server/plugins")).json["data"]["plugins"]
        installed = {p["name"] for p in listed}
        names = {p["name"] for p in _pages((await Api(client).get("/admin/")).raw.decode())}
        assert {page for plugin, page in contributed.items() if plugin in installed} <= names
    # (s3 goes too: without files it would be the only storage backend, and unconfigured)
    settings = wos_settings.with_overrides(disable_plugins=[*contributed, "s3"])
    async with make_server(TestCallers(), settings=settings) as server, TestClient(server) as client:
        names = {p["name"] for p in _pages((await Api(client).get("/admin/")).raw.decode())}
        assert not names & set(contributed.values()) and "data" in names


@pytest.mark.parametrize(("pages", "message"), [
    (lambda d: [AdminPage("data", "Mine", str(d / "hello.js"))], "registered by both"),
    (lambda d: [AdminPage("../x", "Bad", str(d / "hello.js"))], "must be letters"),
    (lambda d: [AdminPage("ghost", "Ghost", str(d / "missing.js"))], "does not exist"),
])
async def test_a_bad_page_is_a_startup_error_naming_the_plugin(make_server: Callable[..., Any], tmp_path: Path,
                                                               pages: Any, message: str) -> None:
    hello = Hello(tmp_path)
    hello.pages = pages(tmp_path)
    with pytest.raises(StartupError, match=message) as caught:
        async with make_server(TestCallers(), hello):
            pass
    assert "hello-admin" in str(caught.value) or "admin" in str(caught.value)
