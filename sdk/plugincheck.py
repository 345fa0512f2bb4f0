"""What a plugin distribution declares, read from its metadata, and the checks
``workeros plugins check DIST`` runs on it before it is listed.

A distribution is read from one of three places: an installed distribution (by
name), a built wheel (``.whl``: imported from the archive, as pip would after
installing it) or a source folder holding ``setup.cfg``. Each ``workeros`` entry
point is imported and inspected the way the kernel's loader does it: the hooks
it implements are registered on a fresh pluggy manager carrying every hook
spec, so unknown hooks, argument names a spec does not offer and hook wrappers
are found before a user installs the plugin; then its registration hooks are
called to learn the backends, settings and commands it declares."""

from __future__ import annotations

import configparser
import importlib
import importlib.metadata as md
import inspect
import sys
import traceback
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pluggy
from packaging.requirements import InvalidRequirement, Requirement

from workeros.hookspecs import PROJECT, SPEC_MODULES

GROUP = "workeros"
CLASSIFIER = "Framework :: workeros"
KEYWORD = "workeros-plugin"


@dataclass
class Finding:
    level: str  # "error" (not listable) or "warning"
    code: str
    message: str


@dataclass
class PluginMeta:
    """The metadata of one distribution, wherever it was read from."""

    name: str
    version: str
    summary: str = ""
    license: str = ""
    keywords: list[str] = field(default_factory=list)
    classifiers: list[str] = field(default_factory=list)
    requires: list[str] = field(default_factory=list)
    extras: list[str] = field(default_factory=list)
    entry_points: list[tuple[str, str]] = field(default_factory=list)
    urls: dict[str, str] = field(default_factory=dict)
    #: A folder or wheel to put on ``sys.path`` to import the entry points.
    path: str | None = None

    @property
    def workeros_requirement(self) -> Requirement | None:
        for line in self.requires:
            try:
                req = Requirement(line)
            except InvalidRequirement:
                continue
            if req.name.lower() == "workeros" and not (req.marker and "extra" in str(req.marker)):
                return req
        return None


@dataclass
class Described:
    """What a plugin's entry points implement and declare."""

    hooks: list[str] = field(default_factory=list)
    backends: list[dict[str, Any]] = field(default_factory=list)
    settings: list[dict[str, Any]] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)


# -- reading metadata --------------------------------------------------------------
def load_meta(target: str) -> PluginMeta:
    """``target`` is an installed distribution's name, a ``.whl`` file or a
    source folder with ``setup.cfg``. Raises ``LookupError`` when it is none."""
    path = Path(target)
    if path.suffix == ".whl" and path.is_file():
        return _from_wheel(path)
    if path.is_dir():
        if not (path / "setup.cfg").is_file():
            raise LookupError(f"{target}: no setup.cfg in this folder")
        return _from_setup_cfg(path)
    try:
        return from_distribution(md.distribution(target))
    except md.PackageNotFoundError:
        raise LookupError(f"{target}: no installed distribution, wheel or source folder of that name") from None


def from_distribution(dist: md.Distribution, path: str | None = None) -> PluginMeta:
    meta = dist.metadata
    urls = {}
    for line in meta.get_all("Project-URL") or ():
        label, _, url = line.partition(",")
        urls[label.strip()] = url.strip()
    if meta.get("Home-page"):
        urls.setdefault("Homepage", meta["Home-page"])
    keywords = (meta.get("Keywords") or "").replace(",", " ").split()
    return PluginMeta(
        name=meta["Name"], version=meta["Version"], summary=meta.get("Summary") or "",
        license=meta.get("License-Expression") or meta.get("License") or _license_classifier(meta.get_all("Classifier")),
        keywords=keywords, classifiers=list(meta.get_all("Classifier") or ()), requires=list(dist.requires or ()),
        extras=list(meta.get_all("Provides-Extra") or ()),
        entry_points=[(ep.name, ep.value) for ep in dist.entry_points if ep.group == GROUP],
        urls=urls, path=path)


def _license_classifier(classifiers: list[str] | None) -> str:
    for line in classifiers or ():
        if line.startswith("License :: "):
            return line.rsplit(" :: ", 1)[-1]
    return ""


