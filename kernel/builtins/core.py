"""The kernel's own settings, commands and system collections, registered like
any plugin's."""

from __future__ import annotations

from workeros import commands
from workeros.accounts.bootstrap import BOOTSTRAP_KEYS
from workeros.hookspecs import hookimpl
from workeros.hookspecs.data import SystemCollection
from workeros.hookspecs.lifecycle import Command, ConfigKey
from workeros.http.cors import CORS_KEYS
from workeros.outbound import Outbound
from workeros.registry import SELECTION_KEYS
from workeros.schema.model import Field
from workeros.services import KERNEL_SERVICES, service_class


@hookimpl
def workeros_register_config_keys() -> list[ConfigKey]:
    keys = list(SELECTION_KEYS) + list(Outbound.config_keys) + list(CORS_KEYS) + list(BOOTSTRAP_KEYS)
    for _, path in KERNEL_SERVICES:
        keys += list(getattr(service_class(path), "config_keys", ()))
    return keys


@hookimpl
def workeros_register_commands() -> list[Command]:
    return commands.KERNEL_COMMANDS


@hookimpl
def workeros_register_system_collections() -> list[SystemCollection]:
    """``wos_users`` as a collection: user collections may point at users
    (``author`` → ``wos_users``, ``fields=author.email``), and reading users
    through a relation follows the permission rows on ``wos_users``.
    Credentials (password hash, TOTP secret) are not fields: nothing can select
    them. Users are written through ``/api/users`` and the accounts service."""
    return [SystemCollection("wos_users", note="Users (written through /api/users)", fields=[
        Field("id", "string", nullable=False, primary_key=True, options={"length": 36}),
        Field("email", "string", nullable=False, unique=True),
        Field("first_name", "string", options={"length": 128}),
        Field("last_name", "string", options={"length": 128}),
        Field("role", "string", options={"length": 36}),
        Field("status", "string", nullable=False, options={"length": 16}),
        Field("email_verified", "boolean", nullable=False),
        Field("created_at", "datetime", nullable=False),
        Field("last_login_at", "datetime"),
    ])]
