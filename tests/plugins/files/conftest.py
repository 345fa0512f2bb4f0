"""Fixtures of the files suite: the app on each dialect and each storage
backend (``fs``, and ``s3`` against a real S3 endpoint — moto's server mode on
loopback, one per test session worker), images made with Pillow."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from callers import Api, TestCallers

from workeros.api import SERVICES

BUCKET = "wos-test"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3 endpoint: moto's threaded server on a free loopback port."""
    pytest.importorskip("aiobotocore")
    pytest.importorskip("moto.server")
    from tests.e2e.instances import moto_s3

    with moto_s3() as endpoint:
        yield endpoint


def s3_settings(endpoint: str, bucket: str) -> dict[str, Any]:
    return {"storage.backend": "s3", "s3.endpoint_url": endpoint, "s3.bucket": bucket, "s3.region": "us-east-1",
            "s3.access_key_id": "testing", "s3.secret_access_key": "testing", "s3.create_bucket": True,
            "s3.part_size": 5 * 1024 * 1024}


@pytest.fixture(params=["fs", "s3"])
def storage_settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param == "fs":
        return {"storage.backend": "fs"}
    endpoint = request.getfixturevalue("s3_endpoint")
    import uuid

    return s3_settings(endpoint, f"{BUCKET}-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def booted(make_server: Callable[..., Any], storage_settings: dict[str, Any]) -> Callable[..., Any]:
    """``async with booted(**settings) as (admin, services)``: the app with the
    test's storage backend; ``admin.client`` makes other callers."""

    @asynccontextmanager
    async def run(*plugins: Any, **settings: Any) -> AsyncIterator[tuple[Api, Any]]:
        async with make_server(TestCallers(), *plugins, **{"network.allow_private": True, **storage_settings,
                                                             **settings}) as server, \
                TestClient(server) as client:
            yield Api(client).as_admin(), server.app[SERVICES]

    return run


def jpeg(width: int = 640, height: int = 480, quality: int = 90) -> bytes:
    from PIL import Image

    image = Image.new("RGB", (width, height))
    # Not a flat colour: a gradient, so encoders and resamplers have work to do.
    pixels = image.load()
    for x in range(0, width, 4):
        for y in range(0, height, 4):
            for dx in range(min(4, width - x)):
                for dy in range(min(4, height - y)):
                    pixels[x + dx, y + dy] = (x * 255 // width, y * 255 // height, 128)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def png(width: int = 64, height: int = 32, mode: str = "RGBA") -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new(mode, (width, height), (10, 200, 30, 255) if mode == "RGBA" else 128).save(out, "PNG")
    return out.getvalue()


async def upload(api: Api, data: bytes, filename: str = "photo.jpg", content_type: str = "image/png",
                 **fields: str) -> Any:
    import aiohttp

    form = aiohttp.FormData()
    for name, value in fields.items():
        form.add_field(name, value)
    form.add_field("file", data, filename=filename, content_type=content_type)
    return await api.post("/api/files", data=form)