def _from_wheel(wheel: Path) -> PluginMeta:
    with zipfile.ZipFile(wheel) as archive:
        info = sorted({n.split("/")[0] for n in archive.namelist() if n.split("/")[0].endswith(".dist-info")})
    if not info:
        raise LookupError(f"{wheel}: not a wheel (no .dist-info folder)")
    dist = md.PathDistribution(zipfile.Path(wheel, at=info[0] + "/"))  # type: ignore[arg-type]
    return from_distribution(dist, path=str(wheel))


def _lines(value: str) -> list[str]:
    return [line.strip() for line in value.splitlines() if line.strip() and not line.strip().startswith("#")]


def _from_setup_cfg(folder: Path) -> PluginMeta:
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(folder / "setup.cfg", encoding="utf-8")
    metadata = cfg["metadata"] if cfg.has_section("metadata") else {}
    options = cfg["options"] if cfg.has_section("options") else {}
    requires = _lines(options.get("install_requires", ""))
    extras = cfg.options("options.extras_require") if cfg.has_section("options.extras_require") else []
    entry_points = []
    if cfg.has_option("options.entry_points", GROUP):
        for line in _lines(cfg["options.entry_points"][GROUP]):
            name, _, value = line.partition("=")
            entry_points.append((name.strip(), value.strip()))
    urls = {}
    for line in _lines(metadata.get("project_urls", "")):
        label, _, url = line.partition("=")
        urls[label.strip()] = url.strip()
    if metadata.get("url"):
        urls.setdefault("Homepage", metadata["url"])
    classifiers = _lines(metadata.get("classifiers", ""))
    package_dir = _lines(options.get("package_dir", ""))
    root = folder
    for line in package_dir:  # "= src" puts the packages under src/
        key, _, value = line.partition("=")
        if not key.strip():
            root = folder / value.strip()
    return PluginMeta(
        name=metadata.get("name", folder.name), version=metadata.get("version", "0"),
        summary=metadata.get("description", ""),
        license=metadata.get("license", "") or _license_classifier(classifiers),
        keywords=metadata.get("keywords", "").replace(",", " ").split(), classifiers=classifiers,
        requires=requires, extras=extras, entry_points=entry_points, urls=urls, path=str(root))


# -- inspecting entry points --------------------------------------------------------
@contextmanager
def _importable(path: str | None) -> Iterator[None]:
    if path is None:
        yield
        return
    sys.path.insert(0, path)
    importlib.invalidate_caches()
    try:
        yield
    finally:
        sys.path.remove(path)


def _load(value: str) -> Any:
    module, _, attr = value.partition(":")
    obj: Any = importlib.import_module(module.strip())
    for part in filter(None, attr.strip().split(".")):
        obj = getattr(obj, part)
    return obj


def _spec_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(PROJECT)
    for module in SPEC_MODULES:
        pm.add_hookspecs(importlib.import_module(module))
    return pm


def describe(meta: PluginMeta) -> Described:
    """Import each ``workeros`` entry point of ``meta`` and inspect it."""
    out = Described()
    with _importable(meta.path):
        for name, value in meta.entry_points:
            try:
                obj = _load(value)
            except Exception:
                out.findings.append(Finding("error", "import", f"entry point {name} = {value} does not import:\n"
                                            + traceback.format_exc(limit=-3)))
                continue
            pm = _spec_manager()
            if not _register(pm, obj, name, value, out.findings):
                continue
            hooks = sorted(impl.name for impl in pm.get_hookcallers(obj) or ())
            out.hooks = sorted(set(out.hooks) | set(hooks))
            _declared(pm, set(hooks), name, out)
    return out


def _registered(pm: pluggy.PluginManager, hooks: set[str], hook: str, name: str, out: Described) -> list[Any]:
    """The entries one plugin's registration hook returns (it is the only
    plugin on ``pm``)."""
    if hook not in hooks:
        return []
    try:
        return [entry for result in getattr(pm.hook, hook)() or () for entry in result or ()]
    except Exception:
        out.findings.append(Finding("error", "hook-call", f"{hook}() of {name} raised:\n"
                                    + traceback.format_exc(limit=-3)))
        return []


def _declared(pm: pluggy.PluginManager, hooks: set[str], name: str, out: Described) -> None:
    from workeros.registry import AREAS

    for key in _registered(pm, hooks, "workeros_register_config_keys", name, out):
        out.settings.append(_setting(key, name))
    for area in AREAS:
        for entry in _registered(pm, hooks, area.hook, name, out):
            out.backends.append({"area": area.name, "name": entry.name, "priority": entry.priority,
                                 "description": entry.description, "plugin": name})
            known = {s["name"] for s in out.settings}
            out.settings.extend(_setting(key, name, backend=entry.name) for key in entry.config_keys
                                if key.name not in known)
    out.commands += [command.name for command in _registered(pm, hooks, "workeros_register_commands", name, out)]


