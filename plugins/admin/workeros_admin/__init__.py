"""The admin app at ``/admin`` (DESIGN §6 "Admin app").

A no-build single-page app: ES modules, Preact and htm vendored in ``static/vendor``
with their licences, one translation catalogue (``static/i18n/en.json``). The app
talks to the server only through the public API (REST, realtime), so it can do no
more than the signed-in user may.

The app is assembled from pages registered through ``workeros_register_admin_pages``
— this plugin registers the core ones (sign-in, schema, data, access, activity,
server) the same way a third-party plugin registers its own. Each page's module is
imported only when the page is first opened. See ``docs/admin.md``.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import json
import mimetypes
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from workeros.api import PLUGINS, NotFound, StartupError
from workeros.hookspecs import hookimpl
from workeros.hookspecs.admin import AdminPage
from workeros.hookspecs.transport import Transport

STATIC = Path(__file__).parent / "static"
PAGES = STATIC / "pages"
PAGES_KEY: web.AppKey[dict[str, AdminPage]] = web.AppKey("workeros_admin.pages", dict)
INDEX_KEY: web.AppKey[tuple[str, str]] = web.AppKey("workeros_admin.index", tuple)
FILES_KEY: web.AppKey[dict[Path, Any]] = web.AppKey("workeros_admin.files", dict)

CORE_PAGES = [
    AdminPage("data", "nav.data", str(PAGES / "data.js"), icon="table", order=10),
    AdminPage("schema", "nav.schema", str(PAGES / "schema.js"), icon="schema", order=20),
    AdminPage("access", "nav.access", str(PAGES / "access.js"), icon="lock", order=30),
    AdminPage("activity", "nav.activity", str(PAGES / "activity.js"), icon="list", order=80),
    AdminPage("server", "nav.server", str(PAGES / "server.js"), icon="info", order=90),
]

# Bare specifiers a page may import; "workeros-admin" is the app's own kit
# (API client, translations, shared components).
IMPORTS = {
    "preact": "/admin/static/vendor/preact.mjs",
    "preact/hooks": "/admin/static/vendor/preact-hooks.mjs",
    "htm": "/admin/static/vendor/htm.mjs",
    "workeros-admin": "/admin/static/kit.js",
}
# Fetched in parallel with the document; the sign-in page is small and what a
# first visit shows, so it is preloaded too.
PRELOAD = [*IMPORTS.values(), "/admin/static/app.js", "/admin/static/pages/signin.js"]
PAGE_NAME = re.compile(r"[a-z][a-z0-9_-]{0,63}")
CACHE_LIMIT = 1 << 20  # files up to 1 MiB are kept in memory (gzipped when text)
TEXT = ("text/", "application/json", "application/javascript", "image/svg+xml")

mimetypes.add_type("text/javascript", ".mjs")
mimetypes.add_type("text/javascript", ".js")


def collect_pages(plugins: Any) -> dict[str, AdminPage]:
    """Every page, by name; two plugins naming one page is a startup error."""
    pages: dict[str, AdminPage] = {}
    owners: dict[str, str] = {}
    for info, entries in plugins.collect("workeros_register_admin_pages"):
        for page in entries or ():
            if not isinstance(page, AdminPage):
                raise StartupError(f"plugin {info.name} returned {page!r} from workeros_register_admin_pages, "
                                   "not an AdminPage")
            if page.name in pages:
                raise StartupError(f"admin page {page.name!r} is registered by both {owners[page.name]} and {info.name}")
            if not PAGE_NAME.fullmatch(page.name):
                raise StartupError(f"admin page name {page.name!r} of {info.name} must be letters, digits, - or _ "
                                   "(starting with a letter, at most 64)")
            if not Path(page.module).is_file():
                raise StartupError(f"admin page {page.name!r} of {info.name}: module {page.module} does not exist")
            pages[page.name] = page
            owners[page.name] = info.name
    return pages


def page_entries(pages: dict[str, AdminPage]) -> list[dict[str, Any]]:
    return [
        {"name": p.name, "title": p.title, "icon": p.icon, "order": p.order, "collection": p.collection,
         "admin_only": p.admin_only,
         "module": f"/admin/pages/{p.name}/{Path(p.module).name}"}
        for p in sorted(pages.values(), key=lambda p: (p.order, p.name))
    ]


def render_index(pages: dict[str, AdminPage]) -> tuple[str, str]:
    """The one HTML document, and its Content-Security-Policy (the inline import
    map is allowed by its hash; nothing else inline runs)."""
    import_map = json.dumps({"imports": IMPORTS})
    digest = base64.b64encode(hashlib.sha256(import_map.encode()).digest()).decode()
    # The page list is data, not script: JSON in a non-executed block, with the
    # characters that could end the block escaped the JSON way.
    data = json.dumps(page_entries(pages)).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    preload = "\n".join(f'<link rel="modulepreload" href="{url}">' for url in PRELOAD)
    body = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>workeros admin</title>
<link rel="stylesheet" href="/admin/static/app.css">
<link rel="icon" href="data:,">
<script type="importmap">{import_map}</script>
{preload}
<link rel="preload" href="/admin/static/i18n/en.json" as="fetch" crossorigin>
</head>
<body>
<div id="app" aria-live="polite"><noscript>The admin app needs JavaScript.</noscript></div>
<script type="application/json" id="wos-pages">{data}</script>
<script type="module" src="/admin/static/app.js"></script>
</body>
</html>
"""
    csp = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
           f"script-src 'self' 'sha256-{digest}'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
           "form-action 'self'; object-src 'none'")
    return body, csp


