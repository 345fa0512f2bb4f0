"""The ``quickjs`` sandbox (DESIGN §6 "Functions"): QuickJS compiled to
WebAssembly (the ``quickjs-rs`` distribution: rquickjs in a wasm guest) run
under wasmtime.

Guests (a wasm store with QuickJS and the driver in it) are prepared once and
reused: after the driver is evaluated the guest's whole linear memory is kept
as an image, and it is written back after every call, so each call starts from
the same bytes and nothing survives from one call to the next (a guest whose
memory grew, or whose call timed out, trapped or failed, is thrown away
instead). The user's module is imported afresh on every call. Limits are the
engine's, not the code's good will: one wall-clock budget (JavaScript and
bridge waits together) through QuickJS's interrupt poll, memory through
QuickJS's allocator limit *and* a wasmtime store limit on linear-memory growth,
and the call stack through wasmtime's stack limit (a deep recursion traps the
instance, which is then thrown away).

Runs happen on worker threads, each with its own event loop (the guest is
single-threaded and pinned to the thread that made it), so a busy function
never holds the server's event loop; bridge calls hop back to the server's
loop. See ``docs/functions.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import importlib.util
import logging
import os
import random
import re
import struct
import time
from importlib import resources
from typing import Any

from workeros.api import FunctionError, FunctionTimeout, WorkerosError, dumps_str, loads, setting_or
from workeros.hookspecs import hookimpl
from workeros.hookspecs.lifecycle import ConfigKey
from workeros.hookspecs.sandbox import Host, SandboxBackend

log = logging.getLogger("workeros.quickjs")

MB = 1024 * 1024
#: Linear memory the guest has before any user code runs, allowed on top of memory_mb.
BASE_MEMORY = 4 * MB
SYNTAX_TIMEOUT = 1.0
#: Seconds past a function's deadline the server waits for its worker thread to
#: report (it normally reports at the deadline itself).
LATE = 0.2
_LOCATION = re.compile(r":(\d+):(\d+)")

CONFIG_KEYS = [
    ConfigKey("quickjs.workers", "int", 2,
              "Threads that run quickjs functions (each runs many invocations; a CPU-bound one holds its thread "
              "until its time budget ends)"),
]


def _missing() -> str | None:
    # Looked up, not imported: quickjs_rs loads wasmtime (some MB), which waits
    # for the first function run.
    if importlib.util.find_spec("quickjs_rs") is None or importlib.util.find_spec("wasmtime") is None:
        return "the quickjs-rs distribution is not installed (pip install quickjs-rs)"
    return None


def _driver() -> str:
    return resources.files(__package__).joinpath("driver.js").read_text(encoding="utf-8")


class _Worker:
    """One thread with its own event loop, where guests are made and run."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._thread: Any = None
        #: Whether the thread ever ran anything (it starts on first use).
        self.started = False
        self.active = 0
        #: Idle prepared guests by memory budget; touched only on this worker's thread.
        self.pool: dict[int, list[Any]] = {}

    @property
    def thread(self) -> Any:
        """The worker's thread, made at its first use: quickjs_rs loads wasmtime
        (some MB), which a server that runs no function never needs."""
        if self._thread is None:
            from quickjs_rs import ThreadWorker

            self._thread = ThreadWorker(name=self.name)
        return self._thread


    def loop(self) -> asyncio.AbstractEventLoop:
        """The worker thread's event loop (the thread starts on first use)."""
        thread = self.thread
        thread._ensure_started()
        return thread._loop  # type: ignore[no-any-return]


