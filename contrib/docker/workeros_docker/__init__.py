"""The container image and the compose file for the scaled shape.

The image runs ``workeros serve`` (the aiohttp runtime) as an unprivileged
user; this plugin registers the ``docker`` runtime name for it (the same
server, realtime included) and a ``workeros docker-files DIR`` command that
writes the ``Dockerfile``, ``compose.yaml`` and ``haproxy.cfg`` shipped with
it, for installs without the repository. See ``docs/deploy.md``.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from aiohttp import web

from workeros.hookspecs import hookimpl
from workeros.hookspecs.lifecycle import Command, CommandContext, Runtime

FILES = ("Dockerfile", "compose.yaml", "haproxy.cfg")
HERE = Path(__file__).parent


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", help="folder to write Dockerfile, compose.yaml and haproxy.cfg into")
    parser.add_argument("--force", action="store_true", help="replace files that exist")


def _write(args: argparse.Namespace, ctx: CommandContext) -> int:
    target = Path(args.dir)
    target.mkdir(parents=True, exist_ok=True)
    existing = [name for name in FILES if (target / name).exists()]
    if existing and not args.force:
        print(f"error: {', '.join(existing)} already in {target}; use --force to replace")
        return 1
    for name in FILES:
        shutil.copyfile(HERE / name, target / name)
        print(f"wrote {target / name}")
    return 0


def _serve_itself(app: web.Application) -> web.Application:
    return app


@hookimpl
def workeros_register_runtimes() -> list[Runtime]:
    return [Runtime(name="docker", factory=_serve_itself, realtime=True,
                    description="workeros serve inside the container image")]


@hookimpl
def workeros_register_commands() -> list[Command]:
    return [Command("docker-files", "Write the Dockerfile and compose files for the scaled shape", run=_write,
                    configure=_configure)]
