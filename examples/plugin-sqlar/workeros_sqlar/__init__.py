"""A storage backend keeping every stored object in one SQLite Archive file (the
``sqlar`` table of ``sqlite3 -A``): a backup is one file, and ``sqlite3 files.sqlar
-x`` unpacks it. Objects are compressed with zlib unless that does not pay, as
the format says. Choose it with ``storage.backend = "sqlar"``."""

import asyncio
import sqlite3
import threading
import time
import zlib
from pathlib import Path

from workeros.api import NotFound
from workeros.hookspecs import hookimpl
from workeros.hookspecs.lifecycle import ConfigKey
from workeros.hookspecs.storage import StorageBackend

SCHEMA = "CREATE TABLE IF NOT EXISTS sqlar(name TEXT PRIMARY KEY, mode INT, mtime INT, sz INT, data BLOB)"


class SqlarStorage:
    def __init__(self, path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()  # one connection, used from the thread pool
        self.db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(SCHEMA)

    @classmethod
    def from_settings(cls, settings):
        return cls(settings["storage.sqlar.path"] or Path(settings["data_dir"]) / "files.sqlar")

    def _run(self, sql, *args):
        with self.lock:
            return self.db.execute(sql, args).fetchone()

    async def put(self, key, chunks, *, content_type=None):
        data = bytearray()
        async for chunk in chunks:
            data += chunk
        packed = zlib.compress(data)
        blob = packed if len(packed) < len(data) else bytes(data)
        await asyncio.to_thread(self._run, "INSERT OR REPLACE INTO sqlar VALUES (?, ?, ?, ?, ?)",
                                key, 0o100644, int(time.time()), len(data), blob)
        return len(data)

    async def get(self, key, *, start=None, end=None):
        row = await asyncio.to_thread(self._run, "SELECT sz, data FROM sqlar WHERE name = ?", key)
        if row is None:
            raise NotFound("The file's bytes are missing from storage")
        size, blob = row
        data = zlib.decompress(blob) if len(blob) < size else blob
        yield data[start or 0:None if end is None else end + 1]  # end is inclusive, as in HTTP ranges

    async def delete(self, key):
        await asyncio.to_thread(self._run, "DELETE FROM sqlar WHERE name = ?", key)

    async def exists(self, key):
        return await asyncio.to_thread(self._run, "SELECT 1 FROM sqlar WHERE name = ?", key) is not None


@hookimpl
def workeros_register_storage_backends():
    return [StorageBackend(name="sqlar", factory=SqlarStorage.from_settings, priority=-10,
                           description="Every object in one SQLite Archive file")]


@hookimpl
def workeros_register_config_keys():
    return [ConfigKey("storage.sqlar.path", "str", None, "Archive file (default: <data_dir>/files.sqlar)")]
