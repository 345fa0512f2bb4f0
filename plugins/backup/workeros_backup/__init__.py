"""``workeros backup --out FILE`` and ``workeros restore FILE``; scheduled
backups with retention (``backup.dir``, ``backup.interval_hours``,
``backup.keep``). See ``docs/operations.md``.

What a backup file is depends on the database, and ``restore`` recognises it
by its first bytes:

- SQLite: a copy made with SQLite's online backup API (consistent while the
  server writes; WAL included) — itself a SQLite database;
- PostgreSQL with ``pg_dump`` on the PATH: a ``pg_dump`` custom-format archive
  (one snapshot), restored with ``pg_restore``;
- PostgreSQL without it (or ``--logical``): the export archive of ``workeros
  export`` (one REPEATABLE READ snapshot), which also restores into SQLite;
- ``--full``: the archive of ``workeros export --full``, with the plugins'
  tables and the stored file objects (restored into the target's storage).

Restore refuses a database that already holds workeros tables, and a SQLite
file that exists: it fills an empty data dir or database, nothing else.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import os
import shutil
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy.engine import make_url

from workeros.api import (
    SERVICES,
    Settings,
    StartupError,
    WorkerosError,
    export_archive,
    import_archive,
    open_services,
    prepare,
)
from workeros.hookspecs import hookimpl
from workeros.hookspecs.lifecycle import Command, CommandContext, ConfigKey

log = logging.getLogger("workeros.backup")

CONFIG_KEYS = [
    ConfigKey("backup.dir", "str", None,
              "Folder for scheduled backups (unset: no scheduled backups). Set it on one instance only"),
    ConfigKey("backup.interval_hours", "float", 24.0, "Hours between scheduled backups"),
    ConfigKey("backup.keep", "int", 7, "Scheduled backups kept; older ones are deleted after each new one"),
]
SQLITE_MAGIC = b"SQLite format 3\x00"
PGDUMP_MAGIC = b"PGDMP"
ZIP_MAGIC = b"PK\x03\x04"
PREFIX = "workeros-"


class BackupError(Exception):
    """A backup or restore that cannot be done, with the reason for the operator."""


# -- where the database is ----------------------------------------------------------------

def sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite"):
        return None
    if not parsed.database or parsed.database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(parsed.database)


def libpq_url(url: str) -> str:
    """The URL ``pg_dump``/``pg_restore`` understand (no SQLAlchemy driver part)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _private_file(path: Path) -> Path:
    """A fresh partial file beside ``path``, readable by its owner only."""
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.close(fd)
    return partial


# -- backup -------------------------------------------------------------------------------

def _sqlite_copy(source: Path, target: Path, dbapi: Any = sqlite3) -> None:
    src = dbapi.connect(f"file:{source}?mode=ro", uri=True)
    try:
        dst = dbapi.connect(target)
        try:
            src.backup(dst, pages=1024)  # in steps: writers are not held off for the whole copy
        finally:
            dst.close()
    finally:
        src.close()


def _dbapi(services: Any) -> Any:
    """The DB-API module of the server's own connections (``sqlite.driver``):
    two SQLite libraries in one process must not open the same file, since
    closing a file in one drops the other's POSIX locks on it."""
    engine = getattr(getattr(services, "db", None), "engine", None)
    module = getattr(getattr(engine, "dialect", None), "dbapi", None)
    return module if hasattr(module, "connect") and hasattr(getattr(module, "Connection", None), "backup") else sqlite3


async def _run(*argv: str) -> None:
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate()
    if proc.returncode != 0:
        message = err.decode(errors="replace").strip().splitlines()
        raise BackupError(f"{Path(argv[0]).name} failed: {message[-1] if message else proc.returncode}")


async def backup(settings: Settings, plugins: Any, out: Path, *, logical: bool = False,
                 services: Any = None, full: bool = False) -> str:
    """Write a backup of the configured database to ``out`` (atomically;
    mode 0600). Returns the kind written: ``sqlite``, ``pg_dump`` or
    ``export``. ``full`` (implies ``logical``) adds the plugins' tables and the
    file objects."""
    url = settings["database.url"]
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite_path(url)
    if full or logical or (source is None and shutil.which("pg_dump") is None):
        if services is not None:  # inside the server: its own services
            await export_archive(services, out, full=full)
        else:
            async def work(opened: Any) -> None:
                await export_archive(opened, out, full=full)

            await _with_services(settings, plugins, work)
        return "export"
    partial = _private_file(out)
    try:
        if source is not None:
            if not source.is_file():
                raise BackupError(f"no database at {source}")
            partial.unlink()
            await asyncio.to_thread(_sqlite_copy, source, partial, _dbapi(services))
            os.chmod(partial, 0o600)
            kind = "sqlite"
        else:
            await _run(shutil.which("pg_dump") or "pg_dump", "--format=custom", "--no-owner", "--no-privileges",
                       f"--file={partial}", f"--dbname={libpq_url(url)}")
            kind = "pg_dump"
        partial.replace(out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return kind


async def _with_services(settings: Settings, plugins: Any, work: Any) -> Any:
    plugins, registry = prepare(settings, plugins)
    async with open_services(settings, plugins, registry) as services:
        return await work(services)


# -- restore ------------------------------------------------------------------------------

def kind_of(path: Path) -> str:
    with open(path, "rb") as f:
        head = f.read(16)
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PGDUMP_MAGIC):
        return "pg_dump"
    if head.startswith(ZIP_MAGIC):
        return "export"
    raise BackupError(f"{path.name} is not a workeros backup (not SQLite, pg_dump or an export archive)")


