"""Assets through the ASGI adapter: there is no socket to ``sendfile`` to, so
a file on local storage goes through the response writer instead (whole, a
range, and a transformed image), with the same headers."""

from __future__ import annotations

import io
from typing import Any

import aiohttp
from callers import Api, TestCallers
from conftest import asgi_app  # tests/contrib/asgi/conftest.py


def _png(width: int, height: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 90)).save(out, "PNG")
    return out.getvalue()


async def test_local_assets_without_a_socket(wos_settings: Any) -> None:
    from PIL import Image

    async with asgi_app(wos_settings, TestCallers(), **{"storage.backend": "fs"}) as (_app, url), \
            aiohttp.ClientSession(base_url=url) as session:
        admin = Api(session).as_admin()
        blob = bytes(range(256)) * 2000  # more than one read of the writer's loop
        form = aiohttp.FormData()
        form.add_field("file", blob, filename="blob.bin", content_type="application/octet-stream")
        row = (await admin.post("/api/files", data=form)).data
        whole = await admin.get(f"/api/assets/{row['id']}")
        assert whole.status == 200 and whole.raw == blob
        assert whole.headers["X-Content-Type-Options"] == "nosniff"
        assert whole.headers["Content-Disposition"].startswith("attachment")
        part = await admin.get(f"/api/assets/{row['id']}", headers={"Range": "bytes=1000-300999"})
        assert part.status == 206 and part.raw == blob[1000:301000]
        assert (await admin.get(f"/api/assets/{row['id']}",
                                headers={"If-None-Match": whole.headers["ETag"]})).status == 304

        form = aiohttp.FormData()
        form.add_field("file", _png(60, 40), filename="p.png", content_type="image/png")
        image = (await admin.post("/api/files", data=form)).data
        small = await admin.get(f"/api/assets/{image['id']}", params={"width": "30"})
        assert small.status == 200 and Image.open(io.BytesIO(small.raw)).size == (30, 20)