def _setting(key: Any, plugin: str, backend: str | None = None) -> dict[str, Any]:
    secret = bool(key.secret)
    return {"name": key.name, "type": key.type, "default": None if secret else _plain(key.default),
            "description": key.description, "secret": secret, "plugin": plugin,
            **({"backend": backend} if backend else {})}


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return repr(value)


def _register(pm: pluggy.PluginManager, obj: Any, name: str, value: str, findings: list[Finding]) -> bool:
    """Register ``obj`` as the kernel would; record why it would be refused."""
    ok = True
    for attr in sorted(a for a in dir(obj) if a.startswith("workeros_")):
        function = getattr(obj, attr, None)
        if not callable(function):
            continue
        opts = getattr(function, f"{PROJECT}_impl", None)
        if not hasattr(pm.hook, attr):
            findings.append(Finding("error", "unknown-hook", f"{value}: {attr} is not a workeros hook"))
            ok = False
        elif opts is None:
            findings.append(Finding("warning", "not-marked", f"{value}: {attr} is not decorated with @hookimpl, "
                                    "so it is never called"))
        elif opts.get("hookwrapper") or opts.get("wrapper"):
            findings.append(Finding("error", "wrapper", f"{value}: {attr} is a hook wrapper; workeros calls each "
                                    "implementation on its own and refuses wrappers"))
            ok = False
        elif inspect.isasyncgenfunction(function) or inspect.isgeneratorfunction(function):
            findings.append(Finding("error", "bad-hook", f"{value}: {attr} is a generator; hooks return values"))
            ok = False
    if not ok:
        return False
    try:
        pm.register(obj, name=name)
    except pluggy.PluginValidationError as exc:
        findings.append(Finding("error", "bad-signature", f"{value}: {exc}"))
        return False
    return True


# -- the check ----------------------------------------------------------------------
def check_meta(meta: PluginMeta, described: Described | None = None) -> list[Finding]:
    """Every finding on ``meta``; a plugin with an ``error`` is not listable."""
    findings: list[Finding] = []
    if not meta.entry_points:
        findings.append(Finding("error", "entry-point", f"{meta.name} has no entry point in the {GROUP!r} group "
                                "([options.entry_points] workeros = NAME = module)"))
    if CLASSIFIER not in meta.classifiers:
        findings.append(Finding("error", "classifier", f"the classifier {CLASSIFIER!r} is missing"))
    if KEYWORD not in meta.keywords:
        findings.append(Finding("warning", "keyword", f"the keyword {KEYWORD!r} is missing"))
    req = meta.workeros_requirement
    if req is None:
        findings.append(Finding("error", "version-bound", "no requirement on workeros (install_requires = "
                                "workeros>=X.Y,<X.Z)"))
    elif not req.specifier:
        findings.append(Finding("error", "version-bound", f"the requirement {req} has no version bound"))
    else:
        ops = {spec.operator for spec in req.specifier}
        if not ops & {"<", "<=", "==", "~=", "==="}:
            findings.append(Finding("warning", "version-bound", f"{req} has no upper bound: a future workeros "
                                    "may change the hooks it relies on"))
        if not ops & {">", ">=", "==", "~=", "==="}:
            findings.append(Finding("error", "version-bound", f"{req} has no lower bound"))
    if not meta.summary:
        findings.append(Finding("warning", "summary", "no summary (description in setup.cfg)"))
    if not meta.license:
        findings.append(Finding("warning", "license", "no licence declared"))
    described = described if described is not None else describe(meta)
    findings += described.findings
    if meta.entry_points and not described.hooks and not any(f.level == "error" for f in described.findings):
        findings.append(Finding("warning", "no-hooks", "the entry points implement no hook"))
    return findings


def check(target: str) -> tuple[PluginMeta, Described, list[Finding]]:
    meta = load_meta(target)
    described = describe(meta)
    return meta, described, check_meta(meta, described)


def findings_json(findings: list[Finding]) -> list[dict[str, str]]:
    return [asdict(f) for f in findings]
