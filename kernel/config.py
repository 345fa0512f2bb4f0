"""Settings: defaults <- config file <- environment (WORKEROS_*) <- CLI flags.

Every key is declared (by the kernel or by a plugin through
``workeros_register_config_keys``) with a name, a type, a default and a description,
so values are coerced once, unknown keys are reported and ``workeros config`` can
print every setting with where its value came from. Values in the config file may be
``{"$env": "NAME"}`` or ``{"$file": "/run/secrets/x"}``.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workeros.errors import StartupError
from workeros.hookspecs.lifecycle import ConfigKey

ENV_PREFIX = "WORKEROS_"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_MISSING = object()

KERNEL_KEYS: tuple[ConfigKey, ...] = (
    ConfigKey("config", "str", None, "Path of the TOML config file (default: workeros.toml in the data dir)"),
    ConfigKey("data_dir", "str", ".workeros", "Where the embedded database, files and config live"),
    ConfigKey("server.host", "str", "127.0.0.1", "Interface to listen on"),
    ConfigKey("server.port", "int", 8055, "Port to listen on"),
    ConfigKey("server.workers", "int", 1, "Worker processes sharing the port (SO_REUSEPORT)"),
    ConfigKey("server.max_body_size", "int", 10 * 1024 * 1024, "Largest request body in bytes (413 beyond)"),
    ConfigKey("server.shutdown_timeout", "float", 30.0, "Seconds in-flight requests get to finish on SIGTERM"),
    ConfigKey("server.header_timeout", "float", 10.0,
              "Seconds a new connection has to send its first request's complete headers (then it is closed)"),
    ConfigKey("server.max_connections", "int", 1000,
              "Open client connections per process; more are answered 503 and closed at once (0: no cap)"),
    ConfigKey("server.accept_error_log_interval", "float", 10.0,
              "Seconds between log lines about failing accepts (file-descriptor limit reached)"),
    ConfigKey("server.event_loop", "str", "asyncio",
              "Event loop: asyncio, uvloop (faster network I/O; must be installed), or auto (uvloop where "
              "installed). With uvloop, running out of file descriptors is not reported once per "
              "server.accept_error_log_interval",
              choices=("auto", "uvloop", "asyncio")),
    ConfigKey("server.public_url", "str", None, "Public base URL, used in links sent by email"),
    ConfigKey("server.expose_plugins", "bool", False, "Serve /api/server/plugins to non-admins"),
    ConfigKey("database.url", "str", lambda s: f"sqlite:///{Path(s['data_dir']).resolve() / 'data.db'}",
              "SQLAlchemy-style URL; the scheme picks the dialect plugin"),
    ConfigKey("database.migrate_on_start", "bool", True, "Run system migrations when the server starts"),
    ConfigKey("database.pool_size", "int", 10, "Connections per process (PostgreSQL)"),
    ConfigKey("database.pool_timeout", "float", 30.0,
              "Seconds a request waits for a free database connection before it is answered 503"),
    ConfigKey("database.statement_timeout_ms", "int", 30000, "Server-side statement timeout (PostgreSQL)"),
    ConfigKey("log.level", "str", "info", "Log level", choices=("debug", "info", "warning", "error")),
    ConfigKey("log.format", "str", "text", "Log format", choices=("text", "json")),
    ConfigKey("log.access", "bool", True, "Write an access log line per request"),
    ConfigKey("load_plugins", "list", None, "Only load these plugins (entry-point names); essentials always load"),
    ConfigKey("disable_plugins", "list", [], "Never load these plugins (essentials cannot be disabled)"),
    ConfigKey("strict_plugins", "bool", False, "A plugin that fails to load stops boot"),
    ConfigKey("trace_plugins", "bool", False, "Log every hook call"),
    ConfigKey("plugins_dir", "str", None, "A folder of single-file plugins (*.py) to load"),
    ConfigKey("runtime", "str", "aiohttp", "Deploy runtime"),
)


def env_name(key: str) -> str:
    return ENV_PREFIX + re.sub(r"[.\-]", "_", key).upper()


def is_secret(key: ConfigKey) -> bool:
    """Whether a setting is hidden: only what its declaration says (``secret=True``).
    Names are not guessed from (``auth.token_ttl`` is a number, not a secret)."""
    return bool(key.secret)


def mask_url(value: str) -> str:
    """Hide the password in a URL such as postgresql://user:pw@host/db."""
    return re.sub(r"(//[^:/@]+:)[^@/]*@", r"\1***@", value)