async def _pg_is_empty(url: str) -> bool:
    from sqlalchemy import inspect
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(make_url(url).set(drivername="postgresql+asyncpg"))
    try:
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda c: inspect(c).get_table_names())
    finally:
        await engine.dispose()
    return not names


async def restore(settings: Settings, plugins: Any, path: Path) -> str:
    """Restore ``path`` into the configured (empty) database. Returns its kind."""
    kind = kind_of(path)
    url = settings["database.url"]
    target = sqlite_path(url)
    if kind == "export":
        if target is not None and target.exists() and target.stat().st_size > 0:
            raise BackupError(f"{target} exists: restore fills an empty data dir; move it away first")

        async def work(services: Any) -> None:
            await import_archive(services, path)

        await _with_services(settings, plugins, work)
        return kind
    if kind == "sqlite":
        if target is None:
            raise BackupError("this is a SQLite backup; restore it into SQLite, or move between databases with "
                              "'workeros export' and 'workeros import'")
        if target.exists():
            raise BackupError(f"{target} exists: restore fills an empty data dir; move it away first")
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        partial.unlink(missing_ok=True)
        try:
            await asyncio.to_thread(_sqlite_copy, path, partial)
            partial.replace(target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return kind
    if target is not None:
        raise BackupError("this is a pg_dump backup; restore it into PostgreSQL, or move between databases with "
                          "'workeros export' and 'workeros import'")
    pg_restore = shutil.which("pg_restore")
    if pg_restore is None:
        raise BackupError("pg_restore is not installed (Debian: postgresql-client)")
    if not await _pg_is_empty(url):
        raise BackupError("the database is not empty: restore fills an empty database")
    await _run(pg_restore, "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
               f"--dbname={libpq_url(url)}", str(path))
    return kind


# -- the commands -------------------------------------------------------------------------

def _database_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database-url", dest="database_url", help="database URL (default: SQLite in the data dir)")


def _configure_backup(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="file to write")
    parser.add_argument("--logical", action="store_true",
                        help="write an export archive (restorable into either dialect) instead of a native copy")
    parser.add_argument("--full", action="store_true",
                        help="write a full export archive: also the plugins' tables and the stored file objects")
    _database_option(parser)


def _configure_restore(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="a file written by 'workeros backup'")
    _database_option(parser)


def _backup_command(args: argparse.Namespace, ctx: CommandContext) -> int:
    settings = ctx.settings.with_overrides(database__url=args.database_url)
    try:
        kind = asyncio.run(backup(settings, ctx.plugins, Path(args.out), logical=args.logical, full=args.full))
    except (BackupError, WorkerosError, OSError, sqlite3.Error) as exc:
        print(f"error: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 1
    print(f"backup ({kind}) written to {args.out}")
    return 0


def _restore_command(args: argparse.Namespace, ctx: CommandContext) -> int:
    settings = ctx.settings.with_overrides(database__url=args.database_url)
    path = Path(args.file)
    if not path.is_file():
        print(f"error: {args.file}: no such file", file=sys.stderr)
        return 1
    try:
        kind = asyncio.run(restore(settings, ctx.plugins, path))
    except (BackupError, WorkerosError, OSError, sqlite3.Error) as exc:
        print(f"error: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 1
    print(f"restored ({kind}) from {args.file}")
    return 0


# -- scheduled backups --------------------------------------------------------------------

def stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S.%fZ")


def scheduled_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob(f"{PREFIX}*.backup") if p.is_file())


def prune(folder: Path, keep: int) -> list[Path]:
    files = scheduled_files(folder)
    gone = files[:-keep] if keep > 0 else []
    for path in gone:
        path.unlink(missing_ok=True)
    return gone


async def scheduled_once(settings: Settings, plugins: Any, folder: Path, keep: int, services: Any = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{PREFIX}{stamp()}.backup"
    kind = await backup(settings, plugins, path, services=services)
    prune(folder, keep)
    log.info("scheduled backup (%s) written to %s", kind, path)
    return path


def _due_in(folder: Path, every: float) -> float:
    files = scheduled_files(folder)
    if not files:
        return 0.0
    age = dt.datetime.now(dt.UTC).timestamp() - files[-1].stat().st_mtime
    return max(0.0, every - age)


@hookimpl
def workeros_register_config_keys() -> list[ConfigKey]:
    return CONFIG_KEYS


@hookimpl
def workeros_register_commands() -> list[Command]:
    return [
        Command("backup", "Back up the database to one file (consistent while serving)", run=_backup_command,
                configure=_configure_backup),
        Command("restore", "Restore a backup into an empty data dir or database", run=_restore_command,
                configure=_configure_restore),
    ]


@hookimpl
def workeros_cleanup_contexts(app: web.Application) -> list[Any]:
    async def schedule(app: web.Application) -> AsyncIterator[None]:
        services = app[SERVICES]
        settings = services.settings
        folder = settings["backup.dir"]
        task = None
        if folder:
            every = float(settings["backup.interval_hours"]) * 3600
            keep = int(settings["backup.keep"])
            if every <= 0 or keep < 1:
                raise StartupError("backup.interval_hours must be above 0 and backup.keep at least 1")

            async def loop() -> None:
                while True:
                    await asyncio.sleep(_due_in(Path(folder), every))
                    try:
                        await scheduled_once(settings, services.plugins, Path(folder), keep, services)
                    except Exception:
                        log.exception("scheduled backup failed")
                        await asyncio.sleep(min(every, 300))

            task = asyncio.create_task(loop())
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    return [schedule]
