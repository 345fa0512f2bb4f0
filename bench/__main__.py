from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
from pathlib import Path

SUITES = sorted(
    p.stem for p in Path(__file__).parent.glob("*.py") if not p.stem.startswith("_") and p.stem != "common"
)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("suites", nargs="*", default=SUITES, help=f"which to run (default: all of {SUITES})")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run)")
    args = parser.parse_args()
    out_dir = Path(__file__).parent / "results"
    out_dir.mkdir(exist_ok=True)
    for name in args.suites:
        module = importlib.import_module(f"bench.{name}")
        print(f"== {name}")
        result = module.run(quick=args.quick)
        result["machine"] = {"python": sys.version.split()[0], "platform": platform.platform()}
        (out_dir / f"{name}.json").write_text(json.dumps(result, indent=2))
    return 0


raise SystemExit(main())
