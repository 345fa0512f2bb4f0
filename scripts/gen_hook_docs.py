"""Write docs/plugin-hooks.md from the hook specs' docstrings.

Run ``python scripts/gen_hook_docs.py``; a test fails when the file is stale.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEADER = """# Plugin hooks

Every hook workeros calls, by area. Hooks are synchronous and may return an
awaitable (the kernel awaits it); none is `firstresult`. Implement them with
`from workeros.hookspecs import hookimpl`. See [writing-plugins.md](writing-plugins.md)
for a walk-through, and `hookspecs/` for the typed entries (`Dialect`,
`StorageBackend`, `Transport`, ...).

This file is generated from the specs' docstrings by `scripts/gen_hook_docs.py`.
"""


def render() -> str:
    from workeros.hookspecs import SPEC_MODULES

    out = [HEADER]
    for module_name in SPEC_MODULES:
        module = importlib.import_module(module_name)
        area = module_name.rsplit(".", 1)[1]
        out.append(f"\n## {area}\n")
        out.append(inspect.getdoc(module) or "")
        for name, fn in sorted(vars(module).items()):
            if not (name.startswith("workeros_") and callable(fn)):
                continue
            signature = str(inspect.signature(fn)).replace("'", "")
            out.append(f"\n### `{name}`\n")
            out.append(f"```python\n{name}{signature}\n```\n")
            doc = inspect.getdoc(fn) or ""
            doc = doc.replace("Example::\n", "Example:\n\n```python").replace(".. versionadded::", "*Added in*")
            if "```python" in doc:
                body, example = doc.split("```python", 1)
                example = "\n".join(line[4:] if line.startswith("    ") else line for line in example.splitlines())
                doc = body + "```python" + example.rstrip() + "\n```"
            out.append(doc)
    return "\n".join(out).rstrip() + "\n"


def main() -> int:
    path = ROOT / "docs" / "plugin-hooks.md"
    text = render()
    if "--check" in sys.argv:
        return 0 if path.read_text() == text else 1
    path.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
