"""The data model's extension points: system collections and field types.

A **system collection** is a ``wos_*`` table a plugin (or the kernel) owns —
``wos_files``, ``wos_webhooks``, ``wos_functions``, ``wos_users`` — described to
the kernel so the items service treats it as a collection: the same permission
rows (``POST /api/permissions {collection: "wos_files", ...}``), the same query
language, relations to it from user collections (``fields=cover.*``) and from
it (``uploaded_by.email``). Its table is created by the owner's migrations
(:func:`workeros.hookspecs.lifecycle.workeros_register_migrations`), never by
the schema service, and it never appears in snapshots or exports of the
schema. Columns the owner keeps to itself (hashes, secrets) are simply not
listed: no way in can select, filter or write them.

A **field type** adds a column type user collections can use (``file``), with
its SQL type and how a JSON value is coerced to it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from . import hookspec

if TYPE_CHECKING:
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import AsyncConnection

    from workeros.schema.field_types import FieldType
    from workeros.schema.model import Field


@dataclass(frozen=True)
class SystemRelation:
    """A many-to-one from a system collection: its column ``field`` holds a key
    of ``related`` (another system collection or ``wos_users``)."""

    field: str
    related: str
    on_delete: str = "set null"


@dataclass(frozen=True)
class SystemCollection:
    """A ``wos_*`` table described as a collection.

    ``name``
        The collection name (``wos_files``): what permission rows, queries and
        relations use. Must start with ``wos_``.
    ``fields``
        The exposed columns, as :class:`workeros.schema.model.Field` objects
        (types from the field types, ``primary_key=True`` on the key). Columns not
        listed are invisible to every way in.
    ``table``
        The physical table name, if not ``name``.
    ``relations``
        Its many-to-one columns.
    ``items_api``
        Whether ``/api/items/<name>`` and GraphQL mutations may write it. Most
        system collections are written through their own endpoints and services
        (``/api/files``, ``/api/users``), which call the items service
        themselves; reads through the generic items API follow the same
        permissions either way.
    ``note``
        One line for schema listings.
    """

    name: str
    fields: Sequence[Field]
    table: str | None = None
    relations: Sequence[SystemRelation] = field(default_factory=tuple)
    items_api: bool = False
    note: str | None = None

    @property
    def table_name(self) -> str:
        return self.table or self.name


@hookspec
def workeros_register_system_collections() -> Sequence[SystemCollection]:
    """Describe ``wos_*`` tables this plugin owns as collections.

    Called once per boot, before the schema is first read. Every returned
    collection is merged into every :class:`workeros.schema.model.Schema` the
    schema service builds, marked ``system``; the schema service refuses to
    alter or drop it, but accepts relations from user collections to it. Two
    plugins describing one name is a startup error.

    :return: system collections. Not firstresult.

    .. versionadded:: 0.2

    Example::

        @hookimpl
        def workeros_register_system_collections():
            return [SystemCollection("wos_folders", fields=[
                Field("id", "uuid", primary_key=True, nullable=False),
                Field("name", "string", nullable=False),
                Field("parent", "uuid"),
            ], relations=[SystemRelation("parent", "wos_folders")])]
    """


@hookspec
def workeros_register_field_types() -> Sequence[FieldType]:
    """Add field types user collections may use.

    Called once per boot, before the schema is first read. Each
    :class:`workeros.schema.field_types.FieldType` gives the type's name, its
    SQLAlchemy column type and its coercion; ``references`` makes every field of
    the type a many-to-one to that collection (the ``file`` type references
    ``wos_files``: creating a ``file`` field creates the relation, and
    ``fields=cover.*`` expands it). A name already taken by the kernel or
    another plugin is a startup error.

    :return: field types. Not firstresult.

    .. versionadded:: 0.2

    Example::

        @hookimpl
        def workeros_register_field_types():
            return [FieldType("file", sql=lambda o: UUIDString(), coerce=coerce_uuid,
                              references="wos_files", ordered=False)]
    """


class ArchiveWriter(Protocol):
    """Where an export section writes its own members (a ZIP archive)."""

    async def write(self, member: str, chunks: AsyncIterator[bytes]) -> int:
        """Add ``member`` (a ``/``-separated name inside the section's folder)
        with the streamed bytes; return its size."""


class ArchiveReader(Protocol):
    """The archive being imported, as a section reads it."""

    def members(self) -> list[str]:
        """The section's member names (without its folder prefix)."""

    def read(self, member: str) -> AsyncIterator[bytes]:
        """Stream a member's bytes (checked against the archive's CRC as they
        are read: a damaged member raises ``InvalidPayload``)."""


#: ``restore`` returns this: undoes what the section wrote outside the database
#: (the kernel calls it when the import fails after the section ran).
Undo = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class ExportSection:
    """A plugin's part of a full export (``workeros export --full``).

    ``name``
        The section's name (usually the plugin's): its members live under
        ``sections/<name>/`` in the archive.
    ``tables``
        The plugin's ``wos_*`` tables whose rows travel, parents before
        children. Rows are written like the kernel's system data and loaded in
        the import's transaction (the target's rows of these tables are
        replaced). Leave out what is short-lived or rebuilt on demand.
    ``export``
        ``export(services, conn, writer) -> dict`` (may be awaitable): write
        content that is not rows (file objects) through ``writer``, reading
        the database on ``conn`` (the export's snapshot). Its return value is
        kept in the manifest and handed back to ``restore``.
    ``restore``
        ``restore(services, conn, reader, summary) -> Undo``: put that content
        back, inside the import's transaction (``conn``; the section's tables
        are loaded by then). If it fails it removes what it wrote itself; the
        returned ``Undo`` is called when a later step fails.
    """

    name: str
    tables: Sequence[sa.Table] = ()
    export: Callable[[Any, AsyncConnection, ArchiveWriter], Awaitable[dict[str, Any]]] | None = None
    restore: Callable[[Any, AsyncConnection, ArchiveReader, dict[str, Any]], Awaitable[Undo]] | None = None


@hookspec
def workeros_register_export_sections() -> Sequence[ExportSection]:
    """Add a plugin's tables and stored content to full exports.

    Called by ``workeros export --full`` and ``workeros import`` (and
    :func:`workeros.api.export_archive` with ``full=True``), once per export or
    import. On export, each section's tables are written to
    ``sections/<name>/<table>.jsonl`` and then its ``export`` runs; on import,
    an archive naming a section no installed plugin provides is refused before
    anything is written, and otherwise each section's rows are loaded and its
    ``restore`` runs inside the import's one transaction (all or nothing, with
    ``Undo`` for what lives outside the database). Two plugins registering one
    name is an error.

    :return: export sections. Not firstresult.

    .. versionadded:: 0.2

    Example::

        @hookimpl
        def workeros_register_export_sections():
            return [ExportSection("webhooks", tables=[webhooks_table])]
    """
