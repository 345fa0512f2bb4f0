"""Typed entries shared by the registration hooks.

Every ``workeros_register_<things>()`` hook returns a list of entries derived from
:class:`Backend`. The kernel's registry collects them per area, refuses two entries
with one name from different distributions, and picks the active one(s).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .lifecycle import ConfigKey


@dataclass(frozen=True)
class Backend:
    """A named implementation of one area (a dialect, a storage backend, ...).

    ``name``
        Unique within its area. Two distributions registering the same name is a
        startup error naming both.
    ``factory``
        Builds the backend. Its signature is fixed by the area's hook spec.
    ``priority``
        Used when the area auto-selects: the available entry with the highest
        priority wins.
    ``check``
        Optional callable returning ``None`` when the backend can run here, or a
        human-readable reason it cannot (for example a missing optional
        dependency). Called at most once per boot.
    ``config_keys``
        Settings this backend reads; declared like any plugin setting.
    """

    name: str
    factory: Callable[..., Any]
    priority: int = 0
    check: Callable[[], str | None] | None = None
    config_keys: Sequence[ConfigKey] = field(default_factory=tuple)
    description: str = ""

    def unavailable_reason(self) -> str | None:
        if self.check is None:
            return None
        return self.check()
