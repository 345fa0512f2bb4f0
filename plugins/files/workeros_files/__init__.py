"""Files (DESIGN §6 "Files"): ``wos_files`` and ``wos_folders``, uploads
(multipart at ``/api/files``, TUS at ``/api/files/tus``, import from a URL),
assets with image transforms at ``/api/assets/{id}``, the ``fs`` storage
backend, the ``file`` field type and the MCP storage tools. See ``docs/files.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workeros.api import CoercionError, Field, FieldType, UUIDString, coerce
from workeros.hookspecs import hookimpl
from workeros.hookspecs.admin import AdminPage
from workeros.hookspecs.data import ExportSection, SystemCollection, SystemRelation
from workeros.hookspecs.lifecycle import ConfigKey, Migrations, ServiceEntry
from workeros.hookspecs.mcp import McpTool
from workeros.hookspecs.storage import StorageBackend
from workeros.hookspecs.transport import Transport

from . import assets, routes, transfer
from .fs import FsStorage
from .mcp_tools import tools
from .service import FilesService

__all__ = ["FilesService", "FsStorage"]

CONFIG_KEYS = [
    ConfigKey("files.max_size", "int", 2 * 1024**3, "Largest file accepted, in bytes (413 above it)"),
    ConfigKey("files.tus_expire_hours", "float", 24.0,
              "Hours an unfinished resumable (TUS) upload is kept before it expires"),
    ConfigKey("storage.fs.root", "str", None, "Folder of the fs storage backend (default: <data_dir>/files)"),
    ConfigKey("assets.transforms", "str", "all", "Image transforms allowed on /api/assets: all, presets (key= "
              "only) or none", choices=("all", "presets", "none")),
    ConfigKey("assets.presets", "dict", {}, "Named transforms for key=<name>: {name: {width, height, fit, "
              "quality, format}}"),
    ConfigKey("assets.max_dimension", "int", 4000, "Largest width or height a transform may ask for"),
    ConfigKey("assets.max_pixels", "int", 50_000_000,
              "Largest source image (width x height) decoded for a transform; larger ones are refused unread"),
    ConfigKey("assets.transform_concurrency", "int", 2, "Transforms rendered at the same time (threads)"),
    ConfigKey("assets.cache_max_age", "int", 86400, "Cache-Control max-age of asset responses, in seconds"),
]


def _coerce_file(value: Any, options: Any) -> Any:
    try:
        return coerce("uuid", value)
    except CoercionError:
        raise CoercionError("expected a file id (a uuid)") from None


FILE_TYPE = FieldType("file", sql=lambda o: UUIDString(), coerce=_coerce_file, ordered=False,
                      references="wos_files")


@hookimpl
def workeros_register_config_keys() -> list[ConfigKey]:
    return CONFIG_KEYS


@hookimpl
def workeros_register_migrations() -> list[Migrations]:
    return [Migrations("files", str(Path(__file__).parent / "migrations"))]


@hookimpl
def workeros_register_export_sections() -> list[ExportSection]:
    return [transfer.SECTION]


@hookimpl
def workeros_register_system_collections() -> list[SystemCollection]:
    return [
        SystemCollection("wos_folders", note="Folders of files", items_api=False, fields=[
            Field("id", "uuid", primary_key=True, nullable=False),
            Field("name", "string", nullable=False),
            Field("parent", "uuid"),
        ], relations=[SystemRelation("parent", "wos_folders")]),
        SystemCollection("wos_files", note="Files (written through /api/files)", fields=[
            Field("id", "uuid", primary_key=True, nullable=False),
            Field("filename_download", "string", nullable=False),
            Field("title", "string"),
            Field("type", "string"),
            Field("filesize", "bigint", nullable=False),
            Field("width", "integer"),
            Field("height", "integer"),
            Field("checksum", "string", options={"length": 80}),
            Field("storage", "string", nullable=False, options={"length": 64}),
            Field("folder", "uuid"),
            # The uploader's user id, set by the service; not a relation, since an
            # uploader need not be allowed to read wos_users.
            Field("uploaded_by", "string", options={"length": 36}),
            Field("uploaded_on", "datetime", nullable=False),
        ], relations=[SystemRelation("folder", "wos_folders")]),
    ]


@hookimpl
def workeros_register_field_types() -> list[FieldType]:
    return [FILE_TYPE]


@hookimpl
def workeros_register_storage_backends() -> list[StorageBackend]:
    return [StorageBackend(name="fs", factory=FsStorage.from_settings, priority=0,
                           description="Files on the local disk, under the data dir")]


@hookimpl
def workeros_register_services() -> list[ServiceEntry]:
    return [ServiceEntry("files", FilesService.open)]


@hookimpl
def workeros_register_transports() -> list[Transport]:
    return [
        Transport(name="files", prefix="/api/files", factory=routes.build,
                  description="File uploads (multipart, TUS, import from a URL) and file rows"),
        Transport(name="folders", prefix="/api/folders", factory=routes.build_folders, description="File folders"),
        Transport(name="assets", prefix="/api/assets", factory=assets.build,
                  description="File bytes and image transforms"),
    ]


@hookimpl
def workeros_register_mcp_tools() -> list[McpTool]:
    return tools()


@hookimpl
def workeros_register_admin_pages() -> list[AdminPage]:
    # Shown to whoever may read wos_files; what they may do there is the permissions'.
    return [AdminPage("files", "nav.files", str(Path(__file__).parent / "admin" / "files.js"),
                      icon="file", order=40, collection="wos_files")]
