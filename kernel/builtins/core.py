"""The kernel's own settings and commands, registered like any plugin's."""

from __future__ import annotations

from workeros import commands
from workeros.hookspecs import hookimpl
from workeros.hookspecs.lifecycle import Command, ConfigKey
from workeros.registry import SELECTION_KEYS


@hookimpl
def workeros_register_config_keys() -> list[ConfigKey]:
    return list(SELECTION_KEYS)


@hookimpl
def workeros_register_commands() -> list[Command]:
    return commands.KERNEL_COMMANDS
