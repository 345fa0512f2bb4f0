"""Check the architecture's import rules with import-linter.

The contracts are written here and the plugin packages discovered from
``plugins/*/``, ``contrib/*/`` and ``examples/*/`` (so a new plugin is checked without editing
anything): plugins import only ``workeros.api``, ``workeros.hookspecs`` and
``workeros.sdk`` from the kernel and never each other; the kernel's layers
(entry points → HTTP → services → storage) import only downwards, with the
services that share a layer independent of each other; the core modules
import no layer at all.

    python scripts/lint_imports.py            # exit 1 on a broken contract
    python scripts/lint_imports.py --print    # show the generated configuration
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Top to bottom; ``|`` separates modules of one layer that must not import each other,
#: ``:`` modules of one layer that may.
LAYERS = (
    "workeros.cli : workeros.commands : workeros.builtins",
    "workeros.api",
    "workeros.http",
    "workeros.services",
    "workeros.realtime | workeros.audit",
    "workeros.items | workeros.accounts",
    "workeros.permissions",
    "workeros.schema",
    "workeros.bus | workeros.outbound",
    "workeros.db",
)
#: Modules everything may import; they import none of the layers.
CORE = ("accountability", "background", "clock", "config", "errors", "logs", "plugins", "registry", "serialize")
#: What a plugin may import from the kernel.
PUBLISHED = ("api", "hookspecs", "sdk")


def kernel_modules() -> list[str]:
    names = set()
    for path in (ROOT / "kernel").iterdir():
        if path.name.startswith("_") or path.name.startswith("."):
            continue
        if path.is_dir() and (path / "__init__.py").exists():
            names.add(path.name)
        elif path.suffix == ".py":
            names.add(path.stem)
    return sorted(names)


def plugin_folders() -> list[Path]:
    """Folders holding a plugin package (``<folder>/workeros_<name>/``)."""
    return sorted({p.parent.parent for p in [*ROOT.glob("plugins/*/workeros_*/__init__.py"),
                                            *ROOT.glob("contrib/*/workeros_*/__init__.py"),
                                            *ROOT.glob("examples/*/workeros_*/__init__.py")]})


def plugin_packages() -> list[str]:
    found = []
    for folder in sorted([*ROOT.glob("plugins/*"), *ROOT.glob("contrib/*"), *ROOT.glob("examples/*")]):
        for package in sorted(folder.glob("workeros_*/__init__.py")):
            found.append(package.parent.name)
    return found


def config() -> str:
    plugins = plugin_packages()
    kernel = kernel_modules()
    forbidden = [f"workeros.{m}" for m in kernel if m not in PUBLISHED]
    layer_modules = {m.strip() for layer in LAYERS for m in layer.replace(":", "|").split("|")}
    lines = [
        "[importlinter]",
        "root_packages =",
        "    workeros",
        *(f"    {p}" for p in plugins),
        "include_external_packages = False",
        "exclude_type_checking_imports = True",
        "",
        "[importlinter:contract:plugins-use-the-api]",
        "name = Plugins import only workeros.api, workeros.hookspecs and workeros.sdk from the kernel",
        "type = forbidden",
        "source_modules =",
        *(f"    {p}" for p in plugins),
        "forbidden_modules =",
        *(f"    {m}" for m in forbidden),
        "allow_indirect_imports = True",
        "",
        "[importlinter:contract:plugins-independent]",
        "name = Plugins do not import each other",
        "type = independence",
        "modules =",
        *(f"    {p}" for p in plugins),
        "",
        "[importlinter:contract:kernel-layers]",
        "name = Kernel layers import only downwards (entry points, HTTP, services, storage)",
        "type = layers",
        "layers =",
        *(f"    {layer}" for layer in LAYERS),
        "",
        "[importlinter:contract:core-below-layers]",
        "name = Core modules import no layer",
        "type = forbidden",
        "source_modules =",
        *(f"    workeros.{m}" for m in CORE),
        "forbidden_modules =",
        *(f"    {m}" for m in sorted(layer_modules)),
        "",
    ]
    if len(plugins) < 2:  # an independence contract needs two modules
        start = lines.index("[importlinter:contract:plugins-independent]")
        del lines[start:start + 6]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    text = config()
    if "--print" in argv:
        print(text)
        return 0
    with tempfile.NamedTemporaryFile("w", suffix=".ini", delete=False) as handle:
        handle.write(text)
        path = handle.name
    # Plugins are found where they are (examples are not installed).
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*map(str, plugin_folders()),
                                                         os.environ.get("PYTHONPATH", "")])}
    try:
        return subprocess.call([str(Path(sys.executable).with_name("lint-imports")), path, "--no-cache"],
                               cwd=ROOT, env=env)
    finally:
        Path(path).unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
