"""``workeros`` command line. Subcommands come from ``workeros_register_commands``
(the kernel's own included), so plugins extend the CLI the same way."""

from __future__ import annotations

import argparse
import asyncio
import inspect
import logging
import sys
from collections.abc import Sequence


def _version_text() -> str:
    from workeros import __version__
    from workeros.plugins import installed_plugin_versions

    lines = [f"workeros {__version__}"]
    lines += [f"  {name:<24} {dist} {version}" for name, dist, version in installed_plugin_versions()]
    return "\n".join(lines)


def global_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML config file (default: workeros.toml in the data dir)")
    parser.add_argument("--data-dir", dest="data_dir", help="data directory (default ./.workeros)")
    parser.add_argument("--plugins-dir", dest="plugins_dir", help="load single-file plugins from this folder")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--version" in argv or "-V" in argv:
        print(_version_text())
        return 0

    from workeros.config import Settings
    from workeros.errors import StartupError
    from workeros.hookspecs.lifecycle import CommandContext
    from workeros.http.app import declare_settings
    from workeros.logs import configure_logging
    from workeros.plugins import Plugins

    pre = argparse.ArgumentParser(add_help=False)
    global_options(pre)
    known, _ = pre.parse_known_args(argv)
    try:
        settings = Settings.load(cli={"config": known.config, "data_dir": known.data_dir,
                                      "plugins_dir": known.plugins_dir})
        configure_logging(settings["log.level"], settings["log.format"])
        plugins = Plugins.from_settings(settings)
        declare_settings(settings, plugins)
        commands = {}
        owners = {}
        for info, entries in plugins.collect("workeros_register_commands"):
            for command in entries:
                if command.name in commands:
                    raise StartupError(f"command {command.name!r} is registered by both "
                                       f"{owners[command.name]} and {info.distribution or info.name}")
                commands[command.name] = command
                owners[command.name] = info.distribution or info.name
    except StartupError as exc:
        print(f"workeros: {exc}", file=sys.stderr)
        return 2

    parser = argparse.ArgumentParser(prog="workeros", description="The backend you compose from plugins.")
    parser.add_argument("-V", "--version", action="store_true", help="print versions of workeros and its plugins")
    global_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="command")
    for name in sorted(commands):
        command = commands[name]
        sp = sub.add_parser(name, help=command.help, description=command.help)
        global_options(sp)
        if command.configure is not None:
            command.configure(sp)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    command = commands[args.command]
    try:
        result = command.run(args, CommandContext(settings=settings, plugins=plugins))
        if inspect.isawaitable(result):
            result = asyncio.run(_await(result))
    except StartupError as exc:
        logging.getLogger("workeros").debug("startup error", exc_info=True)
        print(f"workeros: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into head & co.
        sys.stderr.close()
        return 0
    return int(result or 0)


async def _await(awaitable):  # type: ignore[no-untyped-def]
    return await awaitable
