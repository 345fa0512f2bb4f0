"""Export and import: one archive with the schema and every row, restorable into
an empty instance on either dialect ("your exit is preserved").

The archive is a ZIP file (ZIP64, deflated), written and read as a stream::

    manifest.json              format, version, what is inside, row counts
    schema.json                the schema snapshot (workeros.schema.snapshot)
    data/<collection>.jsonl    one JSON object per row, ordered by primary key
    system/<table>.jsonl       system data: roles, permissions, users, API keys,
                               activity, revisions, settings, ... (every wos_
                               table except the schema catalog, carried by the
                               snapshot, and short-lived rows: sessions,
                               one-time tokens, rate limits, bus messages)

The archive is written with mode 0600: unless exported with ``secrets=False``
it holds password hashes, TOTP secrets, API key hashes and the generated
token-signing secret.

Rows are read through a server-side cursor and written in batches of
``BATCH`` rows, and imported the same way, so memory does not grow with the size
of the data. Values use the API's JSON forms (ISO 8601 datetimes with ``Z``,
decimals as strings) and are coerced by field type on the way in.

Export reads one consistent snapshot of the database (a single read
transaction; REPEATABLE READ on PostgreSQL). Import runs in one schema
transaction: collections and fields first, then the rows, then relations (their
foreign keys are checked against the loaded rows, as pg_dump does), then system
data; a failure leaves the instance as it was. New system tables join the
archive automatically.

A **full** export (``full=True``, ``workeros export --full``) also carries what
plugins own, through :func:`workeros.hookspecs.data.workeros_register_export_sections`::

    sections/<name>/<table>.jsonl   rows of the plugin's tables (webhooks, flows,
                                    functions, file rows, ...)
    sections/<name>/...             the section's own content (file objects)

listed under ``sections`` in the manifest. Import restores whatever the archive
holds: each section's rows in the same transaction, then its content (written
outside the database, and removed again if the import fails after all). An
archive naming a section no installed plugin provides is refused before
anything is written.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import logging
import os
import zipfile
import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from workeros import __version__
from workeros.accountability import Accountability
from workeros.db.tables import metadata
from workeros.db.tables.schema import settings as t_settings
from workeros.errors import Conflict, InvalidPayload, StartupError
from workeros.plugins import await_me_maybe
from workeros.schema import snapshot
from workeros.schema.catalog import VERSION_KEY, load
from workeros.schema.changes import Changes
from workeros.schema.field_types import CoercionError, coerce
from workeros.schema.model import Collection
from workeros.serialize import dumps, loads

if TYPE_CHECKING:
    from workeros.hookspecs.data import ExportSection, Undo
    from workeros.services import Services

log = logging.getLogger("workeros.transfer")

FORMAT = "workeros-export"
VERSION = 1
BATCH = 1000
#: System tables not carried as system data: the schema catalog travels as the
#: snapshot; these others are short-lived or belong to the migration tool.
NOT_EXPORTED = frozenset({
    "wos_collections", "wos_fields", "wos_relations",
    "wos_sessions", "wos_one_time_tokens", "wos_rate_limits", "wos_migrations",
    # Realtime events in flight between instances: meaningless anywhere else.
    "wos_bus_messages",
})


def system_tables() -> list[sa.Table]:
    """System tables in the archive, parents before children."""
    return [t for t in metadata.sorted_tables if t.name not in NOT_EXPORTED]


def _system_rows_filter(table: sa.Table) -> Any:
    # The schema version counts changes on *this* instance; the importer's own
    # counter moves on when the import commits.
    if table is t_settings:
        return t_settings.c.key != VERSION_KEY
    return sa.true()


# -- export --------------------------------------------------------------------------------

async def _stream_rows(conn: AsyncConnection, query: sa.Select) -> AsyncIterator[list[dict[str, Any]]]:
    result = await conn.stream(query.execution_options(yield_per=BATCH))
    async for partition in result.mappings().partitions(BATCH):
        yield [dict(row) for row in partition]


class Progress(Protocol):
    """Told how many rows there are, then as they are written (a progress bar)."""

    def start(self, total: int) -> None: ...

    def advance(self, rows: int) -> None: ...


async def _write_member(archive: zipfile.ZipFile, name: str, rows: AsyncIterator[list[dict[str, Any]]],
                        progress: Progress | None = None) -> int:
    count = 0
    with archive.open(name, "w", force_zip64=True) as out:
        async for batch in rows:
            payload = b"".join(dumps(row) + b"\n" for row in batch)
            # Compression is CPU work: keep it off the event loop.
            await asyncio.to_thread(out.write, payload)
            count += len(batch)
            if progress is not None:
                progress.advance(len(batch))
    return count


# -- plugin sections (full exports) ------------------------------------------------------------

CHUNK = 1 << 20


def export_sections(services: Services) -> dict[str, ExportSection]:
    """The export sections the installed plugins register, by name."""
    found: dict[str, ExportSection] = {}
    for info, entries in services.plugins.collect("workeros_register_export_sections"):
        for entry in entries:
            if entry.name in found:
                raise StartupError(f"two plugins register the export section {entry.name!r} "
                                   f"(the second is {info.distribution})")
            found[entry.name] = entry
    return found


def _section_prefix(name: str) -> str:
    return f"sections/{name}/content/"


def _section_table_member(name: str, table: sa.Table) -> str:
    return f"sections/{name}/tables/{table.name}.jsonl"


class _ArchiveWriter:
    """A section's view of the archive being written (``ArchiveWriter``)."""

    def __init__(self, archive: zipfile.ZipFile, prefix: str) -> None:
        self.archive = archive
        self.prefix = prefix

    async def write(self, member: str, chunks: AsyncIterator[bytes]) -> int:
        size = 0
        with self.archive.open(self.prefix + member, "w", force_zip64=True) as out:
            async for chunk in chunks:
                await asyncio.to_thread(out.write, chunk)
                size += len(chunk)
        return size


