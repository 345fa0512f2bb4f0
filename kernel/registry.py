"""Backends by name: collect every area's registrations, refuse name clashes between
distributions, pick the active backend(s) from settings or by priority and
availability."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workeros.errors import PluginConflict, StartupError
from workeros.hookspecs._entries import Backend
from workeros.hookspecs.lifecycle import ConfigKey
from workeros.plugins import PluginInfo, Plugins


@dataclass(frozen=True)
class Area:
    name: str
    hook: str
    many: bool  # several active at once (transports) or exactly one (storage)
    setting: str | None = None
    required: bool = False


AREAS: tuple[Area, ...] = (
    Area("db", "workeros_register_db_dialects", many=False, setting="database.url", required=True),
    Area("storage", "workeros_register_storage_backends", many=False, setting="storage.backend"),
    Area("auth", "workeros_register_auth_providers", many=True, setting="auth.providers"),
    Area("email", "workeros_register_email_backends", many=False, setting="email.backend"),
    Area("sandbox", "workeros_register_sandboxes", many=False, setting="functions.sandbox"),
    Area("vectors", "workeros_register_vector_stores", many=False, setting="vectors.backend"),
    Area("embedder", "workeros_register_embedders", many=False, setting="vectors.embedder"),
    Area("realtime", "workeros_register_realtime_transports", many=True),
    Area("bus", "workeros_register_event_buses", many=False, setting="realtime.bus"),
    Area("transport", "workeros_register_transports", many=True),
    Area("runtime", "workeros_register_runtimes", many=False, setting="runtime", required=True),
)

#: Selection settings the registry reads (declared by the kernel's core plugin).
SELECTION_KEYS: tuple[ConfigKey, ...] = (
    ConfigKey("storage.backend", "str", None, "Storage backend name (default: best available)"),
    ConfigKey("auth.providers", "list", None, "Enabled auth providers (default: every installed one)"),
    ConfigKey("email.backend", "str", None, "Email backend name (default: best available)"),
    ConfigKey("functions.sandbox", "str", None, "Function sandbox name (default: best available)"),
    ConfigKey("vectors.backend", "str", None, "Vector store name (default: best available)"),
    ConfigKey("vectors.embedder", "str", None, "Text embedder name (default: best available)"),
    ConfigKey("realtime.bus", "str", None, "Event bus name (default: best available)"),
)


@dataclass
class Registered:
    entry: Backend
    plugin: PluginInfo
    unavailable: str | None = None


def url_scheme(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else ""


class Registry:
    def __init__(self) -> None:
        self.entries: dict[str, dict[str, Registered]] = {a.name: {} for a in AREAS}
        self.active: dict[str, list[str]] = {a.name: [] for a in AREAS}

    @classmethod
    def build(cls, plugins: Plugins, settings: Any) -> Registry:
        reg = cls()
        for area in AREAS:
            for info, entries in plugins.collect(area.hook):
                for entry in entries:
                    reg._add(area, entry, info)
            reg._select(area, settings)
        for area_name, names in reg.active.items():
            for name in names:
                info = reg.entries[area_name][name].plugin
                info.backends.append({"area": area_name, "name": name, "active": True})
        for area_name, entries in reg.entries.items():
            for name, item in entries.items():
                if name not in reg.active[area_name]:
                    item.plugin.backends.append(
                        {"area": area_name, "name": name, "active": False, "unavailable": item.unavailable}
                    )
        return reg

    def _add(self, area: Area, entry: Backend, info: PluginInfo) -> None:
        if not isinstance(entry, Backend):
            raise StartupError(f"plugin {info.name!r} returned {type(entry).__name__} from {area.hook}, not a Backend entry")
        existing = self.entries[area.name].get(entry.name)
        if existing is not None:
            raise PluginConflict(
                f"{area.name} backend {entry.name!r} is registered by both "
                + " and ".join(_where(p) for p in sorted((existing.plugin, info), key=lambda p: p.order))
            )
        if area.name == "transport" or area.name == "realtime":
            for other in (*self.entries["transport"].values(), *self.entries["realtime"].values()):
                if getattr(other.entry, "prefix", None) == getattr(entry, "prefix", None):
                    raise PluginConflict(
                        f"transports {other.entry.name!r} ({_where(other.plugin)}) and {entry.name!r} "
                        f"({_where(info)}) both mount {entry.prefix}"  # type: ignore[attr-defined]
                    )
        if area.name == "db":
            for other in self.entries["db"].values():
                shared = set(other.entry.schemes) & set(entry.schemes)  # type: ignore[attr-defined]
                if shared:
                    raise PluginConflict(
                        f"database scheme {sorted(shared)[0]!r} is claimed by both "
                        f"{_where(other.plugin)} and {_where(info)}"
                    )
        self.entries[area.name][entry.name] = Registered(entry, info, entry.unavailable_reason())

    def _select(self, area: Area, settings: Any) -> None:
        entries = self.entries[area.name]
        wanted = settings[area.setting] if area.setting else None
        if area.name == "db":
            scheme = url_scheme(wanted or "")
            base = scheme.split("+", 1)[0]
            match = [n for n, r in entries.items() if scheme in r.entry.schemes or base in r.entry.schemes]  # type: ignore[attr-defined]
            if not match:
                known = sorted(s for r in entries.values() for s in r.entry.schemes)  # type: ignore[attr-defined]
                raise StartupError(
                    f"no installed dialect serves database URLs starting {scheme or '(none)'}:// "
                    f"(installed: {', '.join(known) or 'none'}; try pip install workeros[postgres])"
                )
            wanted = match[0]
        if area.many:
            names = list(entries) if wanted is None else list(wanted)
            for name in names:
                if name not in entries:
                    raise StartupError(f"{area.setting} names {name!r}, which no installed plugin provides")
                reason = entries[name].unavailable
                if reason and wanted is not None:
                    raise StartupError(f"{area.name} backend {name!r} is unavailable: {reason}")
            self.active[area.name] = [n for n in names if not entries[n].unavailable]
            return
        if wanted is not None:
            if wanted not in entries:
                raise StartupError(
                    f"{area.setting} is {wanted!r}, which no installed plugin provides "
                    f"(installed: {', '.join(sorted(entries)) or 'none'})"
                )
            if entries[wanted].unavailable:
                raise StartupError(f"{area.name} backend {wanted!r} is unavailable: {entries[wanted].unavailable}")
            self.active[area.name] = [wanted]
            return
        dialect = self.active["db"][0] if self.active.get("db") else None
        candidates = sorted(
            (r for r in entries.values() if not r.unavailable
             and (not getattr(r.entry, "dialects", ()) or dialect in r.entry.dialects)),
            key=lambda r: -r.entry.priority,
        )
        if candidates:
            self.active[area.name] = [candidates[0].entry.name]
        elif area.required:
            raise StartupError(f"no available {area.name} backend is installed")

    # -- reading ------------------------------------------------------------------
    def get(self, area: str) -> Any | None:
        """The active entry of a single-choice area, or None."""
        names = self.active[area]
        return self.entries[area][names[0]].entry if names else None

    def all(self, area: str) -> list[Any]:
        return [self.entries[area][n].entry for n in self.active[area]]

    def summary(self) -> dict[str, Any]:
        return {
            area: {
                "active": self.active[area] if any(a.many for a in AREAS if a.name == area)
                else (self.active[area][0] if self.active[area] else None),
                "available": sorted(n for n, r in entries.items() if not r.unavailable),
                "unavailable": {n: r.unavailable for n, r in entries.items() if r.unavailable},
            }
            for area, entries in self.entries.items()
        }


def _where(info: PluginInfo) -> str:
    if info.distribution:
        return f"{info.distribution} {info.version or ''}".strip()
    return info.module