class _Job:
    """One invocation handed to a worker thread: a task there, its outcome
    set on the server's future with one ``call_soon_threadsafe`` back (where
    ``run_coroutine_threadsafe`` and ``wrap_future`` chain a concurrent future
    and two callbacks each way)."""

    __slots__ = ("server_loop", "coro", "result", "task", "cancelled")

    def __init__(self, server_loop: asyncio.AbstractEventLoop, coro: Any) -> None:
        self.server_loop, self.coro = server_loop, coro
        self.result: asyncio.Future[Any] = server_loop.create_future()
        self.task: asyncio.Task[Any] | None = None
        self.cancelled = False

    def start(self) -> None:  # on the worker's loop
        if self.cancelled:
            self.coro.close()
            return
        self.task = asyncio.get_running_loop().create_task(self.coro)
        self.task.add_done_callback(self._done)

    def cancel(self) -> None:  # on the worker's loop
        self.cancelled = True
        if self.task is not None:
            self.task.cancel()

    def _done(self, task: asyncio.Task[Any]) -> None:  # on the worker's loop
        if task.cancelled():
            return
        error = task.exception()
        self.server_loop.call_soon_threadsafe(self._deliver, error, None if error else task.result())

    def _deliver(self, error: BaseException | None, outcome: Any) -> None:  # on the server's loop
        if self.result.done():
            return
        if error is not None:
            self.result.set_exception(error)
        else:
            self.result.set_result(outcome)


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
            async def drop(pool: dict[int, list[Any]] = worker.pool) -> None:
                for ready in pool.values():
                    for guest in ready:
                        guest.close()
                pool.clear()

            with contextlib.suppress(Exception):
                await worker.thread.run_async(drop())
            await asyncio.to_thread(worker.thread.close)

    # -- running -------------------------------------------------------------------------
    async def run(self, source: str, *, entry: str = "default", args: Any = None, timeout_ms: int = 5000,
                  memory_mb: int = 64, host: Host | None = None) -> Any:
        timeout = timeout_ms / 1000
        deadline = time.monotonic() + timeout
        args = args if isinstance(args, dict) else {"req": args}
        payload = dumps_str({"entry": entry, "req": args.get("req"), "user": args.get("user"),
                             "env": args.get("env") or {}, "seed": _seed()})
        worker = min(self.workers, key=lambda w: w.active)
        worker.active += 1
        loop = asyncio.get_running_loop()
        job = _Job(loop, _invoke(self.driver, source, payload, deadline, memory_mb, host, loop, worker.pool))
        worker_loop = None
        try:
            worker.started = True
            worker_loop = worker.loop()
            worker_loop.call_soon_threadsafe(job.start)  # the one hop there; job._done makes the one back
            # The worker answers a timeout itself at the deadline; this one
            # holds when its thread is busy with another guest's JavaScript
            # (asyncio.timeout, not wait_for: no task per call on this loop).
            async with asyncio.timeout(timeout + LATE):
                outcome = await job.result
        except TimeoutError:
            outcome = {"timeout": True}
        finally:
            worker.active -= 1
            if worker_loop is None:
                job.coro.close()
            elif not job.result.done() or job.result.cancelled():
                worker_loop.call_soon_threadsafe(job.cancel)
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


#: Guest exports that never run the user's JavaScript (no eval, no job queue,
#: no property access that could reach a getter, setter or proxy): short calls
#: made while keeping the GIL. Everything else releases it, as ctypes does, so
#: the server's thread runs while JavaScript does.
SHORT_EXPORTS = frozenset({
    "qjs_alloc", "qjs_free", "qjs_last_len", "qjs_last_ptr", "qjs_result_free", "type_of", "get_string",
    "get_number", "get_bool", "new_string", "new_number", "new_null", "new_undefined", "new_bool", "new_from_json",
    "free_value", "dup_handle", "is_promise", "promise_state", "promise_result", "new_promise", "resolve_deferred",
    "reject_deferred", "new_error", "compute_memory_usage",
})


@functools.cache
def _held_call(ffi: Any) -> Any:
    """``wasmtime_func_call`` loaded once more through ``ctypes.PyDLL``: the
    same C function, called without releasing the GIL. A guest call releases
    and re-takes the GIL around each of its some fifty short export calls
    otherwise, and each re-take waits for the server's thread to give the GIL
    up (up to the interpreter's switch interval) whenever that thread is busy."""
    generic = ffi.wasmtime_func_call.__globals__["_wasmtime_func_call"]
    held = ctypes.PyDLL(ffi.dll._name).wasmtime_func_call
    held.restype, held.argtypes = generic.restype, generic.argtypes
    return held


