"""Lifecycle hooks: settings, CLI commands, resources with a lifetime, runtimes.

Order at boot (see :func:`workeros.http.app.create_app`):

1. plugins are loaded and registered, then ``check_pending()``;
2. :func:`workeros_register_config_keys` is called on every plugin and the settings
   are validated against the declared keys;
3. the registration hooks of every area are called and backends are selected;
4. the kernel's own database context is added to ``app.cleanup_ctx``, then every
   context from :func:`workeros_cleanup_contexts`, in plugin registration order;
5. transports are mounted, :func:`workeros_after_app_created` is called, the app
   freezes when the server starts.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import hookspec
from ._entries import Backend

if TYPE_CHECKING:
    from aiohttp import web

    from workeros.config import Settings


@dataclass(frozen=True)
class ConfigKey:
    """One setting a plugin (or the kernel) reads.

    ``name`` is dotted (``database.url``, ``saml.idp_metadata_url``). In the config
    file it is a TOML key path (``[saml] idp_metadata_url = ...``; a plugin's keys may
    also sit under ``[plugins.workeros-saml]``); in the environment it is
    ``WORKEROS_`` + the name upper-cased with dots as underscores
    (``WORKEROS_SAML_IDP_METADATA_URL``). ``type`` is one of ``str int float bool
    list dict``; values from the environment are coerced to it. Keys declared
    with ``secret=True`` are never printed or served back (the name is not
    guessed from: mark every secret explicitly).
    """

    name: str
    type: str = "str"
    default: Any = None
    description: str = ""
    secret: bool | None = None
    choices: Sequence[Any] = field(default_factory=tuple)


@dataclass(frozen=True)
class CommandContext:
    """What a command's ``run`` receives besides its parsed arguments."""

    settings: Settings
    plugins: Any  # workeros.plugins.Plugins


@dataclass(frozen=True)
class Command:
    """A ``workeros <name>`` subcommand.

    ``configure(parser)`` adds the command's arguments to its argparse parser.
    ``run(args, ctx)`` performs it and returns an exit code (``None`` means 0); it may
    return an awaitable, which the CLI runs to completion.
    """

    name: str
    help: str
    run: Callable[[argparse.Namespace, CommandContext], int | None | Awaitable[int | None]]
    configure: Callable[[argparse.ArgumentParser], None] | None = None


@dataclass(frozen=True)
class Runtime(Backend):
    """A way to run the app: the built-in aiohttp server, or a serverless adapter.

    ``factory(app)`` returns an object the deploy target calls (for the built-in
    ``aiohttp`` runtime, the app itself). ``realtime`` says whether long-lived
    streams work on this runtime.
    """

    realtime: bool = True


CleanupContext = Callable[["web.Application"], AsyncIterator[None]]


@hookspec
def workeros_register_config_keys() -> Sequence[ConfigKey]:
    """Declare the settings this plugin reads.

    Called once per boot, after every plugin is registered and before any backend is
    built. Keys present in the config file or environment that no plugin declares
    are reported as unknown (a warning; ``workeros config`` lists them).

    :return: the plugin's keys. Not firstresult: every plugin's keys are collected.

    .. versionadded:: 0.1

    Example::

        @hookimpl
        def workeros_register_config_keys():
            return [ConfigKey("hello.greeting", "str", "hello", "What /hello says")]
    """


@hookspec
def workeros_register_commands() -> Sequence[Command]:
    """Add subcommands to the ``workeros`` command line.

    Called when the CLI builds its parser, after plugins are loaded. A command name
    that is already taken (by the kernel or another plugin) is an error naming both.

    :return: the plugin's commands. Not firstresult.

    .. versionadded:: 0.1

    Example::

        @hookimpl
        def workeros_register_commands():
            return [Command("hello", "Print a greeting", run=lambda args, ctx: print("hi"))]
    """


