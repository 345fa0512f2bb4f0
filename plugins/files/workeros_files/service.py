"""The files service: file rows in ``wos_files`` (through the items service,
so permissions, activity, revisions and events are those of any collection)
and their bytes in a storage backend.

Every row remembers the backend that holds its bytes (``storage``): changing
``storage.backend`` affects new files only. The object key is made from the
row's id (``files/<uuid>``), never from anything the client sent.
"""

from __future__ import annotations

import hashlib
import io
import logging
import re
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

import sqlalchemy as sa

from workeros.api import (
    Accountability,
    CoercionError,
    Forbidden,
    InvalidPayload,
    NotFound,
    PayloadTooLarge,
    Query,
    Services,
    Variables,
    await_me_maybe,
    coerce,
    match_filter,
    now,
)

from .images import SOURCE_TYPES, Transformer, header_size
from .sniff import HEAD, sniff
from .tables import variants as variants_table

log = logging.getLogger("workeros.files")
_FILE_ID = "wos_file_id"

COLLECTION = "wos_files"
#: Fields a client may set on a file row; the rest is measured by the server.
CLIENT_FIELDS = ("title", "folder", "filename_download")
#: Bytes kept from the start of an upload: the sniffer's head, and enough of
#: an image's header for its dimensions.
KEEP_HEAD = 512 * 1024
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\]")


def clean_filename(name: str | None, fallback: str = "file") -> str:
    """A download name: the last path segment, no control characters, at most
    255 characters."""
    name = PurePosixPath(unquote(name or "").replace("\\", "/")).name
    name = _UNSAFE_NAME.sub("", name).strip().strip(".") or fallback
    return name[-255:]


@dataclass
class Measured:
    """What the server learned from the bytes while they were stored."""

    size: int = 0
    sha: Any = field(default_factory=hashlib.sha256)
    head: bytearray = field(default_factory=bytearray)

    @property
    def checksum(self) -> str:
        return "sha256:" + self.sha.hexdigest()


async def measure(chunks: AsyncIterator[bytes], measured: Measured, max_size: int) -> AsyncIterator[bytes]:
    """Pass ``chunks`` through, hashing and counting them; past ``max_size``
    the stream fails (the backend discards what it had)."""
    async for chunk in chunks:
        if not chunk:
            continue
        measured.size += len(chunk)
        if measured.size > max_size:
            raise PayloadTooLarge(f"The file is larger than this server's limit of {max_size} bytes")
        measured.sha.update(chunk)
        if len(measured.head) < KEEP_HEAD:
            measured.head += chunk[:KEEP_HEAD - len(measured.head)]
        yield chunk


@dataclass(frozen=True)
class AssetSettings:
    """The ``assets.*`` settings, read once at start (they are per process)."""

    transforms: str
    presets: Mapping[str, Any]
    max_dimension: int
    max_pixels: int
    cache_control_public: str
    cache_control_private: str

    @classmethod
    def from_settings(cls, settings: Any) -> AssetSettings:
        age = settings["assets.cache_max_age"]
        return cls(settings["assets.transforms"], settings["assets.presets"] or {}, settings["assets.max_dimension"],
                   settings["assets.max_pixels"], f"public, max-age={age}", f"private, max-age={age}")


#: The columns of a file row that answering an asset reads.
ASSET_COLUMNS = ("id", "storage", "filename_download", "type", "filesize", "width", "height", "checksum")


def _row_statement(c: Any, where: Any) -> sa.Select:
    """The :data:`ASSET_COLUMNS` of the file whose id is bound as ``_FILE_ID``,
    under an extra row filter ``where`` (a read rule's) when given."""
    stmt = sa.select(*(c.table.c[name] for name in ASSET_COLUMNS)).where(c.pk_column == sa.bindparam(_FILE_ID))
    if where is not None:
        stmt = stmt.where(where)
    return stmt.limit(1)