def _direct_calls(ctx: Any) -> None:
    """Call the guest's exports straight through wasmtime's C API.

    quickjs-rs reaches the guest through wasmtime-py's generic ``Func.__call__``,
    which reads the export's type back from the engine and converts every
    argument through Python value objects on every call, and a call into a
    function runs about fifty of them. The exports take and return only i32,
    i64 and f64, so their kinds are read once per export and the arguments
    are written into the C array directly. The trap handling and the
    host-callback routing stay what quickjs-rs and wasmtime-py do. Without the
    expected layout, the generic path stays.
    """
    try:
        import quickjs_rs._engine as engine
        import wasmtime
        import wasmtime._func
        from wasmtime import _ffi as ffi

        inst = ctx._engine_ctx._inst
        store, exports, current = inst.store, inst._exports, engine._CUR
        kinds = {str(wasmtime.ValType.i32()): ffi.WASMTIME_I32.value,
                 str(wasmtime.ValType.i64()): ffi.WASMTIME_I64.value,
                 str(wasmtime.ValType.f64()): ffi.WASMTIME_F64.value}
        I32, I64 = ffi.WASMTIME_I32.value, ffi.WASMTIME_I64.value
        val_t, call, byref, error_from = ffi.wasmtime_val_t, ffi.wasmtime_func_call, ctypes.byref, \
            wasmtime.WasmtimeError._from_ptr
        held = _held_call(ffi)
        trap_ptr, trap_from, raise_last = ctypes.POINTER(ffi.wasm_trap_t), wasmtime.Trap._from_ptr, \
            wasmtime._func.maybe_raise_last_exn
        WasmtimeError = wasmtime.WasmtimeError
    except (ImportError, AttributeError):
        log.warning("quickjs: wasmtime-py or quickjs-rs has another layout; calling the guest the generic way")
        return
    prepared: dict[str, Any] = {}
    generic = inst.c

    def prepare(name: str) -> Any:
        func = exports[name]
        ty = func.type(store)
        params = [kinds.get(str(p)) for p in ty.params]
        results = [kinds.get(str(r)) for r in ty.results]
        entry = None if None in params or None in results or len(results) > 1 else (
            byref(func._func), tuple(params), results[0] if results else None, val_t * len(params),
            val_t * len(results), held if name in SHORT_EXPORTS else call,
            # which member of the value union each argument is written to
            tuple("i32" if k == I32 else "i64" if k == I64 else "f64" for k in params))
        prepared[name] = entry
        return entry

    def c(name: str, *args: Any) -> Any:
        return direct(name, args, False)

    def c_held(name: str, *args: Any) -> Any:
        return direct(name, args, True)

    def direct(name: str, args: tuple[Any, ...], hold: bool) -> Any:
        entry = prepared[name] if name in prepared else prepare(name)
        if entry is None or len(args) != len(entry[1]):
            return generic(name, *args)
        func_ref, params, result, params_t, results_t, through, members = entry
        if hold:
            through = held
        raw = params_t()
        for i, kind in enumerate(params):
            slot = raw[i]
            slot.kind = kind
            setattr(slot.of, members[i], args[i])
        out = results_t()
        previous = getattr(current, "inst", None)
        current.inst = inst
        # What wasmtime-py's enter_wasm does, without a generator per call: a
        # Python exception raised in a host callback wins over the trap or
        # error it turned into.
        trap = trap_ptr()
        try:
            error = through(store._context(), func_ref, raw, len(params), out, 1 if result is not None else 0,
                            byref(trap))
            if error:
                raise error_from(error)
            if trap:
                trap_obj = trap_from(trap)
                raise_last()
                raise trap_obj
        except WasmtimeError:
            raise_last()
            raise
        finally:
            current.inst = previous
        if result is None:
            return None
        value = out[0]
        return value.of.i32 if result == I32 else value.of.i64 if result == I64 else value.of.f64

    inst.c = c
    #: For a call known to run only the driver's own JavaScript (bounded, no
    #: user code): keeps the GIL, so no wait to take it back afterwards.
    inst.c_held = c_held


