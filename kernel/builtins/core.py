"""The kernel's own settings and commands, registered like any plugin's."""

from __future__ import annotations

from workeros import commands
from workeros.hookspecs import hookimpl
from workeros.hookspecs.lifecycle import Command, ConfigKey
from workeros.registry import SELECTION_KEYS
from workeros.services import KERNEL_SERVICES, service_class


@hookimpl
def workeros_register_config_keys() -> list[ConfigKey]:
    keys = list(SELECTION_KEYS)
    for _, path in KERNEL_SERVICES:
        keys += list(getattr(service_class(path), "config_keys", ()))
    return keys


@hookimpl
def workeros_register_commands() -> list[Command]:
    return commands.KERNEL_COMMANDS