def _damaged(member: str, exc: BaseException) -> InvalidPayload:
    return InvalidPayload(f"the archive is damaged: {member} cannot be read ({exc.__class__.__name__})")


#: What reading a damaged member raises (a CRC mismatch, a truncated or
#: garbled deflate stream).
DAMAGE = (zipfile.BadZipFile, zlib.error, EOFError)


class _ArchiveReader:
    """A section's view of the archive being imported (``ArchiveReader``)."""

    def __init__(self, archive: zipfile.ZipFile, prefix: str) -> None:
        self.archive = archive
        self.prefix = prefix

    def members(self) -> list[str]:
        return [n[len(self.prefix):] for n in self.archive.namelist()
                if n.startswith(self.prefix) and not n.endswith("/")]

    async def read(self, member: str) -> AsyncIterator[bytes]:
        name = self.prefix + member
        try:
            stream = self.archive.open(name)
        except KeyError:
            raise InvalidPayload(f"export is incomplete: {name} is missing") from None
        except DAMAGE as exc:
            raise _damaged(name, exc) from None
        with stream:
            while True:
                try:
                    chunk = await asyncio.to_thread(stream.read, CHUNK)
                except DAMAGE as exc:
                    raise _damaged(name, exc) from None
                if not chunk:
                    return
                yield chunk


#: What ``secrets=False`` leaves out: API keys (their hashes sign callers in),
#: the generated token-signing secret, and per user the password hash and TOTP
#: secret (those users set a new password by reset; TOTP is off).
SECRET_TABLES = frozenset({"wos_api_keys"})
SECRET_USER_COLUMNS = {"password_hash": None, "totp_secret": None, "totp_enabled": False}
SECRET_SETTINGS = frozenset({"auth.secret"})


def _export_query(table: sa.Table, secrets: bool) -> sa.Select:
    from workeros.db.tables.accounts import users

    where = _system_rows_filter(table)
    if not secrets and table is t_settings:
        where = sa.and_(where, t_settings.c.key.not_in(SECRET_SETTINGS))
    if not secrets and table is users:
        columns = [sa.literal(SECRET_USER_COLUMNS[c.name], type_=c.type).label(c.name)
                   if c.name in SECRET_USER_COLUMNS else c for c in table.c]
        return sa.select(*columns).where(where).order_by(*table.primary_key.columns)
    return sa.select(table).where(where).order_by(*table.primary_key.columns)