def _image_writer(ctx: Any, image: Any) -> Any:
    """A function writing ``image`` (a whole-memory snapshot of ``ctx``'s
    guest, taken by quickjs-rs) back into the guest: one copy from the image's
    bytes into linear memory and the stack pointer set, where quickjs-rs's
    restore copies the image three times (a slice of the snapshot, a bytearray
    of the slice, then the memory) and converts the stack pointer through
    wasmtime-py's generic value path. The header is checked here, once, as
    quickjs-rs checks it on every restore. ``None`` without the expected
    layout (quickjs-rs's own restore is used then)."""
    try:
        import quickjs_rs._engine as engine
        from wasmtime import WasmtimeError
        from wasmtime import _ffi as ffi

        inst = ctx._engine_ctx._inst
        data = image.to_bytes()
        header = engine._SNAP_HEADER
        magic, fmt, build_id, size, sp = header.unpack_from(data, 0)
        if (magic != engine.SNAP_MAGIC or fmt != engine.SNAP_FORMAT_VERSION or build_id != inst.build_id
                or len(data) - header.size != size or sp > size):
            return None
        memory, store, sp_global = inst.mem, inst.store, inst.sp
        offset = header.size
        raw_sp = ffi.wasmtime_val_t()
        raw_sp.kind = ffi.WASMTIME_I32.value
        raw_sp.of.i32 = sp
        if str(sp_global.type(store).content) != "i32":
            return None
        source = ctypes.c_char_p(data)
        base = ctypes.cast(source, ctypes.c_void_p).value + offset  # type: ignore[operator]
        memmove, byref, global_set = ctypes.memmove, ctypes.byref, ffi.wasmtime_global_set
        error_from = WasmtimeError._from_ptr
    except (ImportError, AttributeError, TypeError, ValueError):
        return None

    def rewrite() -> None:
        if memory.data_len(store) != size:  # linear memory only grows; a grown guest is not reused
            raise ValueError("the guest's memory changed size")
        memmove(memory.data_ptr(store), base, size)
        error = global_set(store._context(), byref(sp_global._global), byref(raw_sp))
        if error:
            raise error_from(error)

    rewrite.keep = (data, source)  # type: ignore[attr-defined]  # the bytes ``base`` points into
    return rewrite


def _close(runtime: Any) -> None:
    with contextlib.suppress(Exception):  # a trapped instance may refuse a clean close
        runtime.close()


