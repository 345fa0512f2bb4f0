"""The plugin manager: one per app, never a module global.

Load order: built-ins -> essential entry points -> other entry points (allowlist and
blocklist applied) -> ``plugins_dir``; then ``check_pending()``. A plugin that fails
to import or register is recorded (name, distribution, version, traceback) and
skipped; with ``strict_plugins`` it stops boot instead.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import importlib.util
import inspect
import logging
import re
import sys
import traceback
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy

from workeros.errors import StartupError
from workeros.hookspecs import PROJECT, SPEC_MODULES

log = logging.getLogger("workeros.plugins")

ENTRY_POINT_GROUP = "workeros"

#: Kernel modules registered on every app; they cannot be disabled.
BUILTINS: tuple[str, ...] = (
    "workeros.builtins.core",
    "workeros.builtins.server_info",
    "workeros.builtins.bus_memory",
    "workeros.builtins.runtime",
)

#: Entry-point plugins that cannot be disabled and must be installed.
ESSENTIAL: tuple[str, ...] = ("rest", "password")


@dataclass
class PluginInfo:
    name: str
    module: str
    distribution: str | None = None
    version: str | None = None
    origin: str = "entrypoint"  # builtin | entrypoint | dir | manual
    essential: bool = False
    error: str | None = None
    hooks: list[str] = field(default_factory=list)
    backends: list[dict[str, Any]] = field(default_factory=list)
    #: Registration order (0 first), for messages that name plugins in the
    #: order they were loaded.
    order: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "origin": self.origin,
            "essential": self.essential,
            "hooks": sorted(self.hooks),
            "backends": self.backends,
            "error": self.error,
        }


def _normalize(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


async def await_me_maybe(value: Any) -> Any:
    """Hooks are sync and may return an awaitable (datasette's idiom)."""
    if inspect.isawaitable(value):
        value = await value
    return value


class Plugins:
    """The pluggy manager of one app, plus what was loaded and what failed."""

    def __init__(
        self,
        *,
        load: Iterable[str] | None = None,
        disable: Iterable[str] = (),
        strict: bool = False,
        trace: bool = False,
        plugins_dir: str | Path | None = None,
    ) -> None:
        self.pm = pluggy.PluginManager(PROJECT)
        for module in SPEC_MODULES:
            self.pm.add_hookspecs(importlib.import_module(module))
        self.allow = None if load is None else set(load)
        self.disable = set(disable)
        self.strict = strict
        self.plugins_dir = Path(plugins_dir) if plugins_dir else None
        self.infos: dict[str, PluginInfo] = {}
        self.failed: list[PluginInfo] = []
        self.warnings: list[str] = []
        self.trace = trace
        if trace:
            self.pm.add_hookcall_monitoring(self._trace_before, self._trace_after)

    @classmethod
    def from_settings(cls, settings: Any) -> Plugins:
        plugins = cls(
            load=settings["load_plugins"],
            disable=settings["disable_plugins"] or (),
            strict=settings["strict_plugins"],
            trace=settings["trace_plugins"],
            plugins_dir=settings["plugins_dir"],
        )
        plugins.load_all()
        return plugins

    # -- loading ------------------------------------------------------------------
    def load_all(self) -> None:
        for module in BUILTINS:
            self._register_module(module, name=module, origin="builtin", essential=True)
        seen_dists: set[str] = set()
        by_name: dict[str, md.EntryPoint] = {}
        for ep in sorted(md.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: (e.name not in ESSENTIAL, e.name)):
            dist = ep.dist
            dist_key = (_normalize(dist.name) if dist else "?") + ":" + ep.name
            if dist_key in seen_dists:
                continue  # editable installs and symlinked site-packages list entry points twice
            seen_dists.add(dist_key)
            if ep.name in by_name:
                other = by_name[ep.name].dist
                self._fail(
                    PluginInfo(ep.name, ep.value, dist.name if dist else None, dist.version if dist else None),
                    f"plugin name {ep.name!r} is also used by {other.name if other else '?'}; skipped",
                )
                continue
            by_name[ep.name] = ep
            self._load_entry_point(ep)
        for name in ESSENTIAL:
            if name not in self.infos:
                raise StartupError(f"essential plugin {name!r} is not installed (distribution workeros-{name})")
        if self.allow is not None:
            for name in sorted(self.allow - set(self.infos) - {f.name for f in self.failed}):
                self.warnings.append(f"plugin {name!r} named in load_plugins is not installed")
        if self.plugins_dir is not None:
            self._load_dir(self.plugins_dir)
        self.pm.check_pending()

    def _load_entry_point(self, ep: md.EntryPoint) -> None:
        essential = ep.name in ESSENTIAL
        if not essential:
            if ep.name in self.disable:
                return
            if self.allow is not None and ep.name not in self.allow:
                return
        elif ep.name in self.disable:
            self.warnings.append(f"plugin {ep.name!r} is essential and cannot be disabled")
        dist = ep.dist
        info = PluginInfo(
            name=ep.name,
            module=ep.value,
            distribution=dist.name if dist else None,
            version=dist.version if dist else None,
            essential=essential,
        )
        try:
            obj = ep.load()
        except Exception:
            self._fail(info, traceback.format_exc())
            return
        self._register(obj, info)

    def _load_dir(self, folder: Path) -> None:
        if not folder.is_dir():
            raise StartupError(f"plugins_dir {folder} is not a directory")
        for path in sorted(folder.glob("*.py")):
            if path.name.startswith("_"):
                continue
            info = PluginInfo(name=path.stem, module=str(path), origin="dir")
            if info.name in self.infos:
                self._fail(info, f"plugin name {info.name!r} is already taken; skipped")
                continue
            module_name = f"workeros_plugins_dir.{path.stem}"
            try:
                spec = importlib.util.spec_from_file_location(module_name, path)
                assert spec and spec.loader
                module = importlib.util.module_from_spec(spec)
                sys.modules[module_name] = module
                spec.loader.exec_module(module)
            except Exception:
                sys.modules.pop(module_name, None)
                self._fail(info, traceback.format_exc())
                continue
            self._register(module, info)

    def _register_module(self, module: str, *, name: str, origin: str, essential: bool) -> None:
        info = PluginInfo(name=name, module=module, distribution="workeros", version=_kernel_version(),
                          origin=origin, essential=essential)
        self._register(importlib.import_module(module), info)

    def register(self, obj: Any, name: str, **info: Any) -> None:
        """Register an object or module by hand (tests, embedding)."""
        self._register(obj, PluginInfo(name=name, module=getattr(obj, "__name__", repr(obj)), origin="manual", **info))

    def _register(self, obj: Any, info: PluginInfo) -> None:
        unknown = [
            n for n in dir(obj)
            if n.startswith("workeros_") and callable(getattr(obj, n, None))
            and not hasattr(self.pm.hook, n)
        ]
        if unknown:
            self._fail(info, f"implements unknown hook(s): {', '.join(sorted(unknown))}")
            return
        wrappers = _wrapper_impls(obj)
        if wrappers:
            self._fail(info, f"implements {', '.join(wrappers)} as a hook wrapper; workeros calls every "
                             "implementation on its own (so one failing plugin is isolated) and does not "
                             "support hookwrapper/wrapper implementations")
            return
        try:
            self.pm.register(obj, name=info.name)
        except Exception:
            self._fail(info, traceback.format_exc())
            return
        info.hooks = sorted(impl.name for impl in self.pm.get_hookcallers(obj) or ())
        info.order = len(self.infos) + len(self.failed)
        self.infos[info.name] = info

    def _fail(self, info: PluginInfo, error: str) -> None:
        info.error = error
        self.failed.append(info)
        where = f"{info.distribution} {info.version}" if info.distribution else info.module
        log.error("plugin %s (%s) failed to load and was skipped:\n%s", info.name, where, error)
        if self.strict:
            raise StartupError(f"plugin {info.name!r} ({where}) failed to load:\n{error}")

    # -- calling ------------------------------------------------------------------
    def collect(self, hook: str, **kwargs: Any) -> list[tuple[PluginInfo, Any]]:
        """Call ``hook`` on each plugin separately, so one failing plugin is
        reported and skipped instead of aborting the call for all. Results come
        in pluggy's call order: ``tryfirst`` implementations first, ``trylast``
        ones last, and otherwise the most recently registered plugin first."""
        out: list[tuple[PluginInfo, Any]] = []
        for impl in self.implementations(hook):
            info = self.infos[impl.plugin_name]
            if self.trace:
                log.info("hook %s -> %s", hook, info.name)
            args = [kwargs[name] for name in impl.argnames]
            try:
                result = impl.function(*args)
            except Exception:
                if info.origin == "builtin" or info.essential:
                    raise
                self._fail(info, traceback.format_exc())
                self._unregister(info)
                continue
            if result is not None:
                out.append((info, result))
        return out

    def implementations(self, hook: str) -> list[Any]:
        """The implementations of ``hook`` in pluggy's call order."""
        return list(reversed(getattr(self.pm.hook, hook).get_hookimpls()))

    def implemented(self, hook: str) -> bool:
        """Whether any registered plugin implements ``hook`` (cheap; lets hot
        paths skip building a hook's argument when nobody listens)."""
        return bool(getattr(self.pm.hook, hook).get_hookimpls())

    async def call_filters(self, hook: str, **kwargs: Any) -> None:
        """Run a filter hook: every implementation in order, each awaited before
        the next. Exceptions propagate (a filter refuses by raising)."""
        for impl in self.implementations(hook):
            if self.trace:
                log.info("hook %s -> %s", hook, impl.plugin_name)
            await await_me_maybe(impl.function(*[kwargs[name] for name in impl.argnames]))

    def call_actions(self, hook: str, spawn: Callable[[Awaitable[Any], str], Any], **kwargs: Any) -> None:
        """Run an action hook in the background: each implementation in its own
        task (through ``spawn(awaitable, name)``), errors logged by the task,
        never raised here."""
        for impl in self.implementations(hook):
            spawn(_run_action(impl, [kwargs[name] for name in impl.argnames]), f"{hook}:{impl.plugin_name}")

    def _unregister(self, info: PluginInfo) -> None:
        self.infos.pop(info.name, None)
        plugin = self.pm.get_plugin(info.name)
        if plugin is not None:
            self.pm.unregister(plugin)

    @property
    def hook(self) -> Any:
        return self.pm.hook

    def listing(self) -> list[dict[str, Any]]:
        return [i.as_dict() for i in self.infos.values()] + [i.as_dict() for i in self.failed]

    # -- tracing ------------------------------------------------------------------
    def _trace_before(self, hook_name: str, impls: list[Any], kwargs: dict[str, Any]) -> None:
        log.info("hook %s -> %s", hook_name, ", ".join(i.plugin_name for i in impls))

    def _trace_after(self, outcome: Any, hook_name: str, impls: list[Any], kwargs: dict[str, Any]) -> None:
        log.info("hook %s done", hook_name)


async def _run_action(impl: Any, args: list[Any]) -> None:
    try:
        await await_me_maybe(impl.function(*args))
    except Exception:
        log.exception("%s of plugin %s failed", impl.function.__name__, impl.plugin_name)


def _wrapper_impls(obj: Any) -> list[str]:
    """Hook implementations of ``obj`` marked ``hookwrapper`` or ``wrapper``."""
    found = []
    for name in dir(obj):
        if not name.startswith("workeros_"):
            continue
        opts = getattr(getattr(obj, name, None), "workeros_impl", None)
        if isinstance(opts, dict) and (opts.get("hookwrapper") or opts.get("wrapper")):
            found.append(name)
    return sorted(found)


def _kernel_version() -> str:
    from workeros import __version__

    return __version__


def installed_plugin_versions() -> list[tuple[str, str, str]]:
    """(entry-point name, distribution, version) of installed plugins, without
    importing them (for ``workeros --version``)."""
    seen: dict[str, tuple[str, str, str]] = {}
    for ep in md.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in seen:
            dist = ep.dist
            seen[ep.name] = (ep.name, dist.name if dist else "?", dist.version if dist else "?")
    return sorted(seen.values())