async def export_archive(services: Services, path: str | Path, *, secrets: bool = True,
                         progress: Progress | None = None, full: bool = False) -> dict[str, Any]:
    """Write the archive to ``path`` (atomically: a partial file is renamed
    when complete), readable by its owner only (mode 0600: it holds password
    hashes and keys unless ``secrets`` is False). ``full`` adds every plugin's
    export section (its tables and stored content: file objects). Returns the
    manifest."""
    path = Path(path)
    if full and not secrets:
        raise InvalidPayload("a full export carries plugin tables as they are (webhook and function "
                             "settings included): it cannot leave secrets out")
    sections = export_sections(services) if full else {}
    partial = path.with_name(path.name + ".partial")
    manifest: dict[str, Any] = {
        "format": FORMAT, "version": VERSION, "workeros": __version__,
        "created_at": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
        "dialect": services.db.dialect, "collections": {}, "system": {}, "sections": {},
        "secrets": secrets, "full": full,
    }
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # also when the partial file was left over
        with os.fdopen(fd, "wb") as raw, \
                zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
            async with services.db.read() as conn:
                await services.db.read_snapshot(conn)
                catalog = await load(conn)
                doc = await snapshot.take(conn, catalog.schema, catalog, services)
                archive.writestr("schema.json", dumps(doc))
                tables = [t for t in system_tables() if secrets or t.name not in SECRET_TABLES]
                if progress is not None:
                    counts = [sa.select(sa.func.count()).select_from(c.table)
                              for c in catalog.schema.collections.values()]
                    counts += [sa.select(sa.func.count()).select_from(_export_query(t, secrets).subquery())
                               for t in tables]
                    counts += [sa.select(sa.func.count()).select_from(t)
                               for section in sections.values() for t in section.tables]
                    progress.start(sum([(await conn.execute(q)).scalar() or 0 for q in counts]))
                for name, collection in sorted(catalog.schema.collections.items()):
                    columns = [collection.column(f.name) for f in collection.scalar_fields()]
                    query = sa.select(*columns).order_by(collection.pk_column)
                    member = f"data/{name}.jsonl"
                    rows = await _write_member(archive, member, _stream_rows(conn, query), progress)
                    manifest["collections"][name] = {"file": member, "rows": rows}
                for table in tables:
                    member = f"system/{table.name}.jsonl"
                    rows = await _write_member(archive, member, _stream_rows(conn, _export_query(table, secrets)),
                                               progress)
                    manifest["system"][table.name] = {"file": member, "rows": rows}
                for name, section in sorted(sections.items()):
                    manifest["sections"][name] = await _export_section(services, conn, archive, section, progress)
            archive.writestr("manifest.json", dumps(manifest))
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    log.info("exported %s collections and %s system tables to %s", len(manifest["collections"]),
             len(manifest["system"]), path)
    return manifest


async def _export_section(services: Services, conn: AsyncConnection, archive: zipfile.ZipFile,
                          section: ExportSection, progress: Progress | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"tables": {}}
    for table in section.tables:
        member = _section_table_member(section.name, table)
        query = sa.select(table).order_by(*table.primary_key.columns)
        rows = await _write_member(archive, member, _stream_rows(conn, query), progress)
        entry["tables"][table.name] = {"file": member, "rows": rows}
    if section.export is not None:
        writer = _ArchiveWriter(archive, _section_prefix(section.name))
        entry["content"] = await await_me_maybe(section.export(services, conn, writer))
    return entry


# -- import --------------------------------------------------------------------------------

def _read_manifest(archive: zipfile.ZipFile) -> dict[str, Any]:
    try:
        manifest = loads(archive.read("manifest.json"))
    except KeyError:
        raise InvalidPayload("not a workeros export: manifest.json is missing") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InvalidPayload("not a workeros export: unknown manifest format")
    if manifest.get("version") != VERSION:
        raise InvalidPayload(f"export format version {manifest.get('version')!r} is not supported "
                             f"(this version reads {VERSION})")
    return manifest


def _batches(stream: IO[bytes]) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for line in stream:
        if line.strip():
            batch.append(loads(line))
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