@dataclass(frozen=True)
class SettingInfo:
    name: str
    value: Any
    source: str
    owner: str
    type: str
    description: str
    secret: bool


def _flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested TOML tables -> dotted keys. ``[plugins.workeros-x]`` maps to ``x.``."""
    out: dict[str, Any] = {}
    for k, v in tree.items():
        if not prefix and k == "plugins" and isinstance(v, Mapping):
            for dist, sub in v.items():
                ns = re.sub(r"^workeros[-_]", "", dist).replace("-", "_")
                if isinstance(sub, Mapping):
                    out.update(_flatten(sub, ns + "."))
            continue
        name = prefix + k
        if isinstance(v, Mapping) and not _is_indirect(v):
            out.update(_flatten(v, name + "."))
        else:
            out[name] = v
    return out


def _is_indirect(v: Any) -> bool:
    return isinstance(v, Mapping) and len(v) == 1 and next(iter(v)) in ("$env", "$file")


class Settings:
    """The effective settings. Read with ``settings["server.port"]``."""

    def __init__(
        self,
        *,
        file: Mapping[str, Any] | None = None,
        file_path: Path | None = None,
        env: Mapping[str, str] | None = None,
        cli: Mapping[str, Any] | None = None,
    ) -> None:
        self.file_path = file_path
        self._file = _flatten(file or {})
        self._env = {k: v for k, v in (os.environ if env is None else env).items() if k.startswith(ENV_PREFIX)}
        self._cli = {k: v for k, v in (cli or {}).items() if v is not None}
        self._keys: dict[str, ConfigKey] = {}
        self._owners: dict[str, str] = {}
        self._env_index: dict[str, str] = {}
        self._cache: dict[str, tuple[Any, str]] = {}
        #: The plugin set whose keys were declared (see workeros.http.app.declare_settings).
        self.declared_by: Any = None
        self.declare(KERNEL_KEYS, owner="workeros")

    # -- construction -------------------------------------------------------------
    @classmethod
    def load(
        cls, *, cli: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None
    ) -> Settings:
        """Read the config file named by ``--config``/``WORKEROS_CONFIG``, else
        ``workeros.toml`` in the data dir if it exists."""
        env = dict(os.environ if env is None else env)
        bootstrap = cls(env=env, cli=cli)
        path = bootstrap["config"]
        explicit = path is not None
        if path is None:
            path = str(Path(bootstrap["data_dir"]) / "workeros.toml")
        file_path = Path(path)
        data: dict[str, Any] = {}
        if file_path.is_file():
            try:
                data = tomllib.loads(file_path.read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise StartupError(f"cannot read config file {file_path}: {exc}") from None
        elif explicit:
            raise StartupError(f"config file {file_path} does not exist")
        return cls(file=data, file_path=file_path if data else None, env=env, cli=cli)

    def with_overrides(self, **values: Any) -> Settings:
        """A copy with extra CLI-level values (dotted names given with ``__``)."""
        clone = Settings.__new__(Settings)
        clone.__dict__.update(self.__dict__)
        clone._cli = {**self._cli, **{k.replace("__", "."): v for k, v in values.items() if v is not None}}
        clone._keys = dict(self._keys)
        clone._owners = dict(self._owners)
        clone._env_index = dict(self._env_index)
        clone._cache = {}
        return clone

    def declare(self, keys: Iterable[ConfigKey], owner: str) -> None:
        for key in keys:
            existing = self._owners.get(key.name)
            if existing is not None and existing != owner:
                raise StartupError(f"setting {key.name!r} is declared by both {existing} and {owner}")
            if key.type not in ("str", "int", "float", "bool", "list", "dict"):
                raise StartupError(f"setting {key.name!r} ({owner}) has unknown type {key.type!r}")
            self._keys[key.name] = key
            self._owners[key.name] = owner
            self._env_index[env_name(key.name)] = key.name
            self._cache.pop(key.name, None)

    # -- reading ------------------------------------------------------------------
    def __getitem__(self, name: str) -> Any:
        return self._resolve(name)[0]

    def get(self, name: str, default: Any = None) -> Any:
        if name not in self._keys:
            return default
        return self[name]

    def source(self, name: str) -> str:
        return self._resolve(name)[1]

    def __contains__(self, name: str) -> bool:
        return name in self._keys

    def _resolve(self, name: str) -> tuple[Any, str]:
        if name in self._cache:
            return self._cache[name]
        key = self._keys.get(name)
        if key is None:
            raise KeyError(f"setting {name!r} is not declared")
        if name in self._cli:
            result = (self._coerce(key, self._cli[name], "cli"), "cli")
        elif env_name(name) in self._env:
            result = (self._coerce(key, self._env[env_name(name)], "env"), "env")
        elif (raw := self._from_file(key)) is not _MISSING:
            result = (self._coerce(key, raw, "file"), "file")
        else:
            default = key.default(self) if callable(key.default) else key.default
            result = (default, "default")
        self._cache[name] = result
        return result

    def _from_file(self, key: ConfigKey) -> Any:
        if key.name in self._file:
            return self._indirect(key, self._file[key.name])
        if key.type == "dict":
            prefix = key.name + "."
            sub = {k[len(prefix):]: self._indirect(key, v) for k, v in self._file.items() if k.startswith(prefix)}
            if sub:
                return sub
        return _MISSING

    def _indirect(self, key: ConfigKey, value: Any) -> Any:
        if not _is_indirect(value):
            return value
        (kind, target), = value.items()
        if kind == "$env":
            if target not in os.environ:
                raise StartupError(f"setting {key.name!r} refers to environment variable {target} which is not set")
            return os.environ[target]
        try:
            return Path(target).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise StartupError(f"setting {key.name!r}: cannot read {target}: {exc.strerror}") from None

    def _coerce(self, key: ConfigKey, value: Any, source: str) -> Any:
        try:
            out = _coerce(key.type, value)
        except (TypeError, ValueError):
            shown = "(hidden)" if is_secret(key) else repr(value)
            raise StartupError(f"setting {key.name!r} from {source}: {shown} is not a valid {key.type}") from None
        if key.choices and out not in key.choices:
            raise StartupError(f"setting {key.name!r} from {source} must be one of {', '.join(map(str, key.choices))}")
        return out

    # -- reporting ----------------------------------------------------------------
    def unknown(self) -> list[tuple[str, str]]:
        """(source, name) of values set in the file or environment that no one declared."""
        out: list[tuple[str, str]] = []
        dict_keys = [k for k, v in self._keys.items() if v.type == "dict"]
        for name in self._file:
            if name not in self._keys and not any(name.startswith(d + ".") for d in dict_keys):
                out.append(("file", name))
        for var in self._env:
            if var not in self._env_index:
                out.append(("env", var))
        return sorted(out)

    def describe(self) -> list[SettingInfo]:
        rows = []
        for name in sorted(self._keys):
            key = self._keys[name]
            value, source = self._resolve(name)
            secret = is_secret(key)
            if secret and value is not None:
                value = "***"
            elif isinstance(value, str):
                value = mask_url(value)
            rows.append(SettingInfo(name, value, source, self._owners[name], key.type, key.description, secret))
        return rows

    def keys(self) -> list[str]:
        return sorted(self._keys)


def _coerce(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "str":
        if isinstance(value, (dict, list)):
            raise TypeError
        return str(value)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError
    if kind == "int":
        if isinstance(value, bool) or isinstance(value, float):
            raise TypeError
        return int(str(value).strip())
    if kind == "float":
        if isinstance(value, bool):
            raise TypeError
        return float(value)
    if kind == "list":
        if isinstance(value, (list, tuple)):
            return list(value)
        text = str(value).strip()
        if text.startswith("["):
            parsed = json.loads(text)
            if not isinstance(parsed, list):
                raise TypeError
            return parsed
        return [part.strip() for part in text.split(",") if part.strip()]
    if kind == "dict":
        if isinstance(value, Mapping):
            return dict(value)
        parsed = json.loads(str(value))
        if not isinstance(parsed, dict):
            raise TypeError
        return parsed
    raise TypeError(kind)


def setting_or(settings: Any, name: str, default: Any) -> Any:
    """``settings[name]``, or ``default`` when the key is not declared (the plugin
    that declares it is not loaded) or its value is None."""
    try:
        value = settings[name]
    except KeyError:
        return default
    return default if value is None else value
