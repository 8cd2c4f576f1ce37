"""Run every benchmark module and write one JSON document.

Usage: python -m bench [--only NAME ...] [--out FILE]
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time
from pathlib import Path

MODULES = ["frost", "gg20", "service", "transport", "unseal"]
# Run only when named (`--only soak`): ten minutes by default (MPC_SOAK_SECONDS), judged pass/fail.
ON_REQUEST = ["soak"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--only", action="append", choices=MODULES + ON_REQUEST, help="run only these benchmarks")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)
    results: dict[str, object] = {
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    for name in args.only or MODULES:
        try:
            module = importlib.import_module(f"bench.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"bench.{name}":
                results[name] = {"skipped": "benchmark module not present"}
                continue
            raise
        print(f"running {name} ...", file=sys.stderr)
        results[name] = module.run()
    text = json.dumps(results, indent=2, sort_keys=True)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    # A benchmark that judges its run (the soak) fails the command when the run failed.
    return 1 if any(isinstance(r, dict) and r.get("passed") is False for r in results.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