async def _read_batches(archive: zipfile.ZipFile, member: str) -> AsyncIterator[list[Any]]:
    """Batches of decoded rows, read (and decompressed) off the event loop."""
    try:
        stream = archive.open(member)
    except KeyError:
        raise InvalidPayload(f"export is incomplete: {member} is missing") from None
    except DAMAGE as exc:
        raise _damaged(member, exc) from None
    with stream:
        batches = _batches(stream)
        while True:
            try:
                batch = await asyncio.to_thread(next, batches, None)
            except DAMAGE as exc:
                raise _damaged(member, exc) from None
            except ValueError as exc:  # a line that is not JSON
                raise InvalidPayload(f"{member}: not a JSON line ({str(exc)[:80]})") from None
            if batch is None:
                return
            yield batch


def _coerce_row(collection: Collection, row: Any, member: str, line: int) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise InvalidPayload(f"{member} line {line}: expected an object")
    out: dict[str, Any] = {}
    for name, value in row.items():
        field = collection.fields.get(name)
        if field is None or field.alias:
            raise InvalidPayload(f"{member} line {line}: unknown field {str(name)[:64]!r}")
        try:
            out[name] = coerce(field.type, value, field.options)
        except CoercionError as exc:
            raise InvalidPayload(f"{member} line {line}: field {name}: {exc}") from None
    return out


def _revive(column: sa.Column, value: Any) -> Any:
    """A system column's value from its JSON form."""
    if value is None or not isinstance(value, str):
        return value
    try:
        python_type = column.type.python_type
    except NotImplementedError:
        return value
    if python_type is dt.date:
        return dt.date.fromisoformat(value)
    if python_type is dt.time:
        return dt.time.fromisoformat(value)
    if python_type is decimal.Decimal:
        return decimal.Decimal(value)
    if python_type is bytes:  # written as hex (workeros.serialize)
        return bytes.fromhex(value)
    return value


async def _check_empty(changes: Changes) -> None:
    from workeros.db.tables.accounts import users

    if any(not c.system for c in changes.schema.collections.values()):
        raise Conflict("Import needs an empty instance: this one already has collections")
    if (await changes.conn.execute(sa.select(sa.func.count()).select_from(users))).scalar():
        raise Conflict("Import needs an empty instance: this one already has users")


async def _load_collection(changes: Changes, archive: zipfile.ZipFile, name: str, member: str,
                           progress: Progress | None = None) -> int:
    collection = changes.schema.collections[name]
    count = 0
    async for batch in _read_batches(archive, member):
        rows = [_coerce_row(collection, row, member, count + i + 1) for i, row in enumerate(batch)]
        await changes.conn.execute(collection.table.insert(), rows)
        count += len(rows)
        if progress is not None:
            progress.advance(len(rows))
    return count


async def _load_rows(services: Services, changes: Changes, archive: zipfile.ZipFile, table: sa.Table, member: str,
                     progress: Progress | None) -> None:
    async for batch in _read_batches(archive, member):
        if not all(isinstance(row, dict) for row in batch):
            raise InvalidPayload(f"{member}: expected one object per line")
        rows = [{k: _revive(table.c[k], v) for k, v in row.items() if k in table.c} for row in batch]
        await changes.conn.execute(table.insert(), rows)
        if progress is not None:
            progress.advance(len(rows))
    await services.db.advance_sequence(changes.conn, table)


async def _load_system(services: Services, changes: Changes, archive: zipfile.ZipFile, system: dict[str, Any],
                       progress: Progress | None = None) -> None:
    tables = [t for t in system_tables() if t.name in system]
    for table in reversed(tables):
        await changes.conn.execute(table.delete().where(_system_rows_filter(table)))
    for table in tables:
        await _load_rows(services, changes, archive, table, system[table.name]["file"], progress)


def _wanted_sections(services: Services, manifest: dict[str, Any]) -> dict[str, tuple[ExportSection, dict]]:
    """The archive's sections matched with the installed plugins' (refused,
    before anything is written, when one is not installed here)."""
    listed = manifest.get("sections") or {}
    if not isinstance(listed, dict) or not all(isinstance(e, dict) for e in listed.values()):
        raise InvalidPayload("not a workeros export: malformed sections in the manifest")
    if not listed:
        return {}
    installed = export_sections(services)
    missing = sorted(set(listed) - set(installed))
    if missing:
        raise InvalidPayload(f"the archive holds data of {', '.join(m[:40] for m in missing)}, which no installed "
                             "plugin provides here: install it first")
    out: dict[str, tuple[ExportSection, dict]] = {}
    for name, entry in listed.items():
        section = installed[name]
        known = {t.name for t in section.tables}
        unknown = sorted(set(entry.get("tables") or {}) - known)
        if unknown:
            raise InvalidPayload(f"the archive's {name} section has tables this version does not know: "
                                 f"{', '.join(u[:40] for u in unknown)}")
        out[name] = (section, entry)
    return out


