"""Function sandboxes: where user-written functions run, away from the server."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from . import hookspec
from ._entries import Backend


class Host(Protocol):
    """The host bridge one invocation may use (``ctx.db``, ``ctx.fetch``,
    ``ctx.email``, ``ctx.log``), already limited to the caller's accountability.

    ``call(name, args)`` runs a bridge operation (``db.read``, ``db.create``,
    ``db.update``, ``db.delete``, ``fetch``, ``email``) and returns a JSON-ready
    value, or raises a ``WorkerosError`` whose code and message the sandbox
    throws in JavaScript. ``log(text)`` records one ``ctx.log`` line (the host
    caps their number and size).
    """

    async def call(self, name: str, args: list[Any]) -> Any: ...

    def log(self, text: str) -> None: ...


class Sandbox(Protocol):
    async def run(
        self, source: str, *, entry: str, args: Any, timeout_ms: int, memory_mb: int, host: Host | None = None
    ) -> Any:
        """Run ``entry`` (``"default"``: the module's default export) from the ES
        module ``source`` as ``entry(req, ctx)``; ``args`` is ``{"req", "user",
        "env"}`` and ``host`` the bridge behind ``ctx``. Returns the (awaited)
        return value as JSON-ready data.

        Raises ``FunctionError`` for a throw (its message), a syntax error or the
        memory budget, ``FunctionTimeout`` past ``timeout_ms``. The sandbox
        enforces the deadline and memory cap itself: CPU-bound user code must
        never block the event loop, and nothing survives from one run to the next.
        """


@dataclass(frozen=True)
class SandboxBackend(Backend):
    """A sandbox. ``factory(settings) -> Sandbox`` (may be awaitable); the object
    may define ``async close()``, called at shutdown, and ``check_syntax(source)``
    returning ``None`` or ``(message, line, column)``."""


@hookspec
def workeros_register_sandboxes() -> Sequence[SandboxBackend]:
    """Register function sandboxes.

    Called once per boot. The sandbox named by ``functions.sandbox`` is used;
    without it, the available sandbox with the highest priority. A function may
    name another registered sandbox (its ``sandbox`` field).

    :return: sandbox entries. Not firstresult.

    .. versionadded:: 0.1

    Example::

        @hookimpl
        def workeros_register_sandboxes():
            return [SandboxBackend(name="quickjs", factory=QuickJS, priority=10, check=_wasmtime_missing)]
    """