def _safe_file(root: Path, rel: str) -> Path:
    target = (root / rel).resolve()
    if root.resolve() not in target.parents or not target.is_file():
        raise NotFound("no such file")
    return target


@dataclass(frozen=True)
class Loaded:
    body: bytes
    gzipped: bytes | None
    etag: str
    content_type: str


def _load(path: Path) -> Loaded | None:
    if path.stat().st_size > CACHE_LIMIT:
        return None
    body = path.read_bytes()
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    gzipped = gzip.compress(body, 9, mtime=0) if content_type.startswith(TEXT) and len(body) > 256 else None
    return Loaded(body, gzipped, '"' + hashlib.sha256(body).hexdigest()[:20] + '"', content_type)


async def _file(request: web.Request, path: Path) -> web.StreamResponse:
    """A file of the app or of a page: from memory after the first read (the
    files are the installed package's), revalidated by ETag on every load (so an
    upgraded server is never run with a stale module), gzipped when asked."""
    cache = request.app[FILES_KEY]
    loaded = cache.get(path)
    if loaded is None:
        loaded = await asyncio.get_running_loop().run_in_executor(None, _load, path)
        if loaded is None:
            response = web.FileResponse(path)
            response.headers.update({"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})
            return response
        cache[path] = loaded
    headers = {"Cache-Control": "no-cache", "ETag": loaded.etag, "X-Content-Type-Options": "nosniff",
               "Vary": "Accept-Encoding"}
    if request.headers.get("If-None-Match") == loaded.etag:
        return web.Response(status=304, headers=headers)
    body = loaded.body
    if loaded.gzipped is not None and "gzip" in request.headers.get("Accept-Encoding", ""):
        body = loaded.gzipped
        headers["Content-Encoding"] = "gzip"
    return web.Response(body=body, content_type=loaded.content_type, headers=headers)


async def index(request: web.Request) -> web.Response:
    body, csp = request.app[INDEX_KEY]
    return web.Response(text=body, content_type="text/html", headers={
        "Content-Security-Policy": csp, "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY"})


async def redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound("/admin/")


async def static(request: web.Request) -> web.StreamResponse:
    return await _file(request, _safe_file(STATIC, request.match_info["path"]))


async def page_file(request: web.Request) -> web.StreamResponse:
    page = request.app[PAGES_KEY].get(request.match_info["name"])
    if page is None:
        raise NotFound("no such admin page")
    return await _file(request, _safe_file(Path(page.module).parent, request.match_info["path"]))


async def pages_json(request: web.Request) -> web.Response:
    return web.json_response({"data": page_entries(request.app[PAGES_KEY])})


def build(root: web.Application) -> web.Application:
    app = web.Application()
    pages = collect_pages(root[PLUGINS])
    app[PAGES_KEY] = pages
    app[INDEX_KEY] = render_index(pages)
    app[FILES_KEY] = {}
    app.router.add_get("", redirect)
    app.router.add_get("/", index)
    app.router.add_get("/pages.json", pages_json)
    app.router.add_get("/static/{path:.+}", static)
    app.router.add_get("/pages/{name}/{path:.+}", page_file)
    return app


@hookimpl
def workeros_register_transports() -> list[Transport]:
    return [Transport(name="admin", prefix="/admin", factory=build,
                      description="The admin app (static files; it uses the public API)")]


@hookimpl
def workeros_register_admin_pages() -> list[AdminPage]:
    return CORE_PAGES