async def _check_sections_empty(changes: Changes, sections: dict[str, tuple[ExportSection, dict]]) -> None:
    for section, _ in sections.values():
        for table in section.tables:
            if (await changes.conn.execute(sa.select(sa.func.count()).select_from(table))).scalar():
                raise Conflict(f"Import needs an empty instance: this one already has rows in {table.name}")


async def _load_section_rows(services: Services, changes: Changes, archive: zipfile.ZipFile,
                             section: ExportSection, entry: dict, progress: Progress | None) -> None:
    tables = entry.get("tables") or {}
    for table in section.tables:
        if table.name in tables:
            await _load_rows(services, changes, archive, table, tables[table.name]["file"], progress)


async def import_archive(services: Services, path: str | Path, accountability: Accountability | None = None,
                         *, progress: Progress | None = None, full: bool = False) -> dict[str, Any]:
    """Restore an archive into this (empty) instance, all or nothing: its
    plugin sections too, when it has them. ``full`` refuses an archive written
    without them. Returns the manifest with the row counts loaded."""
    acc = accountability or Accountability.system()
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise InvalidPayload("not a workeros export: not a ZIP archive (or a truncated one)") from None
    with archive:
        manifest = _read_manifest(archive)
        if full and not manifest.get("full"):
            raise InvalidPayload("not a full export: it was written without --full (no plugin data, no files)")
        sections = _wanted_sections(services, manifest)
        undos: list[Undo] = []
        try:
            doc = loads(archive.read("schema.json"))
        except KeyError:
            raise InvalidPayload("export is incomplete: schema.json is missing") from None
        wanted = snapshot.parse(doc, services)
        collections = manifest.get("collections") or {}
        if set(collections) != set(wanted.collections):
            raise InvalidPayload("export is inconsistent: its data and schema list different collections")

        async def work(changes: Changes) -> None:
            await _check_empty(changes)
            await _check_sections_empty(changes, sections)
            if progress is not None:
                progress.start(sum(int(e.get("rows") or 0) for part in ("collections", "system")
                                   for e in (manifest.get(part) or {}).values())
                               + sum(int(t.get("rows") or 0) for _, entry in sections.values()
                                     for t in (entry.get("tables") or {}).values()))
            bare = snapshot.Wanted(
                collections={n: snapshot.WantedCollection(
                    name=w.name, pk=w.pk, fields=[f for f in w.fields if not f.alias], adopted=w.adopted,
                    table=w.table, note=w.note, meta=w.meta) for n, w in wanted.collections.items()},
                relations={},
            )
            await snapshot.apply(changes, bare, None)
            for name, entry in sorted(collections.items()):
                loaded = await _load_collection(changes, archive, name, entry["file"], progress)
                if loaded != entry.get("rows", loaded):
                    raise InvalidPayload(f"export is inconsistent: {entry['file']} has {loaded} rows, "
                                         f"the manifest says {entry['rows']}")
                await services.db.advance_sequence(changes.conn, changes.schema.collections[name].table)
            # System and plugin rows before the relations: a user collection's
            # foreign keys may point at them (a file field at wos_files).
            await _load_system(services, changes, archive, manifest.get("system") or {}, progress)
            for section, entry in sections.values():
                await _load_section_rows(services, changes, archive, section, entry, progress)
            await snapshot.apply(changes, wanted, services)
            for section, entry in sections.values():
                if section.restore is not None:
                    reader = _ArchiveReader(archive, _section_prefix(section.name))
                    undos.append(await section.restore(services, changes.conn, reader, entry.get("content") or {}))

        try:
            await services.schema.change(acc, work, action="import")
        except BaseException:
            for undo in reversed(undos):
                try:
                    await undo()
                except Exception:
                    log.exception("undoing a partial import")
            raise
    return manifest

