"""The admin app in a real browser: Debian's Chromium driven by Playwright against
``workeros serve`` in a child process (the main flow on SQLite and PostgreSQL, the
rest on SQLite; every API path the app calls is covered on both dialects by the
REST, files, flows, functions, webhooks, ai and MCP tests).

One server and one browser per module; the first admin signs up through the
browser on that fresh server (the ``admin`` fixture), and every test then works
in its own browser context, signed in as that admin (or as the user it makes),
so the tests do not depend on each other's order. Each page fails its test on a
script error, a console error or a 5xx answer. Screenshots go to docs/admin/.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from workeros.sdk.testing import ServerProcess, free_port

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect
CHROMIUM = os.environ.get("WOS_TEST_CHROMIUM", "/usr/bin/chromium")
if not shutil.which(CHROMIUM):
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)

SHOTS = Path(__file__).resolve().parents[3] / "docs" / "admin"
EMAIL, PASSWORD = "ada@example.com", "correct horse 42"


# -- plumbing -----------------------------------------------------------------------------

class Http:
    """Set-up and checks through the public API, beside the browser."""

    def __init__(self, base: str, token: str | None = None) -> None:
        self.base, self.token = base, token

    def call(self, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if token or self.token:
            headers["Authorization"] = f"Bearer {token or self.token}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as err:
            raw = err.read()
            return err.code, json.loads(raw) if raw else None

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, payload = self.call(method, path, body)
        assert status < 300, (method, path, status, payload)
        return payload["data"] if payload else None

    def login(self, email: str, password: str) -> dict[str, Any]:
        status, payload = self.call("POST", "/api/auth/login", {"email": email, "password": password, "mode": "json"})
        assert status == 200, payload
        return payload["data"]


@pytest.fixture(scope="module")
def fake_model() -> Iterator[Any]:
    """The fake Messages API the ai plugin's tests use (a real HTTP server on loopback)."""
    from tests.plugins.ai.conftest import FakeAnthropic

    fake = FakeAnthropic()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


# The main flow (first admin, schema, data, a role with a row filter) runs on both
# dialects; the other tests on SQLite (the API paths they use are tested on both by
# their plugins' suites). One server per dialect, shared by the module's tests.
BOTH_DIALECTS = {
    "test_first_admin_sign_up_on_a_fresh_server",
    "test_create_a_collection_with_fields_and_a_relation",
    "test_add_edit_filter_and_delete_items",
    "test_a_role_with_a_row_filter_and_a_user_who_sees_only_their_rows",
}


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def dialect(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(autouse=True)
def _main_flow_on_both_dialects(request: pytest.FixtureRequest, dialect: str) -> None:
    if dialect != "sqlite" and request.node.originalname not in BOTH_DIALECTS:
        pytest.skip("runs on SQLite only (its API paths are tested on both dialects by its plugin's suite)")


@pytest.fixture(scope="module")
def database_url(dialect: str) -> Iterator[str | None]:
    if dialect == "sqlite":
        yield None  # the server's default: SQLite in its data dir
        return
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from workeros.sdk.testing import create_pg_database, drop_pg_database, require_postgres

    def run(make: Any) -> Any:  # on a thread of its own: Playwright's loop runs on this one
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(lambda: asyncio.run(make())).result()

    run(require_postgres)
    url = run(create_pg_database)
    try:
        yield url
    finally:
        run(lambda: drop_pg_database(url))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, fake_model: Any, database_url: str | None) -> Iterator[ServerProcess]:
    with ServerProcess(data_dir=tmp_path_factory.mktemp("admin"), database_url=database_url,
                       env={"WORKEROS_NETWORK_ALLOW_PRIVATE": "1",
                            # each test signs in afresh; the limiter has its own tests
                            "WORKEROS_RATELIMIT_LOGIN_PER_ACCOUNT": "0", "WORKEROS_RATELIMIT_LOGIN_PER_IP": "0",
                            "WORKEROS_AI_API_KEY": "sk-ant-test-key", "WORKEROS_AI_BASE_URL": fake_model.url,
                            "WORKEROS_AI_MAX_RETRIES": "0"}, startup_timeout=90) as proc:
        yield proc


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM)
        try:
            yield chromium
        finally:
            chromium.close()


