"""The admin app in Chromium (Debian's, through Playwright) against ``workeros
serve`` on loopback (SQLite):

- first render of ``/admin`` in a fresh browser context (empty cache): from
  navigation to the sign-in form on screen, and, signed in, to the menu and the
  first page; with the bytes transferred for that first load;
- a 100-row data view: from choosing 100 rows per page to the 100 rows on screen.

Baselines, same run: a minimal HTML page from a bare aiohttp app on loopback in
the same browser (navigation cost without the app), and the same 100-row query
as a bare ``fetch`` inside the page (the API's share). Targets: under 1 s and
under 300 ms.
"""

from __future__ import annotations

import json
import socket
import subprocess
import tempfile
import time
import urllib.request
from typing import Any

from bench.common import PYTHON, clean_env, median_of, report, wait_http_ok

CHROMIUM = "/usr/bin/chromium"
BARE_PAGE = """
import sys
from aiohttp import web
async def page(request):
    return web.Response(text="<!doctype html><title>x</title><p id=ready>ready</p>", content_type="text/html")
app = web.Application()
app.router.add_get("/", page)
app.router.add_get("/api/server/health", page)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _call(base: str, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    request = urllib.request.Request(base + path, method=method, headers=headers,
                                     data=None if body is None else json.dumps(body).encode())
    with urllib.request.urlopen(request, timeout=30) as r:
        raw = r.read()
    return json.loads(raw)["data"] if raw else None


# Measured inside the page (navigation start to the element in the DOM), so the
# driver's own round trips are not counted.
WATCH = """(selector) => { const seen = () => { if (document.querySelector(selector)) {
    window.__rendered = performance.now() / 1000; observer.disconnect(); } };
  const observer = new MutationObserver(seen);
  observer.observe(document, {childList: true, subtree: true}); }"""


def _watch(context: Any, selector: str) -> None:
    context.add_init_script(f"({WATCH})({json.dumps(selector)})")


def _rendered(page: Any) -> float:
    for _ in range(3000):
        value = page.evaluate("window.__rendered")
        if value is not None:
            return value
        time.sleep(0.01)
    raise RuntimeError("never rendered")


def _transferred(page: Any) -> int:
    return page.evaluate("""() => performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))
        .reduce((n, e) => n + (e.transferSize || 0), 0)""")


def run(quick: bool = False) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    runs = 3 if quick else 9
    port, bare_port = _port(), _port()
    data = tempfile.mkdtemp(prefix="wos-bench-admin-")
    env = clean_env(WORKEROS_RATELIMIT_LOGIN_PER_ACCOUNT="0", WORKEROS_RATELIMIT_LOGIN_PER_IP="0")
    server = subprocess.Popen([PYTHON, "-m", "workeros", "--data-dir", data, "serve", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    bare = subprocess.Popen([PYTHON, "-c", BARE_PAGE, str(bare_port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=clean_env())
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http_ok(base + "/api/server/health", server, timeout=120)
        wait_http_ok(f"http://127.0.0.1:{bare_port}/api/server/health", bare)
        _call(base, "POST", "/api/auth/sign-up", {"email": "bench@example.com", "password": "correct horse 42"})
        tokens = _call(base, "POST", "/api/auth/login",
                       {"email": "bench@example.com", "password": "correct horse 42", "mode": "json"})
        token = tokens["access_token"]
        _call(base, "POST", "/api/collections", {"collection": "rows", "fields": [
            {"field": "title", "type": "string"}, {"field": "body", "type": "text"},
            {"field": "score", "type": "integer"}, {"field": "done", "type": "boolean"}]}, token)
        _call(base, "POST", "/api/items/rows", [{"title": f"row {i}", "body": "lorem ipsum " * 8, "score": i,
                                                 "done": i % 2 == 0} for i in range(250)], token)
        seed = json.dumps({"access_token": token, "refresh_token": tokens["refresh_token"]})

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM)

            def bare_render() -> float:
                context = browser.new_context()
                _watch(context, "#ready")
                page = context.new_page()
                page.goto(f"http://127.0.0.1:{bare_port}/")
                elapsed = _rendered(page)
                context.close()
                return elapsed

            sizes: list[int] = []

            def first_render() -> float:
                context = browser.new_context()
                _watch(context, 'form[aria-label="Sign in"] button[type=submit]')
                page = context.new_page()
                page.goto(base + "/admin/")
                elapsed = _rendered(page)
                page.wait_for_load_state("networkidle")
                sizes.append(_transferred(page))
                context.close()
                return elapsed

            def signed_in_render() -> float:
                context = browser.new_context()
                context.add_init_script(
                    f"localStorage.setItem('workeros.admin.session', JSON.stringify({{...{seed}, until: Date.now() + 600000}}))")
                _watch(context, "tbody tr:nth-child(25)")
                page = context.new_page()
                page.goto(base + "/admin/#/data/rows")
                elapsed = _rendered(page)
                context.close()
                return elapsed

            context = browser.new_context()
            context.add_init_script(
                f"localStorage.setItem('workeros.admin.session', JSON.stringify({{...{seed}, until: Date.now() + 600000}}))")
            page = context.new_page()
            page.goto(base + "/admin/#/data/rows")
            page.locator("tbody tr").nth(24).wait_for()

            def hundred_rows() -> float:
                page.get_by_label("Per page").select_option("25")
                page.locator("tbody tr").nth(25).wait_for(state="detached")
                # choose 100 per page inside the page and time until the 100th row is in the DOM
                return page.evaluate("""() => new Promise((done) => {
                    const select = [...document.querySelectorAll('select')].find((s) => s.labels[0]?.textContent === 'Per page');
                    const t0 = performance.now();
                    const observer = new MutationObserver(() => {
                      if (document.querySelector('tbody tr:nth-child(100)')) { observer.disconnect(); done((performance.now() - t0) / 1000); } });
                    observer.observe(document.body, {childList: true, subtree: true});
                    select.value = '100'; select.dispatchEvent(new Event('change', {bubbles: true})); })""")

            def hundred_rows_fetch() -> float:
                return page.evaluate("""async () => { const t0 = performance.now();
                    const s = JSON.parse(localStorage.getItem('workeros.admin.session'));
                    const r = await fetch('/api/items/rows?limit=100&page=1&fields=id,title,body,score,done&meta=filter_count',
                      {headers: {Authorization: 'Bearer ' + s.access_token}});
                    await r.json(); return (performance.now() - t0) / 1000; }""")

            bare_s, _ = median_of(bare_render, runs)
            first_s, _ = median_of(first_render, runs)
            signed_s, _ = median_of(signed_in_render, runs)
            rows_s, _ = median_of(hundred_rows, runs)
            fetch_s, _ = median_of(hundred_rows_fetch, runs)
            context.close()
            browser.close()
        size = sorted(sizes)[len(sizes) // 2]
        print(f"  first load transferred                        {size / 1024:8.1f} KiB")
        return {
            "first_render": report("first render of /admin, sign-in form (median)", first_s, bare_s),
            "first_render_signed_in": report("first render signed in, data page (median)", signed_s, bare_s),
            "data_view_100_rows": report("100-row data view (median)", rows_s, fetch_s),
            "first_load_bytes": size,
            "targets": {"first_render_s": 1.0, "data_view_100_rows_s": 0.3},
        }
    finally:
        for proc in (server, bare):
            proc.terminate()
            proc.wait(30)
