"""The ``quickjs`` sandbox (DESIGN §6 "Functions"): QuickJS compiled to
WebAssembly (the ``quickjs-rs`` distribution: rquickjs in a wasm guest) run
under wasmtime.

Every invocation gets a fresh wasm instance (its own store and linear memory,
~1 MB at start), so nothing survives from one run to the next. Limits are the
engine's, not the code's good will: the wall-clock budget through QuickJS's
interrupt poll, memory through QuickJS's allocator limit *and* a wasmtime store
limit on linear-memory growth, and the call stack through wasmtime's stack
limit (a deep recursion traps the instance, which is then thrown away).

Runs happen on worker threads, each with its own event loop (the guest is
single-threaded and pinned to the thread that made it), so a busy function
never holds the server's event loop; bridge calls hop back to the server's
loop. See ``docs/functions.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from importlib import resources
from typing import Any

from workeros.api import FunctionError, FunctionTimeout, WorkerosError, dumps_str, jsonable, loads, setting_or
from workeros.hookspecs import hookimpl
from workeros.hookspecs.lifecycle import ConfigKey
from workeros.hookspecs.sandbox import Host, SandboxBackend

log = logging.getLogger("workeros.quickjs")

MB = 1024 * 1024
#: Linear memory the guest has before any user code runs, allowed on top of memory_mb.
BASE_MEMORY = 4 * MB
SYNTAX_TIMEOUT = 1.0
_LOCATION = re.compile(r":(\d+):(\d+)")

CONFIG_KEYS = [
    ConfigKey("quickjs.workers", "int", 2,
              "Threads that run quickjs functions (each runs many invocations; a CPU-bound one holds its thread "
              "until its time budget ends)"),
]


def _missing() -> str | None:
    try:
        import quickjs_rs  # noqa: F401
    except ImportError:
        return "the quickjs-rs distribution is not installed (pip install quickjs-rs)"
    return None


def _driver() -> str:
    return resources.files(__package__).joinpath("driver.js").read_text(encoding="utf-8")


class _Worker:
    """One thread with its own event loop, where guests are made and run."""

    def __init__(self, name: str) -> None:
        from quickjs_rs import ThreadWorker

        self.thread = ThreadWorker(name=name)
        #: Whether the thread ever ran anything (it starts on first use).
        self.started = False
        self.active = 0
        #: Prepared guests by memory budget; touched only on this worker's thread.
        self.spares: dict[int, list[Any]] = {}


class QuickJS:
    """The sandbox object (``Sandbox`` protocol)."""

    name = "quickjs"

    def __init__(self, settings: Any = None) -> None:
        count = max(1, int(setting_or(settings, "quickjs.workers", 2))) if settings is not None else 2
        self.workers = [_Worker(f"quickjs-{i}") for i in range(count)]
        self.driver = _driver()

    async def close(self) -> None:
        for worker in self.workers:
            if not worker.started:
                continue  # never started: closing would start it only to stop it
            spares = [guest for ready in worker.spares.values() for guest in ready]
            worker.spares.clear()

            async def drop(spares: list[Any] = spares) -> None:
                for guest in spares:
                    guest.close()

            with contextlib.suppress(Exception):
                await worker.thread.run_async(drop())
            await asyncio.to_thread(worker.thread.close)

    # -- running -------------------------------------------------------------------------
    async def run(self, source: str, *, entry: str = "default", args: Any = None, timeout_ms: int = 5000,
                  memory_mb: int = 64, host: Host | None = None) -> Any:
        args = args if isinstance(args, dict) else {"req": args}
        payload = dumps_str({"entry": entry, "req": args.get("req"), "user": args.get("user"),
                             "env": args.get("env") or {}})
        worker = min(self.workers, key=lambda w: w.active)
        worker.active += 1
        try:
            worker.started = True
            outcome = await worker.thread.run_async(
                _invoke(self.driver, source, payload, timeout_ms / 1000, memory_mb, host,
                        asyncio.get_running_loop(), worker.spares))
        finally:
            worker.active -= 1
        return _result(outcome, memory_mb)

    async def check_syntax(self, source: str) -> tuple[str, int, int] | None:
        """``None``, or the first syntax error as (message, line, column)."""
        worker = min(self.workers, key=lambda w: w.active)
        worker.started = True
        return await worker.thread.run_async(_check(source))


async def _check(source: str) -> tuple[str, int, int] | None:
    import quickjs_rs as q

    runtime = q.Runtime(memory_limit=16 * MB)
    try:
        runtime.set_module_loader(load=lambda name: source if name == "fn" else None)
        ctx = runtime.new_context(timeout=SYNTAX_TIMEOUT)
        _limit_store(ctx, 16)
        try:
            # Compiling "fn" happens before any of it runs; a top-level that
            # loops or throws is the run's business, not the save's.
            await ctx.eval_async('import * as m from "fn";', module=True, filename="check")
        except q.JSError as exc:
            if getattr(exc, "name", "") == "SyntaxError":
                match = _LOCATION.search(getattr(exc, "stack", "") or "")
                line, column = (int(match.group(1)), int(match.group(2))) if match else (1, 1)
                return str(getattr(exc, "message", exc)), line, column
        except Exception:  # noqa: BLE001 -- anything but a syntax error is not the save's concern
            pass
        return None
    finally:
        _close(runtime)


def _limit_store(ctx: Any, memory_mb: int) -> None:
    """Cap the guest's linear memory growth in the wasmtime store, beneath
    QuickJS's own allocator limit (which does not count every allocation)."""
    instance = getattr(getattr(ctx, "_engine_ctx", None), "_inst", None)
    store = getattr(instance, "store", None)
    if store is None:  # a quickjs-rs without this layout: QuickJS's limit alone
        log.warning("quickjs: cannot set a store memory limit; relying on the allocator limit")
        return
    store.set_limits(memory_size=memory_mb * MB + BASE_MEMORY)