class Watched:
    """A page whose script errors, console errors and 5xx answers are collected."""

    def __init__(self, context: Any, base: str, shots: bool = True) -> None:
        self.context, self.base, self.shots = context, base, shots
        self.page = context.new_page()
        self.problems: list[str] = []
        # 5xx answers the contract gives on purpose (a function's throw is 502
        # FUNCTION_ERROR), by status and path, allowed by the test that causes them.
        self.expected: set[tuple[int, str]] = set()
        self.page.on("pageerror", lambda e: self.problems.append(f"script error: {e}"))
        self.page.on("console", self._console)
        self.page.on("response", self._response)

    def expect_status(self, status: int, path: str) -> None:
        self.expected.add((status, path))

    def _response(self, response: Any) -> None:
        if response.status >= 500 and (response.status, urllib.parse.urlsplit(response.url).path) not in self.expected:
            self.problems.append(f"{response.status} from {response.url}")

    def _console(self, message: Any) -> None:
        # Chromium logs every 4xx answer to fetch() as "Failed to load resource";
        # those are the API's refusals the app shows as messages (tested below).
        # Anything else logged as an error is a failure.
        text = message.text
        if message.type != "error" or "Failed to load resource: the server responded with a status of 4" in text:
            return
        if any(f"status of {status}" in text and path in (message.location or {}).get("url", "")
               for status, path in self.expected):
            return
        self.problems.append(f"console error: {text}")

    def goto(self, hash_: str) -> Any:
        self.page.goto(f"{self.base}/admin/#/{hash_}")
        return self.page

    def shot(self, name: str, full: bool = False) -> None:
        if not self.shots:  # docs/admin shows the SQLite run's pages
            return
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.evaluate("window.scrollTo(0, 0)")
        self.page.wait_for_timeout(150)  # let the last render settle
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full)

    def check_labels(self) -> None:
        """Every form control has an accessible name (label, aria-label or title)."""
        unnamed = self.page.evaluate("""() => [...document.querySelectorAll('input, select, textarea')]
            .filter((el) => el.type !== 'hidden' && !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.title)
            .map((el) => el.outerHTML.slice(0, 120))""")
        assert unnamed == []