@hookspec
def workeros_cleanup_contexts(app: web.Application) -> Sequence[CleanupContext]:
    """Resources with a lifetime: pools, brokers, sandboxes, background tasks.

    Called once while the app is built. Each returned function has aiohttp's
    ``cleanup_ctx`` shape: it sets up, ``yield``\\ s once, then tears down. They run
    after the kernel's own context (database, services are ready under
    ``app[workeros.http.keys.SERVICES]``), in plugin registration order; teardown runs in
    reverse and only for contexts whose setup succeeded.

    :param app: the root application being built.
    :return: the plugin's contexts. Not firstresult.

    .. versionadded:: 0.1

    Example::

        @hookimpl
        def workeros_cleanup_contexts(app):
            async def ticker(app):
                task = asyncio.create_task(tick())
                yield
                task.cancel()
            return [ticker]
    """


@hookspec
def workeros_register_runtimes() -> Sequence[Runtime]:
    """Register deploy runtimes (the aiohttp server, serverless adapters).

    Called once per boot. The runtime named by the ``runtime`` setting is used; the
    default is the built-in ``aiohttp`` runtime that ``workeros serve`` runs.

    :return: runtime entries. Not firstresult.

    .. versionadded:: 0.1

    Example::

        @hookimpl
        def workeros_register_runtimes():
            return [Runtime(name="lambda", factory=make_lambda_handler, realtime=False)]
    """


@hookspec
def workeros_after_app_created(app: web.Application) -> None:
    """The root app is built; the last chance to add routes or middlewares.

    Called once, after every transport is mounted and before the app freezes. Hooks
    may return an awaitable.

    :param app: the root application.
    :return: nothing (an awaitable is awaited). Not firstresult: every plugin's
        implementation runs, in registration order.

    .. versionadded:: 0.1

    Example::

        @hookimpl
        def workeros_after_app_created(app):
            app.router.add_get("/hello", hello)
    """


@dataclass(frozen=True)
class Migrations:
    """A plugin's own system tables, migrated with Alembic.

    ``name`` is the plugin's Alembic branch label; ``location`` the directory of
    its revision files. The branch's first revision has ``down_revision = None``,
    ``branch_labels = ("<name>",)`` and may ``depends_on`` a kernel revision it
    needs (``"0005"`` for the kernel's tables as of this release). Tables are
    named ``wos_<something>``. The kernel upgrades every installed branch to its
    head when the database opens (``workeros migrate`` does the same).
    """

    name: str
    location: str


@dataclass(frozen=True)
class ServiceEntry:
    """A service a plugin adds beside the kernel's.

    ``factory(services)`` builds it (may return an awaitable) once the kernel
    services are open; the object may define ``async close()``, called in
    reverse order at shutdown. It is reachable as ``services.extra[name]`` (and
    :meth:`workeros.services.Services.get`) from every way in, so other plugins
    can use it without importing the plugin that provides it.
    """

    name: str
    factory: Callable[[Any], Any]


@hookspec
def workeros_register_migrations() -> Sequence[Migrations]:
    """Register a plugin's Alembic migrations for its own system tables.

    Called once when the database is opened, before any service. Every branch
    is upgraded to its head; a branch whose plugin is later removed stays in
    the database untouched.

    :return: migration directories. Not firstresult.

    .. versionadded:: 0.2

    Example::

        @hookimpl
        def workeros_register_migrations():
            return [Migrations("files", str(Path(__file__).parent / "migrations"))]
    """


@hookspec
def workeros_register_services() -> Sequence[ServiceEntry]:
    """Register services that run beside the kernel's (files, flows, functions…).

    Called once per boot; each factory is called after the kernel services are
    open, in plugin order, and may use any service opened before it.

    :return: service entries. Not firstresult.

    .. versionadded:: 0.2

    Example::

        @hookimpl
        def workeros_register_services():
            return [ServiceEntry("files", FilesService.open)]
    """
