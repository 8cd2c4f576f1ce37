"""Prints the entries of a hash-pinned lock file for the named packages, for an image that needs
only some of the lock: the enclave image installs the enclave's dependencies from the same
requirements/runtime.lock that the host image and the test virtualenv install, with the same
versions and hashes, instead of keeping a second pin list by hand.

Usage: python lock_subset.py LOCK NAME [NAME ...] > subset.txt

Standard library only: it runs in the base image before anything is installed. Fails (exit 2)
when a name is not in the lock, so an image can never fall back to an unpinned install.
"""

from __future__ import annotations

import re
import sys


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def entries(text: str) -> dict[str, str]:
    """canonical name -> the entry's text: its `name==version` line and its `--hash` lines."""
    out: dict[str, str] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        match = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)==\S+", line)
        if match:
            current = [line]
            out[canonical(match.group(1))] = ""
            name = canonical(match.group(1))
        elif current is not None and line.lstrip().startswith("--hash="):
            current.append(line)
        else:
            current = None
            continue
        out[name] = "\n".join(current).rstrip(" \\")
    return out


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[0], encoding="utf-8") as f:
        pinned = entries(f.read())
    missing = [n for n in argv[1:] if canonical(n) not in pinned]
    if missing:
        print(f"lock_subset: not in {argv[0]}: {' '.join(missing)}", file=sys.stderr)
        return 2
    for name in argv[1:]:
        print(pinned[canonical(name)])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
