"""System migrations (Alembic), run on an open async connection.

The kernel's revisions form one chain, recorded in ``wos_migrations``. Every
plugin with system tables of its own (``workeros_register_migrations``) has its
own chain, recorded in its own table ``wos_migrations_<name>``, upgraded after
the kernel's: removing a plugin leaves its tables and its record untouched and
never blocks the kernel's upgrades. Idempotent: upgrading an up-to-date database
does nothing. On PostgreSQL the whole upgrade is one transaction (DDL is
transactional there); on SQLite each migration uses batch mode, which rebuilds
tables where ALTER cannot.

Alembic (with Mako) is imported only when a chain has something to apply or a
revision is asked for: a start on a database already at every head reads the
version tables and the revision files' identifiers (parsed, not imported), and
loads no Alembic at all.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from workeros.db.database import Database
from workeros.errors import StartupError

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from workeros.hookspecs.lifecycle import Migrations
    from workeros.plugins import Plugins

SCRIPT_LOCATION = str(Path(__file__).parent / "migrations")
VERSION_TABLE = "wos_migrations"
_BRANCH = re.compile(r"^[a-z][a-z0-9_]{0,40}$")


def load_alembic() -> None:
    """Import Alembic, once per process, without Mako's Pygments highlighting.

    Alembic imports Mako (for its revision templates), and Mako's error module
    imports Pygments (about 5 MB) at once when it is installed, only to colour
    HTML error pages no one here renders. Hidden while Alembic loads, Mako uses
    its own plain fallback (as without Pygments); revision templates render
    the same. Call before any other Alembic import.
    """
    if "alembic.util" in sys.modules or "mako.exceptions" in sys.modules:
        return
    hidden = "mako.ext.pygmentplugin"
    if hidden in sys.modules:
        import alembic.util  # noqa: F401
        return
    sys.modules[hidden] = None  # type: ignore[assignment]  # "import it" raises ImportError
    try:
        import alembic.util  # noqa: F401
    finally:
        if hidden in sys.modules and sys.modules[hidden] is None:
            del sys.modules[hidden]


def plugin_migrations(plugins: Plugins | None) -> list[Migrations]:
    """The migration chains plugins register, in plugin order; names must be
    unique and fit a table name."""
    if plugins is None:
        return []
    found: dict[str, Migrations] = {}
    for info, entries in plugins.collect("workeros_register_migrations"):
        for entry in entries:
            if not _BRANCH.match(entry.name):
                raise StartupError(f"plugin {info.name!r}: migrations name {entry.name!r} must be lowercase "
                                   "letters, digits and underscores")
            if entry.name in found:
                raise StartupError(f"two plugins register migrations named {entry.name!r}")
            found[entry.name] = entry
    return list(found.values())


def alembic_config(connection: Any = None, migrations: Migrations | None = None) -> Config:
    load_alembic()
    from alembic.config import Config

    alembic_version = tuple(int(part) for part in importlib.metadata.version("alembic").split(".")[:2])
    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    # "os": paths split on os.pathsep (the option was renamed in Alembic 1.16).
    cfg.set_main_option("path_separator" if alembic_version >= (1, 16) else "version_path_separator", "os")
    if migrations is not None:
        cfg.set_main_option("version_locations", str(migrations.location))
        cfg.attributes["version_table"] = version_table(migrations)
    cfg.attributes["connection"] = connection
    return cfg


#: Script directories by (script location, version locations): reading one
#: imports every revision file of its chain, and a process (a test run, a
#: supervisor) starts many apps on the same chains.
_scripts: dict[tuple[str | None, str | None], ScriptDirectory] = {}


def _script_directory(cfg: Config) -> ScriptDirectory:
    load_alembic()
    from alembic.script import ScriptDirectory

    key = (cfg.get_main_option("script_location"), cfg.get_main_option("version_locations"))
    script = _scripts.get(key)
    if script is None:
        script = _scripts[key] = ScriptDirectory.from_config(cfg)
    return script


def _upgrade(cfg: Config, revision: str) -> None:
    """``alembic upgrade`` (as ``alembic.command.upgrade`` runs it) with the
    chain's script directory read once per process."""
    load_alembic()
    from alembic.runtime.environment import EnvironmentContext

    script = _script_directory(cfg)

    def steps(rev: Any, context: Any) -> Any:
        return script._upgrade_revs(revision, rev)

    with EnvironmentContext(cfg, script, fn=steps, as_sql=False, starting_rev=None, destination_rev=revision):
        script.run_env()


