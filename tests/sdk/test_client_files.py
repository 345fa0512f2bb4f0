"""The Python client's files, functions and AI calls against a real ``workeros
serve`` on each dialect: a multipart upload with progress, a TUS upload in
pieces (and one resumed after an interruption), asset URLs with transform
parameters, a function invoked with a body and a query, and an AI query whose
model is the fake Messages API server of the AI plugin's tests (a real HTTP
server on loopback)."""

from __future__ import annotations

import io
from collections.abc import Iterator

import aiohttp
import pytest
from served import DIALECTS, call, serving

from tests.plugins.ai.conftest import API_KEY, FakeAnthropic
from workeros.sdk.client import Workeros, WorkerosError
from workeros.sdk.testing import ServerProcess

EMAIL, PASSWORD = "files-admin@example.com", "correct horse 1"


@pytest.fixture(scope="module")
def fake_model() -> Iterator[FakeAnthropic]:
    with FakeAnthropic.running() as server:
        yield server


@pytest.fixture(scope="module", params=DIALECTS)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           fake_model: FakeAnthropic) -> Iterator[ServerProcess]:
    env = {"WORKEROS_AI_API_KEY": API_KEY, "WORKEROS_AI_BASE_URL": fake_model.url, "WORKEROS_AI_MAX_RETRIES": "0",
           "WORKEROS_AUTH_ACCESS_TOKEN_TTL": "600", "WORKEROS_ADMIN_EMAIL": EMAIL,
           "WORKEROS_ADMIN_PASSWORD": PASSWORD}
    with serving(request.param, tmp_path_factory.mktemp(f"files-{request.param}"), env) as served:
        token = call(served, "POST", "/api/auth/login", {"email": EMAIL, "password": PASSWORD, "mode": "json"})
        served.token = token["access_token"]  # type: ignore[attr-defined]
        yield served


def png(width: int = 64, height: int = 48) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


async def test_upload_with_progress_and_asset_transforms(server: ServerProcess) -> None:
    seen: list[tuple[int, int]] = []
    image = png()
    async with Workeros(server.url, token=server.token) as wos:
        row = await wos.upload(image, filename="red.png", title="Red", content_type="image/png",
                               progress=lambda sent, total: seen.append((sent, total)))
        assert row["title"] == "Red" and row["filename_download"] == "red.png" and int(row["filesize"]) == len(image)
        assert seen and seen[-1] == (len(image), len(image))
        assert [s for s, _ in seen] == sorted(s for s, _ in seen)

        url = wos.asset_url(row["id"], width=16, height=12, fit="cover", format="webp", quality=None)
        assert "quality" not in url and "width=16" in url
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {server.token}"}) as http:
            async with http.get(url) as response:
                assert response.status == 200 and response.content_type == "image/webp"
                from PIL import Image

                assert Image.open(io.BytesIO(await response.read())).size == (16, 12)
            async with http.get(wos.asset_url(row["id"])) as response:
                assert await response.read() == image
        plain = await wos.upload(b"no progress asked", filename="a.txt")
        assert int(plain["filesize"]) == 17
        with pytest.raises(WorkerosError) as bad:
            await wos.upload(b"x", filename="x.txt", folder="not-a-folder-id")
        assert bad.value.status == 400 and bad.value.code == "INVALID_PAYLOAD"


async def test_tus_upload_in_pieces_and_resumed(server: ServerProcess) -> None:
    content = bytes(range(256)) * 4096  # 1 MiB
    seen: list[int] = []
    async with Workeros(server.url, token=server.token) as wos:
        row = await wos.upload_tus(content, filename="big.bin", chunk_size=256 * 1024,
                                   progress=lambda sent, total: seen.append(sent))
        assert seen == [256 * 1024 * i for i in range(1, 5)]
        assert int(row["filesize"]) == len(content) and row["filename_download"] == "big.bin"
        assert await wos.request("GET", f"/api/assets/{row['id']}", raw=True) == content

        # An interrupted upload: the first piece went out, then the client stopped.
        created: list[str] = []

        def stop_after_one_piece(sent: int, total: int) -> None:
            raise ConnectionError("cable pulled")

        with pytest.raises(ConnectionError):
            await wos.upload_tus(content, filename="resumed.bin", chunk_size=300 * 1024,
                                 on_created=created.append, progress=stop_after_one_piece)
        resumed = await wos.upload_tus(content, filename="resumed.bin", chunk_size=300 * 1024, resume=created[0])
        assert int(resumed["filesize"]) == len(content)
        assert await wos.request("GET", f"/api/assets/{resumed['id']}", raw=True) == content


async def test_functions_are_invoked(server: ServerProcess) -> None:
    code = ("export default async function (req) {\n"
            "  return {method: req.method, body: req.body, q: req.query.q || null}\n}")
    async with Workeros(server.url, token=server.token) as wos:
        created = await wos.request("POST", "/api/functions", json={"name": "echo", "code": code})
        assert created["name"] == "echo"
        assert await wos.run_function("echo", {"n": 1}) == {"method": "POST", "body": {"n": 1}, "q": None}
        assert await wos.run_function("echo", method="GET", params={"q": "x"}) == \
            {"method": "GET", "body": None, "q": "x"}
        with pytest.raises(WorkerosError) as missing:
            await wos.run_function("nope")
        assert (missing.value.status, missing.value.code) == (404, "NOT_FOUND")


async def test_ai_query(server: ServerProcess, fake_model: FakeAnthropic) -> None:
    fake_model.reset()
    async with Workeros(server.url, token=server.token) as wos:
        await wos.request("POST", "/api/collections", json={"collection": "notes", "fields": [
            {"field": "title", "type": "string"}, {"field": "score", "type": "integer"}]})
        await wos.items("notes").create_many([{"title": "a", "score": 1}, {"title": "b", "score": 9}])
        plan = {"collection": "notes", "filter": {"score": {"_gt": 5}}, "fields": ["title"]}
        fake_model.answer({"plan": plan, "explanation": "notes above five"})
        answer = await wos.ai_query("Which notes score above five?")
        assert answer["plan"]["filter"] == {"score": {"_gt": 5}} and "rows" not in answer
        assert answer["usage"]["output_tokens"] == 42
        fake_model.answer({"plan": plan, "explanation": "notes above five"})
        ran = await wos.ai_query("Which notes score above five?", run=True)
        assert ran["rows"] == [{"title": "b"}]
        assert "notes" in fake_model.requests[0]["raw"]
        with pytest.raises(WorkerosError) as bad:
            await wos.ai_query("")
        assert (bad.value.status, bad.value.code) == (400, "INVALID_PAYLOAD")
