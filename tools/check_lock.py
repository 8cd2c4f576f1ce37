"""Checks that the dependency locks agree with what pyproject.toml declares, and (--venv) that an
environment holds exactly what the dev lock names.

Usage: python tools/check_lock.py [--venv]

pyproject.toml is where direct dependencies are declared; requirements/runtime.lock and
requirements/dev.lock (written by `make lock`) pin the whole closure with hashes. This script is
what makes a disagreement between the two a failure instead of a surprise: a dependency declared
but not locked, a locked version outside its declared pin, a runtime package locked differently
for development, a lock entry without a hash, or an installed package that no lock names. It
needs only the standard library and `packaging` (both in the dev lock).
"""

from __future__ import annotations

import re
import sys
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
RUNTIME_LOCK = Path("requirements/runtime.lock")
DEV_LOCK = Path("requirements/dev.lock")
DEV_IN = Path("requirements/dev.in")
PROJECT = "mpc-signer"

_ENTRY = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)((?:\s*\\\n\s+--hash=sha256:[0-9a-f]{64})*)", re.M)
_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")


@dataclass(frozen=True)
class Pin:
    version: str
    hashes: frozenset[str]


def read_lock(path: Path) -> dict[str, Pin]:
    """name (canonical) -> its pinned version and the sha256 of every file it may install from."""
    text = path.read_text()
    pins: dict[str, Pin] = {}
    for name, version, tail in _ENTRY.findall(text):
        pins[canonicalize_name(name)] = Pin(version, frozenset(_HASH.findall(tail)))
    # Every requirement line is an entry: an unpinned, URL or editable line would escape the lock.
    stray = [
        line for line in text.splitlines() if line and not line.startswith((" ", "#")) and not _ENTRY.match(line + "\n")
    ]
    if stray:
        raise ValueError(f"{path.name}: lines that are not name==version pins: {stray}")
    return pins


def declared(root: Path = ROOT) -> tuple[list[Requirement], list[Requirement], list[Requirement]]:
    """(runtime, dev extra, build system) requirements as pyproject.toml states them."""
    data = tomllib.loads((root / "pyproject.toml").read_text())
    runtime = [Requirement(r) for r in data["project"]["dependencies"]]
    dev = [Requirement(r) for r in data["project"]["optional-dependencies"]["dev"]]
    build = [Requirement(r) for r in data["build-system"]["requires"]]
    return runtime, dev, build


def dev_inputs(root: Path = ROOT) -> list[Requirement]:
    out = []
    for line in (root / DEV_IN).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            out.append(Requirement(line))
    return out


def problems(root: Path = ROOT) -> list[str]:
    """Every disagreement between pyproject.toml, dev.in and the two locks (empty when they agree)."""
    found: list[str] = []
    runtime_lock, dev_lock = read_lock(root / RUNTIME_LOCK), read_lock(root / DEV_LOCK)
    runtime, dev, build = declared(root)

    def check(reqs: list[Requirement], lock: dict[str, Pin], lock_name: str) -> None:
        for req in reqs:
            name = canonicalize_name(req.name)
            pin = lock.get(name)
            if pin is None:
                found.append(f"{req.name} is declared but not in {lock_name}")
            elif not req.specifier.contains(pin.version, prereleases=True):
                found.append(f"{req.name}: {lock_name} pins {pin.version}, outside the declared {req.specifier}")

    check(runtime, runtime_lock, RUNTIME_LOCK.name)
    check(runtime + dev + build + dev_inputs(root), dev_lock, DEV_LOCK.name)
    for name, pin in runtime_lock.items():
        other = dev_lock.get(name)
        if other is None:
            found.append(f"{name} is in {RUNTIME_LOCK.name} but not in {DEV_LOCK.name}")
        elif other != pin:
            found.append(
                f"{name}: {DEV_LOCK.name} pins {other.version}, {RUNTIME_LOCK.name} {pin.version} "
                "(or their hashes differ): the tested set is not the shipped one"
            )
    for lock_name, lock in ((RUNTIME_LOCK.name, runtime_lock), (DEV_LOCK.name, dev_lock)):
        for name, pin in lock.items():
            if not pin.hashes:
                found.append(f"{name} has no hash in {lock_name}")
    return found


def installed() -> dict[str, str]:
    """What this interpreter's environment holds, name (canonical) -> version."""
    return {canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions()}


def venv_problems(root: Path = ROOT, have: dict[str, str] | None = None) -> list[str]:
    """Differences between an environment (by default this interpreter's) and the dev lock."""
    lock = read_lock(root / DEV_LOCK)
    have = dict(installed() if have is None else have)
    have.pop(PROJECT, None)
    found = [f"{n}=={v} is installed but not in {DEV_LOCK.name}" for n, v in sorted(have.items()) if n not in lock]
    found += [
        f"{n}: installed {have[n]}, locked {p.version}"
        for n, p in sorted(lock.items())
        if n in have and have[n] != p.version
    ]
    found += [f"{n}=={p.version} is locked but not installed" for n, p in sorted(lock.items()) if n not in have]
    return found


def main(argv: list[str]) -> int:
    found = problems()
    if "--venv" in argv:
        found += venv_problems()
    for line in found:
        print(f"check-lock: {line}", file=sys.stderr)
    if not found:
        what = "the locks agree with pyproject.toml"
        if "--venv" in argv:
            what += f"; {sys.prefix} holds exactly {DEV_LOCK}"
        print(f"check-lock: {what}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
