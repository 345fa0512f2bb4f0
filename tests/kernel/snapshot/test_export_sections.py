"""``workeros_register_export_sections``: a plugin's content travels in full
exports, is restored inside the import's transaction, and is undone when the
import fails after it ran; an archive naming a section nobody provides here is
refused before anything is written."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from callers import Api, TestCallers

from tests.conftest import FIRST_PARTY
from tests.kernel.snapshot.conftest import instance_settings, make_url  # noqa: F401 (fixture)
from workeros.hookspecs import hookimpl
from workeros.hookspecs.data import ExportSection
from workeros.schema import transfer


class Notebook:
    """A plugin keeping pages outside the database (a dict here), carried by
    full exports."""

    name = "notebook"

    def __init__(self, pages: dict[str, bytes], *, fail_restore: bool = False) -> None:
        self.pages = pages
        self.fail_restore = fail_restore
        self.undone = 0

    @hookimpl
    def workeros_register_export_sections(self) -> list[ExportSection]:
        async def export(services: Any, conn: Any, writer: Any) -> dict[str, Any]:
            for key, data in sorted(self.pages.items()):
                async def body(data: bytes = data) -> AsyncIterator[bytes]:
                    yield data[:3]
                    yield data[3:]

                await writer.write(key, body())
            return {"pages": len(self.pages)}

        async def restore(services: Any, conn: Any, reader: Any, summary: dict[str, Any]) -> Any:
            assert summary == {"pages": 2}
            for key in reader.members():
                self.pages[key] = b"".join([chunk async for chunk in reader.read(key)])

            async def undo() -> None:
                self.undone += 1
                self.pages.clear()

            if self.fail_restore:
                await undo()
                raise transfer.InvalidPayload("notebook refused")
            return undo

        return [ExportSection("notebook", export=export, restore=restore)]


class Failing:
    """A section after the notebook's that fails: the notebook's work is undone."""

    name = "zz-failing"

    @hookimpl
    def workeros_register_export_sections(self) -> list[ExportSection]:
        async def export(services: Any, conn: Any, writer: Any) -> dict[str, Any]:
            return {}

        async def restore(services: Any, conn: Any, reader: Any, summary: dict[str, Any]) -> Any:
            raise transfer.InvalidPayload("the second section refused")

        return [ExportSection("zz-failing", export=export, restore=restore)]


class Quiet:
    """The same section name with nothing to restore."""

    name = "zz-failing"

    @hookimpl
    def workeros_register_export_sections(self) -> list[ExportSection]:
        return [ExportSection("zz-failing")]


@asynccontextmanager
async def running(url: str, data_dir: Path, *extra: Any) -> AsyncIterator[Api]:
    from aiohttp.test_utils import TestClient, TestServer

    from workeros.http.app import create_app
    from workeros.http.keys import SERVICES
    from workeros.plugins import Plugins

    settings = instance_settings(url, data_dir)
    plugins = Plugins(load=FIRST_PARTY, disable=(), strict=False, plugins_dir=None)
    plugins.load_all()
    for plugin in (TestCallers(), *extra):
        plugins.register(plugin, name=getattr(plugin, "name", "test-callers"), distribution="test-fixtures")
    server = TestServer(await create_app(settings, plugins=plugins))
    async with TestClient(server) as client:
        api = Api(client).as_admin()
        api.services = server.app[SERVICES]  # type: ignore[attr-defined]
        yield api


async def test_hook_workeros_register_export_sections(wos_dialect, make_url, tmp_path) -> None:  # noqa: F811
    archive = tmp_path / "full.zip"
    source = Notebook({"a": b"alpha page", "b": b"beta page"})
    async with running(await make_url(wos_dialect, "a"), tmp_path / "a", source, Failing()) as a:
        assert (await a.post("/api/collections", json={"collection": "notes", "fields": [
            {"field": "title", "type": "string"}]})).status in (200, 201)
        plain = await transfer.export_archive(a.services, tmp_path / "plain.zip")
        assert plain["sections"] == {} and plain["full"] is False
        manifest = await transfer.export_archive(a.services, archive, full=True)
    assert manifest["sections"]["notebook"] == {"tables": {}, "content": {"pages": 2}}

    # A later section fails: the notebook's restore is undone, nothing stays.
    target = Notebook({})
    async with running(await make_url(wos_dialect, "b"), tmp_path / "b", target, Failing()) as b:
        with pytest.raises(transfer.InvalidPayload, match="second section refused"):
            await transfer.import_archive(b.services, archive)
        assert target.pages == {} and target.undone == 1
        assert (await b.get("/api/schema/snapshot")).data["collections"] == []

    # Without the failing plugin here, its section is refused before anything runs.
    async with running(await make_url(wos_dialect, "c"), tmp_path / "c", target) as c:
        with pytest.raises(transfer.InvalidPayload, match="zz-failing, which no installed plugin provides"):
            await transfer.import_archive(c.services, archive)
        assert target.pages == {} and target.undone == 1

    # With both: the pages come back, streamed member by member.
    async with running(await make_url(wos_dialect, "d"), tmp_path / "d", target, Quiet()) as d:
        await transfer.import_archive(d.services, archive, full=True)
        assert target.pages == {"a": b"alpha page", "b": b"beta page"}
        assert [c["collection"] for c in (await d.get("/api/schema/snapshot")).data["collections"]] == ["notes"]


async def test_a_full_export_keeps_secrets(wos_dialect, make_url, tmp_path) -> None:  # noqa: F811
    async with running(await make_url(wos_dialect, "a"), tmp_path / "a") as a:
        with pytest.raises(transfer.InvalidPayload, match="cannot leave secrets out"):
            await transfer.export_archive(a.services, tmp_path / "x.zip", full=True, secrets=False)
    assert not (tmp_path / "x.zip").exists()
