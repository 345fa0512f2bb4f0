"""The kernel's CLI commands: serve, migrate, plugins, config. Registered through
``workeros_register_commands`` by the core built-in plugin, like any plugin's."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from workeros.hookspecs.lifecycle import Command, CommandContext


def _configure_serve(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default 8055)")
    parser.add_argument("--database-url", dest="database_url", help="database URL (default: SQLite in the data dir)")
    parser.add_argument("--workers", type=int, help="worker processes sharing the port (default 1)")
    parser.add_argument("--reuse-port", dest="reuse_port", action="store_true", help=argparse.SUPPRESS)


def _serve(args: argparse.Namespace, ctx: CommandContext) -> int:
    from workeros.server import serve

    settings = ctx.settings.with_overrides(
        server__host=args.host, server__port=args.port, database__url=args.database_url,
        server__workers=args.workers,
    )
    return serve(settings, ctx.plugins, reuse_port=args.reuse_port)


def _configure_database(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database-url", dest="database_url", help="database URL (default: SQLite in the data dir)")


def _migrate(args: argparse.Namespace, ctx: CommandContext) -> int:
    from workeros import migrate
    from workeros.app import prepare
    from workeros.plugins import await_me_maybe

    settings = ctx.settings.with_overrides(database__url=args.database_url)

    async def run() -> str | None:
        _, registry = prepare(settings, ctx.plugins)
        db = await await_me_maybe(registry.get("db").factory(settings["database.url"], settings))
        try:
            await migrate.upgrade(db)
            return await migrate.current(db)
        finally:
            await db.close()

    revision = asyncio.run(run())
    print(f"database is at revision {revision}")
    return 0


def _configure_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON")


def _plugins(args: argparse.Namespace, ctx: CommandContext) -> int:
    from workeros.app import prepare

    _, registry = prepare(ctx.settings, ctx.plugins)
    listing = ctx.plugins.listing()
    if args.json:
        print(json.dumps({"plugins": listing, "backends": registry.summary(), "warnings": ctx.plugins.warnings},
                         indent=2, default=str))
        return 0
    for row in listing:
        where = f"{row['distribution']} {row['version']}" if row["distribution"] else row["origin"]
        status = "FAILED" if row["error"] else "ok"
        print(f"{row['name']:<28} {where:<32} {status}")
        if row["hooks"]:
            print(f"    hooks: {', '.join(row['hooks'])}")
        for backend in row["backends"]:
            mark = "*" if backend["active"] else " "
            print(f"  {mark} {backend['area']}: {backend['name']}"
                  + (f" (unavailable: {backend['unavailable']})" if backend.get("unavailable") else ""))
        if row["error"]:
            print("    " + row["error"].rstrip().replace("\n", "\n    "))
    for warning in ctx.plugins.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def _config(args: argparse.Namespace, ctx: CommandContext) -> int:
    from workeros.app import prepare

    prepare(ctx.settings, ctx.plugins)
    rows = ctx.settings.describe()
    unknown = ctx.settings.unknown()
    if args.json:
        out: dict[str, Any] = {
            "file": str(ctx.settings.file_path) if ctx.settings.file_path else None,
            "settings": [row.__dict__ for row in rows],
            "unknown": [{"source": s, "name": n} for s, n in unknown],
        }
        print(json.dumps(out, indent=2, default=str))
        return 0
    print(f"# config file: {ctx.settings.file_path or '(none)'}")
    for row in rows:
        value = json.dumps(row.value, default=str)
        print(f"{row.name} = {value}  # {row.source}, {row.owner}")
    for source, name in unknown:
        print(f"# unknown ({source}): {name}")
    return 0


KERNEL_COMMANDS: list[Command] = [
    Command("serve", "Serve the API", run=_serve, configure=_configure_serve),
    Command("migrate", "Create or upgrade the system tables", run=_migrate, configure=_configure_database),
    Command("plugins", "List plugins, their hooks and backends", run=_plugins, configure=_configure_json),
    Command("config", "Print the effective settings and where each comes from", run=_config,
            configure=_configure_json),
]