def _close(runtime: Any) -> None:
    with contextlib.suppress(Exception):  # a trapped instance may refuse a clean close
        runtime.close()


class _Guest:
    """A fresh runtime and context, prepared ahead of use and used once: the
    host functions and the module loader read the invocation from ``slot``."""

    def __init__(self, memory_mb: int) -> None:
        import quickjs_rs as q

        self.memory_mb = memory_mb
        self.slot: dict[str, Any] = {"source": None, "host": None, "loop": None}
        self.runtime = q.Runtime(memory_limit=memory_mb * MB)
        slot = self.slot
        try:
            self.runtime.set_module_loader(load=lambda name: slot["source"] if name == "fn" else None)
            self.ctx = self.runtime.new_context(timeout=SYNTAX_TIMEOUT)
            _limit_store(self.ctx, memory_mb)
            self.ctx.register("__wos_host", self._bridge, is_async=True)
            self.ctx.register("__wos_log", self._log, is_async=False)
        except BaseException:
            _close(self.runtime)
            raise

    def close(self) -> None:
        _close(self.runtime)

    def _log(self, text: str) -> None:
        host = self.slot["host"]
        if host is not None:
            self.slot["loop"].call_soon_threadsafe(host.log, str(text))

    async def _bridge(self, name: str, args_json: str) -> str:
        host, server_loop = self.slot["host"], self.slot["loop"]
        if host is None:
            return dumps_str({"error": {"code": "FORBIDDEN", "message": "No host bridge here"}})
        future = None
        try:
            call_args = loads(args_json)
            if not isinstance(call_args, list):
                raise FunctionError("Bad bridge call")
            future = asyncio.run_coroutine_threadsafe(host.call(name, call_args), server_loop)
            data = await asyncio.wrap_future(future)
            return dumps_str({"data": jsonable(data)})
        except WorkerosError as exc:
            return dumps_str({"error": {"code": exc.code, "message": exc.message}})
        except asyncio.CancelledError:
            if future is not None:
                future.cancel()
            raise
        except Exception:  # noqa: BLE001 -- never a traceback into the guest
            log.exception("quickjs: host bridge call %s failed", name)
            return dumps_str({"error": {"code": "INTERNAL", "message": "Internal error"}})


#: Prepared guests kept per worker thread and memory budget.
SPARES = 2