@pytest.fixture(scope="module")
def admin(server: ServerProcess, browser: Any, dialect: str) -> dict[str, Any]:
    """The first admin, signed up through the browser on the fresh server."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    watched = Watched(context, server.url, shots=dialect == "sqlite")
    page = watched.page
    page.goto(server.url + "/admin/")
    page.get_by_role("tab", name="Create account").click()
    page.get_by_text("the first account becomes the administrator").wait_for()
    watched.check_labels()
    watched.shot("sign-up")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.locator("form").get_by_role("button", name="Create account").click()
    page.get_by_role("navigation", name="Sections").wait_for()
    assert page.get_by_text(EMAIL).is_visible()
    problems = list(watched.problems)
    context.close()
    http = Http(server.url)
    tokens = http.login(EMAIL, PASSWORD)
    return {"http": Http(server.url, tokens["access_token"]), "tokens": tokens, "problems": problems}


def _signed_in_context(browser: Any, server: ServerProcess, tokens: dict[str, Any]) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    session = json.dumps({"access_token": tokens["access_token"], "refresh_token": tokens["refresh_token"]})
    # Seed the stored session once per tab (a later sign-out must stick).
    context.add_init_script(
        "if (!sessionStorage.getItem('seeded')) { sessionStorage.setItem('seeded', '1');"
        f" localStorage.setItem('workeros.admin.session', JSON.stringify({{...{session}, until: Date.now() + 600000}})); }}")
    return context


@pytest.fixture
def ui(browser: Any, server: ServerProcess, admin: dict[str, Any], dialect: str) -> Iterator[Watched]:
    """A fresh browser context signed in as the admin (a fresh sign-in of its own)."""
    tokens = Http(server.url).login(EMAIL, PASSWORD)
    context = _signed_in_context(browser, server, tokens)
    watched = Watched(context, server.url, shots=dialect == "sqlite")
    yield watched
    problems = watched.problems
    context.close()
    assert problems == []


@pytest.fixture
def http(admin: dict[str, Any]) -> Http:
    return admin["http"]


def _unique(prefix: str) -> str:
    return f"{prefix}_{os.urandom(3).hex()}"


# -- sign-in ---------------------------------------------------------------------------------

def test_first_admin_sign_up_on_a_fresh_server(admin: dict[str, Any], http: Http) -> None:
    assert admin["problems"] == []
    me = http.ok("GET", "/api/users/me")
    assert me["email"] == EMAIL and me["role"] == "admin"
    assert (SHOTS / "sign-up.png").exists()


def test_sign_in_shows_the_api_error_then_signs_in_and_out(browser: Any, server: ServerProcess, admin: Any) -> None:
    context = browser.new_context()
    watched = Watched(context, server.url)
    page = watched.page
    page.goto(server.url + "/admin/")
    form = page.get_by_role("form", name="Sign in", exact=True)
    form.get_by_label("Email").fill(EMAIL)
    form.get_by_label("Password").fill("wrong password 1")
    form.get_by_role("button", name="Sign in").click()
    assert "Invalid email or password" in form.get_by_role("alert").inner_text()
    watched.shot("sign-in")
    form.get_by_label("Password").fill(PASSWORD)
    form.get_by_role("button", name="Sign in").click()
    page.get_by_role("navigation", name="Sections").wait_for()
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("tab", name="Sign in").wait_for()
    assert page.evaluate("localStorage.getItem('workeros.admin.session')") is None
    problems = watched.problems
    context.close()
    assert problems == []


def _totp(secret: str, step_offset: int = 0) -> str:
    import base64
    import hashlib
    import hmac
    import struct
    import time

    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", int(time.time()) // 30 + step_offset), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    return f"{(struct.unpack('>I', digest[offset:offset + 4])[0] & 0x7FFFFFFF) % 1_000_000:06d}"


def test_sign_in_asks_for_the_totp_code(browser: Any, server: ServerProcess, http: Http) -> None:
    if not any(p["name"] == "otp" for p in http.ok("GET", "/api/auth/providers")):
        pytest.skip("the otp plugin (an optional extra) is not installed")
    email = f"{_unique('tess')}@example.com"
    http.ok("POST", "/api/users", {"email": email, "password": "totp horse 42"})
    own = Http(server.url, http.login(email, "totp horse 42")["access_token"])
    secret = own.ok("POST", "/api/auth/otp/totp/enrol")["secret"]
    own.ok("POST", "/api/auth/otp/totp/enable", {"code": _totp(secret)})
    context = browser.new_context()
    watched = Watched(context, server.url)
    page = watched.page
    page.goto(server.url + "/admin/")
    form = page.get_by_role("form", name="Sign in", exact=True)
    form.get_by_label("Email").fill(email)
    form.get_by_label("Password").fill("totp horse 42")
    form.get_by_role("button", name="Sign in").click()
    form.get_by_label("Authenticator code").fill(_totp(secret, 1))  # a code not used yet
    watched.shot("totp")
    form.get_by_role("button", name="Sign in").click()
    page.get_by_role("navigation", name="Sections").wait_for()
    problems = watched.problems
    context.close()
    assert problems == []


# -- schema ----------------------------------------------------------------------------------

def test_create_a_collection_with_fields_and_a_relation(ui: Watched, http: Http) -> None:
    authors, books = _unique("authors"), _unique("books")
    page = ui.goto("schema")
    for name in (authors, books):
        page.get_by_label("Collection name").fill(name)
        page.get_by_role("button", name="Create collection").click()
        page.get_by_role("heading", name=name).wait_for()
    page.goto(f"{ui.base}/admin/#/schema/{authors}")
    _add_field(page, "name", "string")

    page.goto(f"{ui.base}/admin/#/schema/{books}")
    _add_field(page, "title", "string")
    _add_field(page, "pages", "integer")
    # A name the API refuses: its message appears next to the input, nothing is created.
    page.get_by_role("button", name="Add field").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Field", exact=True).fill("Bad Name!")
    dialog.get_by_role("button", name="Save").click()
    message = dialog.locator(".field-error").first
    message.wait_for()
    assert message.inner_text().strip()
    assert dialog.get_by_label("Field", exact=True).get_attribute("aria-invalid") == "true"
    # file and vector are offered where their plugins are installed
    offered = dialog.get_by_label("Type").locator("option").all_inner_texts()
    installed = {p["name"] for p in http.ok("GET", "/api/server/plugins")["plugins"]}
    assert ("file" in offered) == ("files" in installed) and ("vector" in offered) == ("vectors" in installed)
    dialog.get_by_role("button", name="Close").click()
    # The relation: an m2o field to authors.
    page.get_by_role("button", name="Add field").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Field", exact=True).fill("author")
    dialog.get_by_label("Type").select_option("m2o")
    dialog.get_by_label("Related collection").select_option(authors)
    dialog.get_by_role("button", name="Save").click()
    page.locator("tr[data-field=author]").get_by_text(f"m2o → {authors}").wait_for()
    ui.check_labels()
    ui.shot("schema")

    fields = {f["field"]: f for f in http.ok("GET", f"/api/fields/{books}")}
    assert fields["title"]["type"] == "string" and fields["pages"]["type"] == "integer"
    assert fields["author"]["relation"]["related_collection"] == authors
    assert "Bad Name!" not in fields


def _add_field(page: Any, name: str, type_: str) -> None:
    page.get_by_role("button", name="Add field").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Field", exact=True).fill(name)
    dialog.get_by_label("Type").select_option(type_)
    dialog.get_by_role("button", name="Save").click()
    page.locator(f"tr[data-field={name}]").wait_for()


def _books(http: Http, rows: list[dict[str, Any]] | None = None) -> str:
    slug = _unique("books")
    http.ok("POST", "/api/collections", {"collection": slug, "fields": [
        {"field": "title", "type": "string"}, {"field": "pages", "type": "integer"}]})
    if rows:
        http.ok("POST", f"/api/items/{slug}", rows)
    return slug


# -- data ------------------------------------------------------------------------------------

def test_add_edit_filter_and_delete_items(ui: Watched, http: Http) -> None:
    slug = _books(http)
    page = ui.goto(f"data/{slug}")
    for title, pages in (("Dune", "412"), ("Emma", "90"), ("Ulysses", "730")):
        page.get_by_role("link", name="New item").click()
        page.get_by_label("title").fill(title)
        page.get_by_label("pages").fill(pages)
        page.get_by_role("button", name="Save").click()
        page.get_by_role("heading", name=re.compile(r"^Item \d+$")).wait_for()
        page.get_by_role("link", name=f"← {slug}").click()
        page.locator("tbody tr", has_text=title).wait_for()
    # edit
    page.locator("tbody tr", has_text="Emma").get_by_role("link").click()
    page.get_by_label("title").fill("Emma (abridged)")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Saved.").wait_for()
    ui.shot("item-editor")
    page.get_by_role("link", name=f"← {slug}").click()
    page.locator("tbody tr", has_text="Emma (abridged)").wait_for()
    # filter: pages > 100, built with the filter builder, the DSL shown as written
    page.locator("summary", has_text="Filter").click()
    page.get_by_role("button", name="Add rule").click()
    builder = page.locator(".filter-builder")
    builder.get_by_label("Field", exact=True).select_option("pages")
    builder.get_by_label("Operator", exact=True).select_option("_gt")
    builder.get_by_label("Value", exact=True).fill("100")
    expect(page.locator("tbody tr")).to_have_count(2)
    assert json.loads(page.get_by_test_id("filter-dsl").inner_text()) == {"pages": {"_gt": 100}}
    titles = sorted(page.locator("tbody tr td:nth-child(3)").all_inner_texts())
    assert titles == ["Dune", "Ulysses"]
    # sort by pages, descending
    page.get_by_role("button", name="pages").click()
    page.get_by_role("button", name="pages ▲").click()
    expect(page.locator("tbody tr td:nth-child(3)").first).to_have_text("Ulysses")
    ui.check_labels()
    ui.shot("data")
    # delete the selected rows
    page.once("dialog", lambda d: d.accept())
    page.get_by_label("Select item 1").check()
    page.get_by_role("button", name="Delete selected (1)").click()
    expect(page.locator("tbody tr")).to_have_count(1)
    left = [row["title"] for row in http.ok("GET", f"/api/items/{slug}?sort=id")]
    assert left == ["Emma (abridged)", "Ulysses"]


def test_table_follows_changes_live_and_pages(ui: Watched, http: Http) -> None:
    slug = _books(http, [{"title": f"book {i:02}", "pages": i} for i in range(30)])
    page = ui.goto(f"data/{slug}")
    page.get_by_text("Page 1 of 2 · 30 items").wait_for()
    page.get_by_role("button", name="Next").click()
    page.get_by_text("Page 2 of 2 · 30 items").wait_for()
    expect(page.locator("tbody tr")).to_have_count(5)
    # another client adds an item: the open table shows it without a reload
    http.ok("POST", f"/api/items/{slug}", {"title": "from elsewhere", "pages": 1})
    page.get_by_text("Page 2 of 2 · 31 items").wait_for()
    page.locator("tbody tr", has_text="from elsewhere").wait_for()
    # column choice
    page.locator("summary", has_text="Columns").click()
    page.locator(".columns").get_by_label("pages").uncheck()
    expect(page.locator("thead th", has_text=re.compile(r"^pages"))).to_have_count(0)
    # search
    page.get_by_role("searchbox", name="Search").fill("book 0")
    page.get_by_role("search").get_by_role("button", name="Search").click()
    page.get_by_text("Page 1 of 1 · 10 items").wait_for()


def test_revert_an_item_to_an_earlier_revision(ui: Watched, http: Http) -> None:
    slug = _books(http)
    item = http.ok("POST", f"/api/items/{slug}", {"title": "first draft", "pages": 10})
    http.ok("PATCH", f"/api/items/{slug}/{item['id']}", {"title": "second draft"})
    http.ok("PATCH", f"/api/items/{slug}/{item['id']}", {"title": "final", "pages": 12})
    page = ui.goto(f"data/{slug}/{item['id']}")
    revisions = page.locator(".revisions li")
    revisions.nth(2).wait_for()
    assert revisions.count() == 3
    revisions.last.get_by_role("button").first.click()  # the oldest: "first draft"
    diff = page.locator(".diff")
    assert diff.locator("tr.changed", has_text="title").locator("td").all_inner_texts() == ["first draft", "final"]
    ui.shot("revisions")
    diff.get_by_role("button", name="Restore this revision").click()
    expect(page.locator("input[name=title]")).to_have_value("first draft")
    assert http.ok("GET", f"/api/items/{slug}/{item['id']}")["pages"] == 10


# -- access ----------------------------------------------------------------------------------

def test_a_role_with_a_row_filter_and_a_user_who_sees_only_their_rows(
        ui: Watched, http: Http, browser: Any, server: ServerProcess) -> None:
    slug, role, email = _unique("notes"), _unique("reader"), f"{_unique('bo')}@example.com"
    http.ok("POST", "/api/collections", {"collection": slug, "fields": [
        {"field": "text", "type": "string"}, {"field": "owner", "type": "string"}]})
    page = ui.goto("access/roles")
    page.get_by_label("Role name").fill(role)
    page.get_by_role("button", name="Create role").click()
    page.get_by_role("heading", name=role).wait_for()
    page.get_by_role("button", name=f"read on {slug}").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button", name="Add rule").click()
    dialog.get_by_label("Field", exact=True).select_option("owner")
    dialog.get_by_label("Operator", exact=True).select_option("_eq")
    dialog.get_by_label("Value", exact=True).fill("$CURRENT_USER")
    assert json.loads(dialog.get_by_test_id("filter-dsl").inner_text()) == {"owner": {"_eq": "$CURRENT_USER"}}
    ui.check_labels()
    ui.shot("permission-editor")
    dialog.get_by_role("button", name="Save").click()
    page.get_by_role("button", name=f"read on {slug}").get_by_text("filtered rows").wait_for()
    ui.shot("roles")

    page.get_by_role("link", name="Users").click()
    form = page.get_by_role("form", name="New user")
    form.get_by_label("Email").fill(email)
    form.get_by_label("Password").fill("another horse 7")
    form.get_by_label("Role").select_option(label=role)
    form.get_by_role("button", name="Create user").click()
    page.locator(f"tr[data-user='{email}']").wait_for()
    ui.shot("users")

    user = next(u for u in http.ok("GET", f"/api/users?search={email}") if u["email"] == email)
    http.ok("POST", f"/api/items/{slug}", [{"text": "mine 1", "owner": user["id"]}, {"text": "mine 2", "owner": user["id"]},
                                            {"text": "not mine", "owner": "someone-else"}])
    # The user signs in in a browser of their own and sees only their rows.
    context = browser.new_context()
    watched = Watched(context, server.url)
    own = watched.page
    own.goto(server.url + "/admin/")
    form = own.get_by_role("form", name="Sign in", exact=True)
    form.get_by_label("Email").fill(email)
    form.get_by_label("Password").fill("another horse 7")
    form.get_by_role("button", name="Sign in").click()
    nav = own.get_by_role("navigation", name="Sections")
    nav.wait_for()
    shown = nav.inner_text()
    assert "Flows" not in shown and "Webhooks" not in shown and "Functions" not in shown  # admin-only plugin pages
    assert "Files" not in shown  # bound to wos_files, which this role may not read
    own.goto(f"{server.url}/admin/#/data/{slug}")
    own.get_by_text("Page 1 of 1 · 2 items").wait_for()
    texts = " ".join(own.locator("tbody tr").all_inner_texts())
    assert "mine 1" in texts and "mine 2" in texts and "not mine" not in texts
    problems = watched.problems
    context.close()
    assert problems == []


def test_create_an_api_key_with_a_read_only_mcp_guard(ui: Watched, http: Http) -> None:
    name = _unique("agent")
    page = ui.goto("access/keys")
    form = page.get_by_role("form", name="New API key")
    form.get_by_label("Name").fill(name)
    form.get_by_label("Read-only").check()
    form.get_by_label("Allow only some MCP tools").check()
    form.get_by_label("collections_list").check()
    form.get_by_label("schema_list").check()
    form.get_by_role("button", name="Create key").click()
    key = page.get_by_test_id("new-key").inner_text()
    assert key.startswith("pak_")
    page.locator(f"tr[data-key='{name}']").wait_for()
    ui.check_labels()
    ui.shot("api-keys")
    row = next(k for k in http.ok("GET", "/api/api-keys") if k["name"] == name)
    assert row["mcp_read_only"] is True and sorted(row["mcp_tools"]) == ["collections_list", "schema_list"]
    # read-only on every way in: the key may read, not write
    status, _ = http.call("GET", "/api/users/me", token=key)
    assert status == 200
    status, payload = http.call("POST", "/api/collections", {"collection": _unique("nope")}, token=key)
    assert status == 403, payload


# -- plugin pages ----------------------------------------------------------------------------

def test_build_and_run_a_two_step_flow(ui: Watched, http: Http) -> None:
    name = _unique("greet")
    page = ui.goto("flows")
    page.get_by_label("Name").fill(name)
    page.get_by_role("button", name="Create flow").click()
    page.get_by_role("heading", name=name).wait_for()
    page.get_by_role("button", name="Add operation").click()
    page.get_by_role("button", name="Add operation").click()
    first, second = page.locator("fieldset.op").nth(0), page.locator("fieldset.op").nth(1)
    first.get_by_label("Key").fill("shape")
    first.get_by_label("Type").select_option("transform")
    first.get_by_label("Options (JSON)").fill('{"json": {"greeting": "hello {{ $trigger.payload.name }}"}}')
    second.get_by_label("Key").fill("say")
    second.get_by_label("Type").select_option("transform")
    second.get_by_label("Options (JSON)").fill('{"json": {"said": "{{ shape.greeting }}!"}}')
    assert first.get_by_label("Then (resolve)").input_value() == "say"
    page.locator("[data-node=shape]").wait_for()
    page.locator("path.resolve").wait_for()
    page.get_by_label("Payload (JSON)").fill('{"name": "Ada"}')
    page.get_by_role("button", name="Run now").click()
    result = page.get_by_test_id("flow-result")
    result.wait_for()
    assert json.loads(result.inner_text()) == {"said": "hello Ada!"}
    run = page.locator("details.run").first
    for _ in range(50):
        if run.locator("tr[data-step=say]").count():
            break
        page.get_by_role("button", name="Runs").click()
        page.wait_for_timeout(200)
    run.locator("tr[data-step=say]").wait_for()
    assert run.locator("tr[data-step=shape] .step-resolve").count() == 1
    assert "hello Ada" in run.locator("tr[data-step=shape]").inner_text()
    ui.check_labels()
    ui.shot("flows", full=True)
    flow = next(f for f in http.ok("GET", "/api/flows") if f["name"] == name)
    assert flow["start"] == "shape" and [o["key"] for o in flow["operations"]] == ["shape", "say"]


def test_webhook_deliveries_log(ui: Watched, http: Http) -> None:
    slug = _books(http)
    name = _unique("hook")
    page = ui.goto("webhooks")
    form = page.get_by_role("form", name="New webhook")
    form.get_by_label("Name").fill(name)
    form.get_by_label("URL").fill(f"http://127.0.0.1:{free_port()}/nobody-listens")
    form.get_by_label("Collections (comma-separated, empty = all)").fill(slug)
    form.get_by_role("button", name="Create webhook").click()
    page.get_by_role("link", name=name).click()
    http.ok("POST", f"/api/items/{slug}", {"title": "ping", "pages": 1})
    for _ in range(50):
        page.get_by_role("button", name="↻").click()
        if page.locator("tr[data-delivery]").count():
            break
        page.wait_for_timeout(200)
    row = page.locator("tr[data-delivery]").first
    assert "items.create" in row.inner_text()
    ui.shot("webhooks")


def test_activity_and_server_pages(ui: Watched, http: Http) -> None:
    page = ui.goto("activity")
    page.locator("tr[data-action]").first.wait_for()
    page.get_by_label("Action starts with").fill("auth.")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("tr[data-action]:not([data-action^='auth.'])")).to_have_count(0)
    assert page.locator("tr[data-action='auth.login']").count() >= 1
    ui.check_labels()
    ui.shot("activity")
    page = ui.goto("server")
    page.locator("tr[data-plugin=admin]").wait_for()
    assert "workeros_register_admin_pages" in page.locator("tr[data-plugin=flows]").inner_text()
    ui.shot("server")


def test_keyboard_reaches_the_skip_link_and_the_menu(ui: Watched) -> None:
    page = ui.goto("data")
    page.get_by_role("navigation", name="Sections").wait_for()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.reload()
    page.get_by_role("navigation", name="Sections").wait_for()
    for _ in range(8):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.getAttribute('href')") == "#/schema":
            break
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Schema").wait_for()


def _png(path: Path, size: tuple[int, int] = (320, 200), colour: tuple[int, int, int] = (200, 30, 60)) -> Path:
    from PIL import Image

    Image.new("RGB", size, colour).save(path, "PNG")
    return path


def _installed(http: Http, name: str) -> bool:
    return any(p["name"] == name for p in http.ok("GET", "/api/server/plugins")["plugins"])


def test_upload_an_image_and_see_its_thumbnail(ui: Watched, http: Http, tmp_path: Path) -> None:
    if not _installed(http, "files"):
        pytest.skip("the files plugin is not installed")
    folder = _unique("photos")
    image = _png(tmp_path / f"{_unique('sunset')}.png")
    # Over the resumable threshold (8 MiB): sent through TUS in parts.
    big = tmp_path / f"{_unique('archive')}.bin"
    big.write_bytes(os.urandom(9 * 1024 * 1024 + 123))
    page = ui.goto("files")
    form = page.get_by_role("form", name="New folder")
    form.get_by_label("New folder").fill(folder)
    form.get_by_role("button", name="Create folder").click()
    page.get_by_role("link", name=folder).click()
    # the page opened on the folder (uploads then go into it)
    expect(page.get_by_role("link", name=folder)).to_have_attribute("aria-current", "page")
    page.set_input_files("#file-upload", [str(image), str(big)])
    uploads = page.get_by_role("list", name="Uploads")
    expect(uploads.locator(f"li[data-upload='{big.name}']")).to_contain_text("resumable")
    expect(uploads.get_by_text("Uploaded.")).to_have_count(2, timeout=60000)
    tile = page.locator(f"li[data-file='{image.name}']")
    thumb = tile.locator("img.thumb")
    thumb.wait_for()
    # The thumbnail is the transform URL's answer, decoded by the browser.
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumb.element_handle())
    assert thumb.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [160, 160]
    assert thumb.get_attribute("src").startswith("blob:")
    ui.check_labels()
    ui.shot("files")
    rows = {f["filename_download"]: f for f in http.ok("GET", "/api/files?limit=-1")}
    assert rows[image.name]["type"] == "image/png" and rows[image.name]["width"] == 320
    assert rows[big.name]["filesize"] == big.stat().st_size
    import hashlib
    assert rows[big.name]["checksum"] == "sha256:" + hashlib.sha256(big.read_bytes()).hexdigest()
    folder_id = next(f["id"] for f in http.ok("GET", "/api/folders?limit=-1") if f["name"] == folder)
    assert rows[image.name]["folder"] == folder_id and rows[big.name]["folder"] == folder_id
    # Details: retitle the image; the API's answer is what the library shows.
    tile.get_by_role("button").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Title").fill("Evening sky")
    dialog.get_by_role("button", name="Save").click()
    page.locator(f"li[data-file='{image.name}']", has_text="Evening sky").wait_for()
    assert http.ok("GET", f"/api/files/{rows[image.name]['id']}")["title"] == "Evening sky"


def test_item_editor_uploads_a_file_and_edits_o2m_and_m2m(ui: Watched, http: Http, tmp_path: Path) -> None:
    if not _installed(http, "files"):
        pytest.skip("the files plugin is not installed")
    authors, books, tags = _unique("authors"), _unique("books"), _unique("tags")
    http.ok("POST", "/api/collections", {"collection": authors, "fields": [{"field": "name", "type": "string"}]})
    http.ok("POST", "/api/collections", {"collection": tags, "fields": [{"field": "label", "type": "string"}]})
    http.ok("POST", "/api/collections", {"collection": books, "fields": [
        {"field": "title", "type": "string"}, {"field": "cover", "type": "file"}]})
    # books.author (m2o) with its other side, authors.books (o2m)
    http.ok("POST", "/api/relations", {"collection": books, "field": "author", "related_collection": authors,
                                       "one_field": "books"})
    http.ok("POST", "/api/relations", {"kind": "m2m", "collection": books, "field": "tags", "related_collection": tags})
    ada = http.ok("POST", f"/api/items/{authors}", {"name": "Ada"})
    book = http.ok("POST", f"/api/items/{books}", {"title": "Notes"})
    other = http.ok("POST", f"/api/items/{books}", {"title": "Sketches"})
    maths, _ = http.ok("POST", f"/api/items/{tags}", [{"label": "maths"}, {"label": "history"}])

    page = ui.goto(f"data/{books}/{book['id']}")
    cover = page.locator("fieldset[data-file-field=cover]")
    cover.get_by_label("Upload a file").set_input_files(str(_png(tmp_path / "cover.png", (64, 48))))
    thumb = cover.locator("img.thumb")
    thumb.wait_for()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumb.element_handle())
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Saved.").wait_for()
    saved = http.ok("GET", f"/api/items/{books}/{book['id']}?fields=cover.filename_download,cover.width")
    assert saved["cover"] == {"filename_download": "cover.png", "width": 64}
    # many-to-many: link a tag, through a junction row
    tagging = page.locator("fieldset[data-relation=tags]")
    tagging.get_by_label("Link an item to tags").select_option(label=f"maths (#{maths['id']})")
    tagging.get_by_role("button", name="Link", exact=True).click()
    tagging.locator("li", has_text="maths").wait_for()
    ui.check_labels()
    ui.shot("item-editor-relations", full=True)
    linked = http.ok("GET", f"/api/items/{books}/{book['id']}?fields=tags.*")["tags"]
    assert len(linked) == 1
    # one-to-many, from the author: link both books, then unlink one
    page.goto(f"{ui.base}/admin/#/data/{authors}/{ada['id']}")
    written = page.locator("fieldset[data-relation=books]")
    for title, row in (("Notes", book), ("Sketches", other)):
        written.get_by_label("Link an item to books").select_option(label=f"{title} (#{row['id']})")
        written.get_by_role("button", name="Link", exact=True).click()
        written.locator("li", has_text=title).wait_for()
    written.locator("li", has_text="Sketches").get_by_role("button", name=re.compile("^Unlink")).click()
    expect(written.locator("li[data-related]")).to_have_count(1)
    assert http.ok("GET", f"/api/items/{books}/{book['id']}")["author"] == ada["id"]
    assert http.ok("GET", f"/api/items/{books}/{other['id']}")["author"] is None


def test_functions_editor_run_and_logs(ui: Watched, http: Http) -> None:
    if not _installed(http, "functions"):
        pytest.skip("the functions plugin is not installed")
    name = _unique("greet").replace("_", "-")
    page = ui.goto("functions")
    form = page.get_by_role("form", name="New function")
    form.get_by_label("Function name").fill(name)
    form.get_by_role("button", name="Create function").click()
    page.get_by_role("heading", name=re.compile(f"^{name}")).wait_for()
    code = page.get_by_label("Code")
    # A syntax error is refused with the line, shown beside the code; nothing is saved.
    code.fill("export default async function (req, ctx) {\n  return {;\n}\n")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".field.code .field-error")).to_contain_text("Line 2")
    assert "return {;" not in http.ok("GET", f"/api/functions/{name}")["code"]
    code.fill("export default async function (req, ctx) {\n"
              "  ctx.log('greeting', req.body.name);\n"
              "  if (req.body.name === 'nobody') throw new Error('no one to greet');\n"
              "  return { greeting: `hello ${req.body.name}`, method: req.method, q: req.query.x ?? null };\n}\n")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Saved.").wait_for()
    run = page.get_by_role("form", name="Run with a sample request")
    run.get_by_label("Query string").fill("x=1")
    run.get_by_label("Body (JSON)").fill('{"name": "Ada"}')
    run.get_by_role("button", name="Run", exact=True).click()
    result = page.get_by_test_id("function-result")
    result.wait_for()
    assert json.loads(result.inner_text()) == {"greeting": "hello Ada", "method": "POST", "q": "1"}
    log = page.locator("tr[data-status=ok]").first
    for _ in range(50):  # the log row is written as the call ends, beside its answer
        if log.count():
            break
        page.get_by_role("button", name="Refresh logs").click()
        page.wait_for_timeout(200)
    assert "greeting Ada" in log.inner_text()
    # A throw is the API's FUNCTION_ERROR (502), shown as its message.
    ui.expect_status(502, f"/api/functions/{name}/run")
    run.get_by_label("Body (JSON)").fill('{"name": "nobody"}')
    run.get_by_role("button", name="Run", exact=True).click()
    expect(run.get_by_role("alert")).to_contain_text("no one to greet")
    for _ in range(50):
        if page.locator("tr[data-status=error]").count():
            break
        page.get_by_role("button", name="Refresh logs").click()
        page.wait_for_timeout(200)
    page.locator("tr[data-status=error]").first.wait_for()
    ui.check_labels()
    ui.shot("functions", full=True)


def test_ask_ai_shows_the_plan_then_runs_or_rejects_it(ui: Watched, http: Http, fake_model: Any) -> None:
    if not _installed(http, "ai"):
        pytest.skip("the ai plugin is not installed")
    slug = _books(http, [{"title": "Dune", "pages": 412}, {"title": "Emma", "pages": 90}, {"title": "Ulysses", "pages": 730}])
    fake_model.reset()
    fake_model.answer({"plan": {"collection": slug, "filter": {"pages": {"_gt": 100}}, "sort": ["-pages"],
                                "fields": ["title", "pages"]}, "explanation": "Books longer than 100 pages, longest first."})
    page = ui.goto("ai")
    page.get_by_label("Question", exact=True).fill("Which books have more than 100 pages?")
    page.get_by_label("Collection", exact=True).select_option(slug)
    page.get_by_role("button", name="Show the plan").click()
    plan = page.get_by_test_id("ai-plan")
    plan.wait_for()
    assert page.get_by_test_id("plan-collection").inner_text() == slug
    assert json.loads(page.get_by_test_id("plan-filter").inner_text()) == {"pages": {"_gt": 100}}
    assert "longest first" in plan.inner_text()
    assert page.get_by_test_id("ai-rows").count() == 0  # nothing read before the user runs it
    sent = fake_model.requests[-1]["body"]["messages"]
    assert sent == [{"role": "user", "content": "Which books have more than 100 pages?"}]
    ui.check_labels()
    ui.shot("ask-ai")
    plan.get_by_role("button", name="Run the plan").click()
    rows = page.get_by_test_id("ai-rows")
    rows.wait_for()
    assert rows.locator("tbody tr td:first-child").all_inner_texts() == ["Ulysses", "Dune"]
    # A second question: rejected, nothing is read.
    fake_model.answer({"plan": {"collection": slug}, "explanation": "All books."})
    page.get_by_role("button", name="Show the plan").click()
    page.get_by_test_id("ai-plan").wait_for()
    page.get_by_role("button", name="Reject").click()
    page.get_by_text("The plan was rejected; nothing was read.").wait_for()
    assert page.get_by_test_id("ai-plan").count() == 0 and page.get_by_test_id("ai-rows").count() == 0
    # The model failing is the API's error, readable in the page.
    from tests.plugins.ai.conftest import Status

    fake_model.answer(Status(500))
    ui.expect_status(502, "/api/ai/query")
    page.get_by_role("button", name="Show the plan").click()
    alert = page.locator("section[aria-labelledby=ai-title] > .error[role=alert]")
    alert.wait_for()
    assert alert.inner_text().strip()
    fake_model.reset()
