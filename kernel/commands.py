"""The kernel's CLI commands: serve, migrate, plugins, config, schema
(snapshot, diff, apply), export and import. Registered through
``workeros_register_commands`` by the core built-in plugin, like any plugin's."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from workeros.hookspecs.lifecycle import Command, CommandContext

T = TypeVar("T")


def _configure_serve(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default 8055)")
    parser.add_argument("--database-url", dest="database_url", help="database URL (default: SQLite in the data dir)")
    parser.add_argument("--workers", type=int, help="worker processes sharing the port (default 1)")
    parser.add_argument("--reuse-port", dest="reuse_port", action="store_true", help=argparse.SUPPRESS)


def _serve(args: argparse.Namespace, ctx: CommandContext) -> int:
    from workeros.http.server import serve

    settings = ctx.settings.with_overrides(
        server__host=args.host, server__port=args.port, database__url=args.database_url,
        server__workers=args.workers,
    )
    return serve(settings, ctx.plugins, reuse_port=args.reuse_port)


def _configure_database(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database-url", dest="database_url", help="database URL (default: SQLite in the data dir)")


def _migrate(args: argparse.Namespace, ctx: CommandContext) -> int:
    from workeros.db import migrate
    from workeros.http.app import prepare
    from workeros.plugins import await_me_maybe

    settings = ctx.settings.with_overrides(database__url=args.database_url)

    async def run() -> dict[str, tuple[str | None, str | None]]:
        plugins, registry = prepare(settings, ctx.plugins)
        db = await await_me_maybe(registry.get("db").factory(settings["database.url"], settings))
        try:
            await migrate.upgrade(db, plugins=plugins)
            return await migrate.status(db, plugins)
        finally:
            await db.close()

    chains = asyncio.run(run())
    print(f"database is at revision {chains.pop('workeros')[0]}")
    for name, (revision, _) in chains.items():
        print(f"{name} is at revision {revision}")
    return 0


def _configure_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON")


def _configure_plugins(parser: argparse.ArgumentParser) -> None:
    _configure_json(parser)
    actions = parser.add_subparsers(dest="plugins_action", metavar="action")
    check = actions.add_parser("check", help="lint a plugin distribution before it is listed",
                               description="Check a plugin distribution: its workeros entry points import, its "
                               "hooks are valid against the specs, it carries the Framework :: workeros "
                               "classifier and a version bound on workeros. Exit status 1 on any error.")
    check.add_argument("dist", help="installed distribution name, .whl file or source folder with setup.cfg")
    check.add_argument("--json", action="store_true", help="print JSON")
    listing = actions.add_parser("listing", help="build a static plugin listing (JSON and HTML)",
                                 description="Build a static listing of the installed plugins and those a curated "
                                 "index names: index.json, index.html and one page per plugin.")
    listing.add_argument("--index", help="curated index file (TOML or JSON, see docs/marketplace.md)")
    listing.add_argument("--out", required=True, help="output folder")


def _plugins(args: argparse.Namespace, ctx: CommandContext) -> int:
    if args.plugins_action == "check":
        return _plugins_check(args)
    if args.plugins_action == "listing":
        return _plugins_listing(args)
    from workeros.http.app import prepare

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


def _plugins_check(args: argparse.Namespace) -> int:
    from workeros.sdk import plugincheck

    try:
        meta, described, findings = plugincheck.check(args.dist)
    except LookupError as exc:
        return _failed(exc)
    errors = [f for f in findings if f.level == "error"]
    if args.json:
        print(json.dumps({"distribution": meta.name, "version": meta.version, "ok": not errors,
                          "hooks": described.hooks, "backends": described.backends,
                          "settings": described.settings, "findings": plugincheck.findings_json(findings)},
                         indent=2, default=str))
    else:
        print(f"{meta.name} {meta.version}: {len(described.hooks)} hooks, {len(described.backends)} backends, "
              f"{len(described.settings)} settings")
        for finding in findings:
            print(f"  {finding.level}: [{finding.code}] " + finding.message.rstrip().replace("\n", "\n    "))
        print("ok" if not errors else f"{len(errors)} error(s): not listable")
    return 1 if errors else 0


def _plugins_listing(args: argparse.Namespace) -> int:
    from workeros.sdk import listing

    try:
        built = listing.build(Path(args.index) if args.index else None)
        listing.write(built, Path(args.out))
    except (listing.ListingIndexError, OSError) as exc:
        return _failed(exc)
    failing = [p["distribution"] for p in built["plugins"] if not p["listable"]]
    print(f"{built['count']} plugins listed in {args.out}"
          + (f"; failing the check: {', '.join(failing)}" if failing else ""))
    return 0


def _configure_new_plugin(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="plugin name (lower case; the distribution is workeros-plugin-NAME)")
    parser.add_argument("--dir", default=".", help="create the distribution folder in this folder (default: .)")


def _new_plugin(args: argparse.Namespace, ctx: CommandContext) -> int:
    from workeros import __version__
    from workeros.sdk import scaffold

    try:
        target = scaffold.write(args.name, Path(args.dir), __version__)
    except (ValueError, OSError) as exc:
        return _failed(exc)
    print(f"created {target}\n  cd {target} && pip install -e '.[test]' && pytest\n"
          f"  workeros plugins check {target}")
    return 0


def _config(args: argparse.Namespace, ctx: CommandContext) -> int:
    from workeros.http.app import prepare

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


# -- commands that work on an instance's data ---------------------------------------------

def _with_services(args: argparse.Namespace, ctx: CommandContext, work: Callable[[Any], Awaitable[T]]) -> T:
    """Open the services on the configured database (migrating it first, as the
    server does) and run ``work(services)``."""
    from workeros.http.app import prepare
    from workeros.services import open_services

    settings = ctx.settings.with_overrides(database__url=getattr(args, "database_url", None))

    async def run() -> T:
        plugins, registry = prepare(settings, ctx.plugins)
        async with open_services(settings, plugins, registry) as services:
            return await work(services)

    return asyncio.run(run())


def _failed(exc: Exception) -> int:
    print(f"error: {getattr(exc, 'message', exc)}", file=sys.stderr)
    return 1


def _read_document(source: str) -> str:
    if source == "-":
        return sys.stdin.read()
    return Path(source).read_text(encoding="utf-8")


def _describe_op(op: dict[str, Any]) -> str:
    where = op.get("target") or op["collection"] + (f".{op['field']}" if op.get("field") else "")
    return f"{op['op']} {where}" + (f" [{op['section']}]" if op.get("section") else "")


def _print_ops(ops: list[dict[str, Any]], as_json: bool, done: str) -> None:
    if as_json:
        print(json.dumps(ops, indent=2, default=str))
        return
    for op in ops:
        print(_describe_op(op))
    print(f"{done} {len(ops)} operation{'' if len(ops) == 1 else 's'}" if ops else "no changes")


def _configure_schema(parser: argparse.ArgumentParser) -> None:
    from workeros.cli import global_options

    actions = parser.add_subparsers(dest="schema_action", metavar="action", required=True)
    snap = actions.add_parser("snapshot", help="print the schema as a portable YAML (or JSON) document")
    snap.add_argument("--json", action="store_true", help="print JSON instead of YAML")
    snap.add_argument("-o", "--output", help="write the document to this file instead of standard output")
    snap.add_argument("--include-access", dest="include_access", action="store_true",
                      help="add roles and permissions (the access section)")
    diff = actions.add_parser("diff", help="list the operations that would make the schema match a snapshot")
    apply = actions.add_parser("apply", help="make the schema match a snapshot (all or nothing)")
    for action in (diff, apply):
        action.add_argument("file", help="snapshot file, YAML or JSON ('-' reads standard input)")
        action.add_argument("--json", action="store_true", help="print the operations as JSON")
    apply.add_argument("-y", "--yes", action="store_true",
                       help="apply changes that delete data or access (dropped collections, fields, relations, "
                            "roles, permissions) without asking")
    for action in (snap, diff, apply):
        global_options(action)  # --data-dir and friends after the action too
        _configure_database(action)


def _schema(args: argparse.Namespace, ctx: CommandContext) -> int:
    from workeros.accountability import Accountability
    from workeros.errors import WorkerosError
    from workeros.schema import snapshot

    acc = Accountability.system()
    try:
        if args.schema_action == "snapshot":
            include = ("access",) if args.include_access else ()
            doc = _with_services(args, ctx, lambda services: services.schema.snapshot(acc, include))
            text = json.dumps(doc, indent=2) + "\n" if args.json else snapshot.dump_yaml(doc)
            if args.output:
                Path(args.output).write_text(text, encoding="utf-8")
            else:
                sys.stdout.write(text)
            return 0
        document = snapshot.load_text(_read_document(args.file))
        if args.schema_action == "diff":
            ops = _with_services(args, ctx, lambda services: services.schema.diff(acc, document))
            _print_ops(ops, args.json, "would run")
        else:
            if not args.yes:
                planned = _with_services(args, ctx, lambda services: services.schema.diff(acc, document))
                destructive = [op for op in planned if op["op"].startswith("delete_")]
                if destructive and not _confirm(destructive, from_stdin=args.file == "-"):
                    return 1
            ops = _with_services(args, ctx, lambda services: services.schema.apply_snapshot(acc, document))
            _print_ops(ops, args.json, "applied")
    except (WorkerosError, OSError) as exc:
        return _failed(exc)
    return 0


def _progress_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="show a progress bar on standard error (default: when it is a terminal)")


class _Bar:
    """A tqdm progress bar in rows (on standard error; off when it is not a
    terminal unless --progress)."""

    def __init__(self, enabled: bool | None, label: str) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.label = label
        self.bar: Any = None

    def start(self, total: int) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        self.bar = tqdm(total=total, unit=" rows", unit_scale=True, desc=self.label, file=sys.stderr,
                        dynamic_ncols=True, mininterval=0.2)

    def advance(self, rows: int) -> None:
        if self.bar is not None:
            self.bar.update(rows)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _confirm(destructive: list[dict[str, Any]], *, from_stdin: bool) -> bool:
    """Ask before deleting; without a terminal to ask on, refuse (use --yes)."""
    print(f"This deletes {len(destructive)} thing{'' if len(destructive) == 1 else 's'}, with their data:",
          file=sys.stderr)
    for op in destructive:
        print(f"  {_describe_op(op)}", file=sys.stderr)
    if from_stdin or not sys.stdin.isatty():
        print("error: refusing to delete without confirmation; run again with --yes", file=sys.stderr)
        return False
    try:
        answer = input("Apply? [y/N] ")
    except EOFError:
        answer = ""
    if answer.strip().lower() not in ("y", "yes"):
        print("nothing applied", file=sys.stderr)
        return False
    return True


def _configure_export(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="archive to write (a ZIP file)")
    parser.add_argument("--no-secrets", dest="secrets", action="store_false",
                        help="leave out password hashes, TOTP secrets, API keys and the token-signing secret")
    parser.add_argument("--full", action="store_true",
                        help="also carry every plugin's data: webhooks, flows, functions, file rows and the "
                             "stored file objects")
    _progress_option(parser)
    _configure_database(parser)


SECRETS_WARNING = ("warning: {file} holds secrets: password hashes, TOTP secrets, API key hashes and the "
                   "token-signing secret. It is readable by you only (mode 0600); keep it that way, or "
                   "export with --no-secrets.")


def _export(args: argparse.Namespace, ctx: CommandContext) -> int:
    from workeros.errors import WorkerosError
    from workeros.schema import transfer

    bar = _Bar(args.progress, "export")
    try:
        manifest = _with_services(args, ctx, lambda services: transfer.export_archive(
            services, args.file, secrets=args.secrets, progress=bar, full=args.full))
    except (WorkerosError, OSError) as exc:
        return _failed(exc)
    finally:
        bar.close()
    rows = sum(entry["rows"] for entry in manifest["collections"].values())
    print(f"exported {len(manifest['collections'])} collections ({rows} rows) and "
          f"{len(manifest['system'])} system tables to {args.file}")
    if manifest["sections"]:
        print(f"with the data of: {_describe_sections(manifest)}")
    if args.secrets:
        print(SECRETS_WARNING.format(file=args.file), file=sys.stderr)
    else:
        print("secrets left out: users sign in again after a password reset; API keys are not carried",
              file=sys.stderr)
    return 0


def _describe_sections(manifest: dict[str, Any]) -> str:
    parts = []
    for name, entry in sorted(manifest["sections"].items()):
        rows = sum(t["rows"] for t in (entry.get("tables") or {}).values())
        content = entry.get("content") or {}
        extra = f", {content['objects']} objects" if "objects" in content else ""
        parts.append(f"{name} ({rows} rows{extra})")
    return ", ".join(parts)


def _configure_import(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="archive written by 'workeros export'")
    parser.add_argument("--full", action="store_true",
                        help="refuse an archive written without --full (the whole instance is expected); "
                             "plugin data and files in an archive are restored either way")
    _progress_option(parser)
    _configure_database(parser)


def _import(args: argparse.Namespace, ctx: CommandContext) -> int:
    import zipfile

    from workeros.errors import WorkerosError
    from workeros.schema import transfer

    if not Path(args.file).is_file():
        return _failed(OSError(f"{args.file}: no such file"))
    bar = _Bar(args.progress, "import")
    try:
        manifest = _with_services(args, ctx, lambda services: transfer.import_archive(
            services, args.file, progress=bar, full=args.full))
    except (WorkerosError, OSError, zipfile.BadZipFile) as exc:
        return _failed(exc)
    finally:
        bar.close()
    rows = sum(entry["rows"] for entry in manifest["collections"].values())
    print(f"imported {len(manifest['collections'])} collections ({rows} rows) from {args.file}")
    if manifest.get("sections"):
        print(f"with the data of: {_describe_sections(manifest)}")
    return 0


def _configure_typegen(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lang", choices=("python", "typescript"), required=True, help="language of the types")
    parser.add_argument("--role", help="only what this role (name or id) may read")
    parser.add_argument("--out", help="write to this file (default: standard output)")
    parser.add_argument("--url", help="read the schema from a running server (with --token, an admin's)")
    parser.add_argument("--token", help="access token or API key for --url")
    parser.add_argument("--snapshot", help="read the schema from a snapshot file (YAML or JSON)")
    _configure_database(parser)


def _typegen(args: argparse.Namespace, ctx: CommandContext) -> int:
    from workeros.errors import WorkerosError
    from workeros.sdk import typegen

    try:
        if args.snapshot:
            doc = typegen.load_document(_read_document(args.snapshot))
        elif args.url:
            doc = _remote_snapshot(args.url, args.token)
        else:
            from workeros.accountability import Accountability

            doc = _with_services(args, ctx, lambda services: services.schema.snapshot(
                Accountability.system(), ("access",) if args.role else ()))
        text = typegen.generate(doc, args.lang, args.role)
    except (WorkerosError, OSError, ValueError) as exc:
        return _failed(exc)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def _remote_snapshot(url: str, token: str | None) -> dict[str, Any]:
    import urllib.error
    import urllib.request

    from workeros.sdk import typegen

    request = urllib.request.Request(url.rstrip("/") + "/api/schema/snapshot?include=access",
                                     headers={"Accept": "application/json",
                                              **({"Authorization": f"Bearer {token}"} if token else {})})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 (the operator's URL)
            return typegen.load_document(response.read().decode())
    except urllib.error.HTTPError as exc:
        raise OSError(f"{url}: HTTP {exc.code} (an admin's --token is needed)") from None


KERNEL_COMMANDS: list[Command] = [
    Command("serve", "Serve the API", run=_serve, configure=_configure_serve),
    Command("migrate", "Create or upgrade the system tables", run=_migrate, configure=_configure_database),
    Command("plugins", "List plugins, their hooks and backends; check a plugin; build a listing", run=_plugins,
            configure=_configure_plugins),
    Command("new-plugin", "Create a plugin distribution to start from", run=_new_plugin,
            configure=_configure_new_plugin),
    Command("config", "Print the effective settings and where each comes from", run=_config,
            configure=_configure_json),
    Command("schema", "Snapshot the schema, or diff or apply a snapshot", run=_schema, configure=_configure_schema),
    Command("export", "Write the schema, every row and the system data to one archive", run=_export,
            configure=_configure_export),
    Command("import", "Restore an archive into an empty instance (all or nothing)", run=_import,
            configure=_configure_import),
    Command("typegen", "Generate Python or TypeScript types for the collections", run=_typegen,
            configure=_configure_typegen),
]