class FilesService:
    def __init__(self, services: Services) -> None:
        self.services = services
        settings = services.settings
        self.max_size: int = settings["files.max_size"]
        self.transformer = Transformer(settings["assets.transform_concurrency"])
        self._storages: dict[str, Any] = {}
        self.assets = AssetSettings.from_settings(settings)
        #: Statements reading a file's asset columns under a read rule without a
        #: row filter, by schema and rule (the file id is a bound parameter).
        self._row_statements: dict[tuple[Any, ...], Any] = {}
        #: Transforms by query string (``None``: the original), parsed once.
        self.parsed_transforms: dict[str, Any] = {}
        #: Rendered variants by cache key (immutable until the file is deleted).
        self._variants: dict[str, dict] = {}
        self._opened: list[Any] = []
        registry = services.registry
        active = registry.get("storage")
        self.default_storage: str | None = active.name if active is not None else None
        if active is not None and services.storage is not None:
            self._storages[active.name] = services.storage

    @classmethod
    async def open(cls, services: Services) -> FilesService:
        return cls(services)

    async def close(self) -> None:
        self.transformer.close()
        for storage in self._storages.values():
            close = getattr(storage, "close", None)
            if close is not None:
                await close()

    # -- storage backends -------------------------------------------------------------------
    async def storage(self, name: str) -> Any:
        """The backend called ``name`` (each row names the one holding its bytes)."""
        found = self._storages.get(name)
        if found is not None:
            return found
        entries = self.services.registry.entries.get("storage", {})
        registered = entries.get(name)
        if registered is None or registered.unavailable:
            raise NotFound(f"The storage {name[:40]!r} holding this file is not available on this server")
        found = await await_me_maybe(registered.entry.factory(self.services.settings))
        self._storages[name] = found
        return found

    async def default(self) -> tuple[str, Any]:
        if self.default_storage is None:
            raise InvalidPayload("No storage backend is installed")
        return self.default_storage, await self.storage(self.default_storage)

    # -- rows -------------------------------------------------------------------------------
    async def check_create(self, acc: Accountability, fields: Mapping[str, Any]) -> Any:
        """403 before any byte is read when the caller may not create files or
        set one of ``fields``."""
        rule = await self.services.items.rule(acc, COLLECTION, "create")
        if rule.fields is not None:
            for name in fields:
                if name not in rule.fields:
                    raise Forbidden(f"You don't have permission to write field {name!r}")
        return rule

    def client_values(self, data: Mapping[str, Any]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, raw in data.items():
            if name not in CLIENT_FIELDS:
                raise InvalidPayload(f"Field {name[:80]!r} cannot be set on a file", field=name[:80])
            if raw is None or raw == "":
                if name == "filename_download":
                    raise InvalidPayload("filename_download cannot be empty", field=name)
                values[name] = None
                continue
            try:
                if name == "folder":
                    values[name] = coerce("uuid", raw)
                elif name == "filename_download":
                    values[name] = clean_filename(coerce("string", raw))
                else:
                    values[name] = coerce("string", raw)[:255]
            except CoercionError as exc:
                raise InvalidPayload(f"{name}: {exc}", field=name) from None
        return values

    async def store(self, acc: Accountability, chunks: AsyncIterator[bytes], *, filename: str | None,
                    data: Mapping[str, Any] | None = None, meta: Mapping[str, Any] | None = None) -> dict:
        """Stream ``chunks`` to the default storage and create the file row.
        On any failure nothing is left: no row, no object."""
        values = self.client_values(data or {})
        rule = await self.check_create(acc, values)
        for name, raw in (rule.presets or {}).items():
            if name in CLIENT_FIELDS and name not in values:
                values[name] = raw
        name, storage = await self.default()
        file_id = str(uuid.uuid4())
        key = f"files/{file_id}"
        measured = Measured()
        try:
            await storage.put(key, measure(chunks, measured, self.max_size))
        except BaseException:
            await _quietly(storage.delete(key))
            raise
        try:
            row = await self._insert(acc, rule, file_id, name, storage, key, measured, filename, values, meta)
        except BaseException:
            await _quietly(storage.delete(key))
            raise
        return row

    async def _insert(self, acc: Accountability, rule: Any, file_id: str, storage_name: str, storage: Any, key: str,
                      measured: Measured, filename: str | None, values: dict[str, Any],
                      meta: Mapping[str, Any] | None) -> dict:
        mime = sniff(bytes(measured.head[:HEAD]))
        width = height = None
        if mime in SOURCE_TYPES:
            path = self.local_path(storage, key)
            size = header_size(path if path is not None else io.BytesIO(bytes(measured.head)))
            if size is not None:
                width, height = size
        row = {
            "id": file_id,
            "filename_download": values.pop("filename_download", None) or clean_filename(filename),
            "title": values.pop("title", None) or _title(filename),
            "type": mime, "filesize": measured.size, "width": width, "height": height,
            "checksum": measured.checksum, "storage": storage_name,
            "folder": values.pop("folder", None),
            "uploaded_by": acc.user, "uploaded_on": now(),
        }
        items = self.services.items
        c = items.collection(COLLECTION)
        if rule.validation is not None and not match_filter(
                rule.validation, row, schema=self.services.schema.current(), collection=COLLECTION,
                variables=Variables.for_accountability(acc)):
            # Checked on the measured row: a rule may limit types or sizes per role.
            raise InvalidPayload(f"The file does not satisfy the validation rule of {COLLECTION!r}")
        async with items.writing(c) as w:
            await w.create(acc, c, [], payloads=[row], meta=meta)
        return await self.readable(acc, file_id, row)

    async def readable(self, acc: Accountability, file_id: str, fallback: Mapping[str, Any]) -> dict:
        """The row as the caller may read it (only its id when it may not)."""
        try:
            return await self.services.items.get(acc, COLLECTION, file_id)
        except (Forbidden, NotFound):
            return {"id": fallback["id"]}

    async def update(self, acc: Accountability, file_id: str, data: Any, query: Query | None = None) -> dict:
        if not isinstance(data, Mapping):
            raise InvalidPayload("Expected an object")
        values = self.client_values(data)
        return await self.services.items.update(acc, COLLECTION, file_id, values, query)

    async def delete(self, acc: Accountability, file_ids: list[Any]) -> None:
        """Delete rows (under the caller's delete rule) and then their bytes and
        cached variants. Fields of type ``file`` pointing at them become null."""
        items = self.services.items
        c = items.collection(COLLECTION)
        async with items.writing(c) as w:
            rows = await w.delete(acc, c, file_ids)
            ids = [r["id"] for r in rows]
            found = (await w.conn.execute(sa.select(variants_table.c.key, variants_table.c.file)
                                          .where(variants_table.c.file.in_(ids)))).all() if ids else []
            await w.conn.execute(variants_table.delete().where(variants_table.c.file.in_(ids)))
        by_id = {r["id"]: r for r in rows}
        for row in rows:
            storage = await _maybe(self.storage(row["storage"]))
            if storage is not None:
                await _quietly(storage.delete(f"files/{row['id']}"))
        for variant_key, file_id in found:
            self._variants.pop(variant_key, None)
            storage = await _maybe(self.storage(by_id[file_id]["storage"]))
            if storage is not None:
                await _quietly(storage.delete(variant_key))

    async def stored_row(self, acc: Accountability, file_id: str) -> dict:
        """The columns of a file the caller may read that an asset needs
        (:data:`ASSET_COLUMNS`), in one read: the row filter is the caller's
        read rule on ``wos_files``, the columns are the service's (an asset
        needs its type and checksum even when the caller may not select them).
        404 when it does not exist or is not visible."""
        reader = await self.services.items.reader(acc)
        try:
            c, rule = reader.collection(COLLECTION)
            pk = coerce("uuid", file_id)
        except (Forbidden, CoercionError):
            raise NotFound(f"File {str(file_id)[:80]!r} not found") from None
        if rule.filter is None:
            # Built once per (schema version, rule): the id is a bound parameter,
            # and the database layer runs a statement it has seen before as SQL
            # compiled once, without a transaction around the one read.
            cache_key = (id(reader.schema), reader.schema.version, id(rule))
            entry = self._row_statements.get(cache_key)
            if entry is None:
                if len(self._row_statements) >= 256:
                    self._row_statements.clear()
                # The rule is held so its id stays unique while the entry lives.
                entry = self._row_statements[cache_key] = _row_statement(c, None), rule
            rows = await self.services.db.fetch(entry[0], {_FILE_ID: pk})
        else:
            async with self.services.db.read() as conn:
                rows = (await conn.execute(_row_statement(c, reader.where(c, rule, None)), {_FILE_ID: pk})).all()
        if not rows:
            raise NotFound(f"File {str(file_id)[:80]!r} not found")
        return dict(zip(ASSET_COLUMNS, rows[0], strict=True))

    def local_path(self, storage: Any, key: str) -> Any:
        """The object's path when ``storage`` keeps objects as files on this
        machine (see :class:`workeros.hookspecs.storage.Storage`), else None."""
        local = getattr(storage, "local_path", None)
        return local(key) if local is not None else None

    # -- cached variants --------------------------------------------------------------------
    async def variant(self, key: str) -> dict | None:
        cached = self._variants.get(key)
        if cached is not None:
            return cached
        async with self.services.db.read() as conn:
            row = (await conn.execute(sa.select(variants_table).where(variants_table.c.key == key))).mappings().first()
        if row is None:
            return None
        if len(self._variants) >= 10_000:
            self._variants.pop(next(iter(self._variants)))
        self._variants[key] = found = dict(row)
        return found

    async def forget_variant(self, key: str) -> None:
        self._variants.pop(key, None)
        async with self.services.db.transaction() as conn:
            await conn.execute(variants_table.delete().where(variants_table.c.key == key))

    async def remember_variant(self, key: str, file_id: str, mime: str, size: int) -> None:
        db = self.services.db
        async with db.transaction() as conn:
            stmt = db.insert(variants_table).values(key=key, file=file_id, type=mime, size=size, created_at=now())
            await conn.execute(stmt.on_conflict_do_nothing())

    # -- import from a URL ------------------------------------------------------------------
    async def import_url(self, acc: Accountability, url: Any, data: Mapping[str, Any],
                         meta: Mapping[str, Any] | None = None) -> dict:
        if not isinstance(url, str) or not url.strip():
            raise InvalidPayload("url is required", field="url")
        values = self.client_values(data)
        await self.check_create(acc, values)
        async with self.services.outbound.open("GET", url.strip()) as response:
            if response.status >= 400:
                raise InvalidPayload(f"The URL answered with status {response.status}")
            length = response.content_length
            if length is not None and length > self.max_size:
                raise PayloadTooLarge(f"The file is larger than this server's limit of {self.max_size} bytes")
            filename = _disposition_name(response.headers.get("Content-Disposition")) or \
                unquote(urlsplit(str(response.url)).path.rsplit("/", 1)[-1])

            async def body() -> AsyncIterator[bytes]:
                async for chunk in response.content.iter_chunked(256 * 1024):
                    yield chunk

            return await self.store(acc, body(), filename=filename or "download", data=values, meta=meta)


def _title(filename: str | None) -> str | None:
    stem = PurePosixPath(clean_filename(filename)).stem
    return stem.replace("_", " ").replace("-", " ").strip()[:255] or None


_DISPOSITION = re.compile(r"filename\*?=(?:UTF-8'')?\"?([^\";]+)\"?", re.IGNORECASE)


def _disposition_name(header: str | None) -> str | None:
    if not header:
        return None
    match = _DISPOSITION.search(header)
    return unquote(match.group(1)) if match else None


async def _quietly(awaitable: Any) -> None:
    try:
        await awaitable
    except Exception:
        log.warning("could not remove a stored object", exc_info=True)


async def _maybe(awaitable: Any) -> Any:
    try:
        return await awaitable
    except Exception:
        return None
