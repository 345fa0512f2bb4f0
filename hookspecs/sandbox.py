"""Function sandboxes: where user-written functions run, away from the server."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from . import hookspec
from ._entries import Backend


class Sandbox(Protocol):
    async def run(
        self, source: str, *, entry: str, args: Any, timeout_ms: int, memory_mb: int
    ) -> Any:
        """Run ``entry`` from ``source`` with ``args``; raise on timeout or error.

        The sandbox enforces the deadline and memory cap itself: CPU-bound user code
        must never block the event loop.
        """


@dataclass(frozen=True)
class SandboxBackend(Backend):
    """A sandbox. ``factory(settings) -> Sandbox`` (may be awaitable)."""


@hookspec
def workeros_register_sandboxes() -> Sequence[SandboxBackend]:
    """Register function sandboxes.

    Called once per boot. The sandbox named by ``functions.sandbox`` is used;
    without it, the available sandbox with the highest priority.

    :return: sandbox entries. Not firstresult.

    .. versionadded:: 0.1

    Example::

        @hookimpl
        def workeros_register_sandboxes():
            return [SandboxBackend(name="quickjs", factory=QuickJS, priority=10, check=_wasmtime_missing)]
    """