def version_table(migrations: Migrations | None) -> str:
    return VERSION_TABLE if migrations is None else f"{VERSION_TABLE}_{migrations.name}"


async def upgrade(db: Database, revision: str = "head", *, plugins: Plugins | None = None) -> None:
    """Bring the kernel's chain to ``revision`` and, with ``plugins``, every
    plugin's chain to its head."""
    chains = plugin_migrations(plugins)

    def run(sync: Any) -> None:
        if revision in ("head", "heads") and all(_at_heads(sync, chain) for chain in (None, *chains)):
            return
        _upgrade(alembic_config(sync), revision)
        for chain in chains:
            _upgrade(alembic_config(sync, chain), "heads")

    async with db.transaction() as conn:
        await conn.run_sync(run)


#: Heads of each versions folder, from its files' ``revision``/``down_revision``
#: literals; None when a file is not in that plain shape (Alembic reads it then).
_file_heads: dict[str, frozenset[str] | None] = {}
_FIELDS = ("revision", "down_revision", "branch_labels", "depends_on")


def _versions_folder(migrations: Migrations | None) -> Path:
    return Path(SCRIPT_LOCATION) / "versions" if migrations is None else Path(migrations.location)


def _heads_from_files(folder: Path) -> frozenset[str] | None:
    key = str(folder)
    if key in _file_heads:
        return _file_heads[key]
    revisions: set[str] = set()
    parents: set[str] = set()
    heads: frozenset[str] | None = None
    try:
        for path in sorted(folder.glob("*.py")):
            if path.name.startswith((".#", "__init__")):  # as Alembic skips them
                continue
            values: dict[str, Any] = {}
            for node in ast.parse(path.read_text(encoding="utf-8")).body:
                target = (node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1
                          else node.target if isinstance(node, ast.AnnAssign) else None)
                if isinstance(target, ast.Name) and target.id in _FIELDS and node.value is not None:
                    values[target.id] = ast.literal_eval(node.value)
            # Branch labels name a chain and leave its heads as they are; a
            # dependency on another chain is Alembic's to weigh.
            if not isinstance(values.get("revision"), str) or values.get("depends_on"):
                raise ValueError(path.name)
            down = values.get("down_revision")
            revisions.add(values["revision"])
            parents.update((down,) if isinstance(down, str) else down or ())
        heads = frozenset(revisions - parents) or None
    except (OSError, SyntaxError, ValueError, TypeError):
        heads = None
    _file_heads[key] = heads
    return heads


def _at_heads(sync: Any, migrations: Migrations | None) -> bool:
    """Whether a chain's version table holds exactly its files' heads (checked
    without Alembic; any doubt answers False and Alembic decides)."""
    heads = _heads_from_files(_versions_folder(migrations))
    if heads is None:
        return False
    table = version_table(migrations)
    if not sa.inspect(sync).has_table(table):
        return False
    rows = sync.execute(sa.select(sa.column("version_num")).select_from(sa.table(table))).scalars().all()
    return len(rows) == len(heads) and set(rows) == heads


async def current(db: Database, migrations: Migrations | None = None) -> str | None:
    """The revision the database is at: the kernel's chain, or a plugin's."""
    heads = await current_heads(db, migrations)
    return heads[0] if heads else None


async def current_heads(db: Database, migrations: Migrations | None = None) -> tuple[str, ...]:
    load_alembic()
    from alembic.runtime.migration import MigrationContext

    async with db.read() as conn:
        heads = await conn.run_sync(lambda sync: MigrationContext.configure(
            sync, opts={"version_table": version_table(migrations)}).get_current_heads())
    return tuple(sorted(heads))


def head(migrations: Migrations | None = None) -> str | None:
    """The newest revision of the kernel's chain (or of a plugin's)."""
    load_alembic()
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(None, migrations)).get_current_head()


async def status(db: Database, plugins: Plugins | None = None) -> dict[str, tuple[str | None, str | None]]:
    """``{"workeros" or plugin chain name: (current, head)}``."""
    out = {"workeros": (await current(db), head())}
    for chain in plugin_migrations(plugins):
        out[chain.name] = (await current(db, chain), head(chain))
    return out