class _Guest:
    """A prepared runtime and context, reused from call to call: the driver is
    evaluated once, then the guest's whole linear memory (and stack pointer) is
    kept as an image and written back after every call, so each call starts
    from exactly the state the previous one started from. The host functions
    and the module loader read the current call from ``slot``."""

    def __init__(self, driver: str, memory_mb: int) -> None:
        import quickjs_rs as q

        self.memory_mb = memory_mb
        self.slot: dict[str, Any] = {"source": None, "host": None, "loop": None}
        #: Absolute ``time.monotonic()`` past which the guest is interrupted:
        #: one wall-clock budget that counts bridge waits too.
        self.deadline: float | None = None
        self.uses = 0
        self.runtime = q.Runtime(memory_limit=memory_mb * MB)
        slot = self.slot
        try:
            self.runtime.set_module_loader(load=lambda name: slot["source"] if name == "fn" else None)
            self.ctx = self.runtime.new_context(timeout=SYNTAX_TIMEOUT)
            _limit_store(self.ctx, memory_mb)
            _direct_calls(self.ctx)
            # Replace quickjs-rs's deadline (which pauses while a host call is
            # awaited, and is lifted while a cancelled run unwinds) by ours.
            self.runtime._engine_rt.set_interrupt_handler(self._interrupted)
            self.ctx.register("__wos_host", self._bridge, is_async=True)
            self.ctx.register("__wos_log", self._log, is_async=False)
            self.deadline = time.monotonic() + SYNTAX_TIMEOUT
            self.ctx.eval(driver, filename="workeros")
            self.deadline = None
            #: The direct path (see ``_drive``): the guest instance, the handles
            #: of ``__wos_run`` and ``undefined`` and two scratch words, all made
            #: before the image is taken, so they are valid after every rewrite.
            self.inst: Any = None
            #: Bridge calls the guest made and the host has not yet answered:
            #: (name, JSON arguments, deferred promise id).
            self.calls: list[tuple[str, str, int]] = []
            with contextlib.suppress(Exception):
                self._prepare_direct()
            try:
                self.image = self.ctx.create_snapshot()
                instance = self.ctx._engine_ctx._inst
                self.memory, self.store = instance.mem, instance.store
                self.size = self.memory.data_len(self.store)
            except (AttributeError, NotImplementedError, q.QuickJSError):
                # A quickjs-rs without whole-memory images: a guest per call.
                log.warning("quickjs: cannot keep a guest's memory image; preparing a guest per call")
                self.image = None
            self.rewrite = _image_writer(self.ctx, self.image) if self.image is not None else None
        except BaseException:
            _close(self.runtime)
            raise

    def _prepare_direct(self) -> None:
        import quickjs_rs._engine as engine

        inst = self.ctx._engine_ctx._inst
        ids = inst.name_to_fn_id
        host_id, log_id = ids["__wos_host"], ids["__wos_log"]
        calls, log_text = self.calls, self._log

        def on_async(fn_id: int, args: tuple[Any, ...], deferred_id: int) -> int:
            if fn_id != host_id or len(args) != 2:
                return 1
            calls.append((str(args[0]), str(args[1]), deferred_id))
            return 0

        def on_sync(fn_id: int, args: tuple[Any, ...]) -> Any:
            if fn_id == log_id and args:
                log_text(args[0])
            return None

        g = inst.c("global_object")
        run = inst._get_prop(g, "__wos_run")
        inst.c("free_value", g)
        if inst._type_name(run) != "function":
            return
        self.run_handle, self.undefined = run, inst.c("new_undefined")
        self.argv, self.out = inst.alloc_out(4), inst.alloc_out(4)
        self.module_name = inst.alloc_write(b"fn")
        self.status_ok, self.status_error = engine.STATUS_OK, engine.STATUS_JS_ERROR
        inst.async_dispatch, inst.sync_dispatch = on_async, on_sync
        self.inst = inst

    def _interrupted(self) -> bool:
        deadline = self.deadline
        return deadline is not None and time.monotonic() >= deadline

    def reset(self) -> bool:
        """Write the image back; False when the guest cannot be reused (its
        memory grew: linear memory never shrinks)."""
        self.slot.update(source=None, host=None, loop=None)
        self.deadline = None
        self.calls.clear()
        if self.image is None or self.memory.data_len(self.store) != self.size:
            return False
        if self.rewrite is not None:
            self.rewrite()
        else:
            self.runtime.restore_snapshot(self.image, self.ctx)
        return True

    def close(self) -> None:
        _close(self.runtime)

    def _log(self, text: str) -> None:
        host = self.slot["host"]
        if host is not None:
            self.slot["loop"].call_soon_threadsafe(host.log, str(text))

    async def _bridge(self, name: str, args_json: str) -> str:
        host, server_loop = self.slot["host"], self.slot["loop"]
        if host is None:
            return _NO_HOST
        future = asyncio.run_coroutine_threadsafe(_answer(host, name, args_json), server_loop)
        try:
            return await asyncio.wrap_future(future)
        except asyncio.CancelledError:
            future.cancel()
            raise


#: Idle guests kept per worker thread and memory budget, and in all per worker thread.
POOL = 4
POOL_TOTAL = 8
#: Calls a guest serves before it is replaced (its image is rewritten after
#: each; this only bounds how long one wasm store lives).
MAX_USES = 10000


def _take(pool: dict[int, list[_Guest]], driver: str, memory_mb: int) -> _Guest:
    ready = pool.get(memory_mb)
    return ready.pop() if ready else _Guest(driver, memory_mb)


