"""Write the listing of every first-party plugin (``plugins/`` and ``contrib/``)
into docs/plugins/ — the static pages ``workeros plugins listing`` builds — or,
with ``--check``, fail when the committed listing differs from what the
installed code gives (``make lint``, so CI rebuilds it on every run)."""

from __future__ import annotations

import configparser
import filecmp
import sys
import tempfile
from pathlib import Path

from workeros.sdk import listing

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "plugins"


def first_party() -> set[str]:
    names = set()
    for setup_cfg in [*ROOT.glob("plugins/*/setup.cfg"), *ROOT.glob("contrib/*/setup.cfg")]:
        cfg = configparser.ConfigParser()
        cfg.read(setup_cfg)
        names.add(cfg["metadata"]["name"].lower().replace("_", "-"))
    return names


def build() -> dict:
    built = listing.build()
    wanted = first_party()
    plugins = [p for p in built["plugins"] if p["distribution"].lower().replace("_", "-") in wanted]
    return {**built, "plugins": plugins, "count": len(plugins)}


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def main() -> int:
    built = build()
    if "--check" not in sys.argv:
        for old in OUT.rglob("*") if OUT.exists() else []:
            if old.is_file():
                old.unlink()
        listing.write(built, OUT)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp)
        listing.write(built, fresh)
        names = _files(fresh)
        if not OUT.exists() or names != _files(OUT):
            print("docs/plugins is out of date: run scripts/gen_plugin_listing.py")
            return 1
        _, mismatch, errors = filecmp.cmpfiles(fresh, OUT, sorted(names), shallow=False)
        if mismatch or errors:
            print(f"docs/plugins is out of date ({', '.join((mismatch + errors)[:5])}): "
                  "run scripts/gen_plugin_listing.py")
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