def _take(spares: dict[int, list[_Guest]], memory_mb: int) -> _Guest:
    ready = spares.get(memory_mb)
    guest = ready.pop() if ready else _Guest(memory_mb)
    asyncio.get_running_loop().call_soon(_refill, spares, memory_mb)
    return guest


def _refill(spares: dict[int, list[_Guest]], memory_mb: int) -> None:
    ready = spares.setdefault(memory_mb, [])
    if len(ready) < SPARES:
        try:
            ready.append(_Guest(memory_mb))
        except Exception:  # noqa: BLE001 -- a spare is an optimisation; the next call makes its own
            log.debug("quickjs: preparing a spare guest failed", exc_info=True)


async def _invoke(driver: str, source: str, payload: str, timeout: float, memory_mb: int, host: Host | None,
                  server_loop: asyncio.AbstractEventLoop, spares: dict[int, list[_Guest]] | None = None
                  ) -> dict[str, Any]:
    """One invocation on a worker thread: a fresh (never used) runtime, context and store."""
    import quickjs_rs as q

    guest = _take(spares, memory_mb) if spares is not None else _Guest(memory_mb)
    guest.slot.update(source=source, host=host, loop=server_loop)
    ctx = guest.ctx
    try:
        ctx.globals["__wos_input"] = payload
        started = time.monotonic()
        try:
            # The guest's own deadline counts time spent running JavaScript;
            # this one also counts time spent waiting on the bridge.
            await asyncio.wait_for(ctx.eval_async(driver, module=True, filename="workeros", timeout=timeout),
                                   timeout)
            out = ctx.eval("globalThis.__wos_out")
        except (q.TimeoutError, TimeoutError, q.HostCancellationError):
            return {"timeout": True}
        except q.MemoryLimitError:
            return {"memory": True}
        except q.DeadlockError:
            if time.monotonic() - started >= timeout * 0.95:  # an interrupt leaves the module's promise pending
                return {"timeout": True}
            return {"error": {"name": "Error", "message": "The function awaited a promise that never settles"}}
        except q.JSError as exc:
            return {"error": {"name": getattr(exc, "name", "Error"), "message": str(getattr(exc, "message", exc)),
                              "stack": getattr(exc, "stack", None)}}
        except Exception as exc:  # noqa: BLE001 -- a wasm trap: stack exhausted, or out of linear memory
            text = str(exc)
            if "stack" in text and "exhausted" in text:
                return {"error": {"name": "RangeError", "message": "Maximum call stack size exceeded"}}
            if "memory" in text or "unreachable" in text:
                return {"memory": True}
            log.warning("quickjs: the guest failed: %s", text[:500])
            return {"error": {"name": "Error", "message": "The function failed inside the sandbox"}}
        if not isinstance(out, str):
            return {"ok": None}
        return loads(out)
    finally:
        guest.slot.update(source=None, host=None, loop=None)
        guest.close()


def _result(outcome: dict[str, Any], memory_mb: int) -> Any:
    if outcome.get("timeout"):
        raise FunctionTimeout("The function ran past its time budget")
    if outcome.get("memory"):
        raise FunctionError(f"The function ran past its memory budget ({memory_mb} MB)")
    error = outcome.get("error")
    if error is not None:
        name, message = error.get("name") or "Error", str(error.get("message") or "")
        if name == "InternalError" and "out of memory" in message:
            raise FunctionError(f"The function ran past its memory budget ({memory_mb} MB)")
        if name == "SyntaxError":
            match = _LOCATION.search(error.get("stack") or "")
            where = f" (line {match.group(1)}, column {match.group(2)})" if match else ""
            raise FunctionError(f"SyntaxError: {message}{where}"[:2000])
        text = message if name in ("Error", "") else f"{name}: {message}"
        raise FunctionError((text or "The function threw")[:2000], function_code=error.get("code"))
    return outcome.get("ok")


@hookimpl
def workeros_register_config_keys() -> list[ConfigKey]:
    return CONFIG_KEYS


@hookimpl
def workeros_register_sandboxes() -> list[SandboxBackend]:
    return [SandboxBackend(name="quickjs", factory=QuickJS, priority=10, check=_missing,
                           config_keys=CONFIG_KEYS,
                           description="QuickJS in WebAssembly under wasmtime, a fresh instance per invocation")]