def _give_back(pool: dict[int, list[_Guest]] | None, guest: _Guest, clean: bool) -> None:
    """Reset ``guest`` and keep it, or close it (after a timeout, a trap or
    anything unexpected the guest is never reused)."""
    try:
        keep = (clean and pool is not None and guest.uses < MAX_USES
                and len(pool.setdefault(guest.memory_mb, [])) < POOL
                and sum(len(ready) for ready in pool.values()) < POOL_TOTAL and guest.reset())
    except Exception:  # noqa: BLE001 -- a guest that cannot be reset is dropped
        log.debug("quickjs: resetting a guest failed", exc_info=True)
        keep = False
    if keep:
        pool[guest.memory_mb].append(guest)  # type: ignore[index]
    else:
        guest.close()


def _near_limit(guest: _Guest) -> bool:
    """Whether the guest ran into its memory budget: QuickJS's allocator limit,
    or the store's cap on linear memory (then an allocation fails outright)."""
    try:
        if guest.image is not None and guest.memory.data_len(guest.store) >= guest.memory_mb * MB:
            return True
        usage = guest.runtime.memory_usage()
        return usage["malloc_size"] >= 0.9 * usage["malloc_limit"] > 0
    except Exception:  # noqa: BLE001 -- only a better message is at stake
        return False


#: Math.random's per-call seeds: a generator seeded once from the system, so
#: a call costs no system call on the server's thread (Math.random is no
#: cryptographic source in any engine).
_RNG = random.Random(os.urandom(32))


def _seed() -> list[int]:
    bits = _RNG.getrandbits(128)
    return [(bits >> shift) & 0xFFFFFFFF for shift in (0, 32, 64, 96)]


async def _invoke(driver: str, source: str, payload: str, deadline: float, memory_mb: int, host: Host | None,
                  server_loop: asyncio.AbstractEventLoop, pool: dict[int, list[_Guest]] | None = None
                  ) -> dict[str, Any]:
    """One invocation on a worker thread, in a guest whose memory is exactly
    its prepared image; ``deadline`` is absolute (``time.monotonic()``)."""
    import quickjs_rs as q

    guest = _take(pool, driver, memory_mb) if pool is not None else _Guest(driver, memory_mb)
    guest.uses += 1
    guest.slot.update(source=source, host=host, loop=server_loop)
    guest.deadline = deadline
    clean = False
    try:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return {"timeout": True}
        try:
            if guest.inst is not None:
                out = await _drive(guest, payload, deadline, host, server_loop)
            else:
                # asyncio.timeout, not wait_for: the same cancellation at the
                # deadline without a task (and a loop iteration) per call.
                async with asyncio.timeout(remaining):
                    out = await guest.ctx.eval_async(f"await __wos_run({dumps_str(payload)})",
                                                     filename="workeros", timeout=remaining + 1)
        except (q.InterruptError, TimeoutError, q.HostCancellationError):
            return {"timeout": True}
        except q.MemoryLimitError:
            return {"memory": True}
        except q.DeadlockError:
            if time.monotonic() >= deadline:  # an interrupt leaves the promise pending
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
        if time.monotonic() >= deadline:  # it caught the cancellation and answered late
            return {"timeout": True}
        if not isinstance(out, str):
            return {"ok": None}
        clean = True
        outcome = loads(out)
        if "error" in outcome and _near_limit(guest):  # out of memory while throwing: QuickJS throws null
            return {"memory": True}
        return outcome
    finally:
        _give_back(pool, guest, clean)


#: A bridge call's answer where the invocation has no host.
_NO_HOST = dumps_str({"error": {"code": "FORBIDDEN", "message": "No host bridge here"}})


async def _answer(host: Host, name: str, args_json: str) -> str:
    """One bridge call, on the server's loop: its answer as the JSON text the
    driver reads (``{data}`` or ``{error: {code, message}}``)."""
    try:
        call_args = loads(args_json)
        if not isinstance(call_args, list):
            raise FunctionError("Bad bridge call")
        return dumps_str({"data": await host.call(name, call_args)})
    except WorkerosError as exc:
        return dumps_str({"error": {"code": exc.code, "message": exc.message}})
    except Exception:  # noqa: BLE001 -- never a traceback into the guest
        log.exception("quickjs: host bridge call %s failed", name)
        return dumps_str({"error": {"code": "INTERNAL", "message": "Internal error"}})


