"""Files only this node's user may read: the store, the development credentials.

Directories this module creates are 0700 down the whole missing path (`Path.mkdir(parents=True,
mode=...)` gives the mode to the last component only, leaving `var/` 0755 behind it), files
0600; `refuse_if_shared` is the start-time check that a file or directory someone else made is
not readable or writable by other local users.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path


class NotPrivate(Exception):
    """A path that other local users may read or write; the message says how to fix it."""


def private_dir(path: Path) -> None:
    """Create `path` and every missing parent with mode 0700 (existing ones are left as they are)."""
    missing = []
    for p in (path, *path.parents):
        if p.exists():
            break
        missing.append(p)
    for p in reversed(missing):
        try:
            p.mkdir(mode=0o700)
        except FileExistsError:
            continue
        os.chmod(p, 0o700)  # mkdir's mode passes through the umask


def private_file(path: Path) -> None:
    """Create `path` empty with mode 0600 if it does not exist."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def refuse_if_shared(*paths: Path) -> None:
    """Raise NotPrivate for the first existing path with any group or other permission bit."""
    for path in paths:
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o077:
            want = "700" if path.is_dir() else "600"
            raise NotPrivate(f"{path} has mode {mode:o}, open to other local users; `chmod {want} {path}`")
