"""Admin app pages contributed by plugins.

The admin app (``/admin``) is assembled from pages: the kernel's own (schema,
data, access, activity) and one or more per installed plugin (files, flows,
functions…), so installing a plugin adds its page and removing it takes the
page away. A page is an ES module the app loads lazily when the page is opened;
it talks to the server only through the public API, so it can do no more than
the signed-in user may.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from . import hookspec


@dataclass(frozen=True)
class AdminPage:
    """One page of the admin app.

    ``name``
        URL segment and id (``files`` is ``/admin/#/files``); unique.
    ``title``
        Menu label (a key of the app's translation catalogue, or plain text).
    ``module``
        File path of the page's ES module; served at
        ``/admin/pages/<name>/<file name>`` with every file beside it, and
        imported when the page is first opened.
    ``icon``
        Name of an icon in the app's icon set.
    ``order``
        Menu position (lower first).
    ``collection``
        If set, the page appears only to callers who may read this collection
        (``wos_files`` for the files library).
    ``admin_only``
        The page appears only to administrators (for pages over admin-only
        endpoints such as ``/api/webhooks``).

    A page module's default export is called as ``mount(element, ctx)`` when the
    page opens (``ctx.params``: the URL segments after the page's name,
    ``ctx.me``: the signed-in user) and may return a function that unmounts it.
    Inside, ``import {html, api, t, page} from "workeros-admin"`` gives the app's
    kit (Preact with htm, the API client, the translation function, shared
    components); ``export default page(MyComponent)`` mounts a Preact component.
    See ``docs/admin.md``.
    """

    name: str
    title: str
    module: str
    icon: str | None = None
    order: int = 100
    collection: str | None = None
    admin_only: bool = False


@hookspec
def workeros_register_admin_pages() -> Sequence[AdminPage]:
    """Contribute pages to the admin app.

    Called once per boot by the admin plugin (when it is installed), while the
    app is built. Two pages with one name, a name that is not lower-case letters, digits,
    ``-`` and ``_``, or a module file that does not exist is a startup error
    naming the plugin.

    :return: pages. Not firstresult.

    .. versionadded:: 0.2

    Example::

        @hookimpl
        def workeros_register_admin_pages():
            return [AdminPage("hello", "Hello", str(Path(__file__).parent / "admin" / "hello.js"))]
    """