def _raise_reason(inst: Any, reason: int, deadline: float) -> None:
    """Raise what a rejected ``__wos_run`` promise means (the driver catches
    every JavaScript error itself: what reaches here is QuickJS's uncatchable
    interrupt, or running out of memory while answering)."""
    import quickjs_rs as q

    name = inst._read_error_field(reason, "name") or "Error"
    message = inst._read_error_field(reason, "message") or ""
    if name == "InternalError" and "interrupted" in message:
        raise q.InterruptError(message)
    if name == "InternalError" and "out of memory" in message:
        raise q.MemoryLimitError(message)
    raise q.JSError(name, message, inst._read_error_field(reason, "stack"))


async def _drive(guest: _Guest, payload: str, deadline: float, host: Host | None,
                 server_loop: asyncio.AbstractEventLoop) -> str | None:
    """Run ``__wos_run(payload)`` and its promise loop straight through the
    guest's exports: one call into the driver, the job queue drained in one
    call, and the bridge calls the guest made sent to the server's loop
    together, their answers handed back as JSON text. quickjs-rs's
    ``eval_async`` does the same through a compiled eval wrapper, a task
    group, and some thirty guest calls per invocation."""
    import quickjs_rs as q

    inst = guest.inst
    c, read_i32, out = inst.c, inst.read_i32, guest.out
    arg = inst._new_string(payload)
    inst.mem.write(inst.store, struct.pack("<i", arg), guest.argv)
    # Runs only the driver up to its pause (parse the input, seed, build ctx):
    # no user code, so the GIL is kept.
    status = getattr(inst, "c_held", c)("call_function", guest.run_handle, guest.undefined, guest.argv, 1, out)
    if status == guest.status_error:
        raise inst.take_exception()
    if status != guest.status_ok:
        raise q.JSError("Error", f"call status={status}", None)
    promise = read_i32(out)
    # __wos_run has paused before its import("fn"): the module is compiled and
    # registered under that name here, so the import finds it without the
    # loader's callback into Python. A module that fails to compile or link is
    # left to the loader, which fails it the same way inside the driver.
    source = guest.slot["source"].encode()
    src, name = inst.alloc_write(source), guest.module_name
    if c("eval_module_async", src, len(source), name, 2, out) == guest.status_error:
        inst.take_exception()
    waiting: dict[Any, int] = {}
    try:
        while True:
            c("execute_pending_jobs")
            if time.monotonic() >= deadline:
                raise TimeoutError()
            c("promise_state", promise, out)
            state = read_i32(out)
            if state == 1:
                c("promise_result", promise, out)
                return inst._get_string(read_i32(out))
            if state == 2:
                c("promise_result", promise, out)
                _raise_reason(inst, read_i32(out), deadline)
            for name, args_json, deferred in guest.calls:
                if host is None:
                    c("resolve_deferred", deferred, inst._new_string(_NO_HOST))
                    continue
                future = asyncio.run_coroutine_threadsafe(_answer(host, name, args_json), server_loop)
                waiting[asyncio.wrap_future(future)] = deferred
            guest.calls.clear()
            if not waiting:
                if c("execute_pending_jobs") == 0:  # nothing left that could settle it
                    raise q.DeadlockError("The function awaited a promise that never settles")
                continue
            done, _ = await asyncio.wait(waiting, timeout=deadline - time.monotonic(),
                                         return_when=asyncio.FIRST_COMPLETED)
            if not done:
                raise TimeoutError()
            for future in done:
                c("resolve_deferred", waiting.pop(future), inst._new_string(future.result()))
    finally:
        for future in waiting:
            future.cancel()


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
                           description="QuickJS in WebAssembly under wasmtime; every call starts from the same "
                                       "prepared memory image")]
