"""`python -m tests.service.unseal_fixture ...`: the enclave process exactly as
tests.service.fixture_enclave runs it (fixture safe primes, everything else the product's), and,
with MPC_TEST_PAUSE_COMMIT=before|after, a pause in the share file's commit
(enclave.unseal.keyfile.commit_file) before or after its rename: the process writes the path
MPC_TEST_PAUSE_MARKER and sleeps there, so a test can SIGKILL it in the middle of a rekey, with
the new file written and synced but not in place, or in place but not yet answered. Test harness
code: nothing in the product reads these variables.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import enclave.__main__ as enclave_main
from enclave.unseal import keyfile
from tests.service.fixture_enclave import _build_engine


def paused(original: Callable[[Path, Path], None], when: str, marker: Path) -> Callable[[Path, Path], None]:
    def commit(tmp: Path, path: Path) -> None:
        if when == "before":
            marker.write_text(str(tmp))
            time.sleep(120)
        original(tmp, path)
        if when == "after":
            marker.write_text(str(path))
            time.sleep(120)

    return commit


if __name__ == "__main__":
    enclave_main.build_engine = _build_engine  # type: ignore[assignment]
    when = os.environ.get("MPC_TEST_PAUSE_COMMIT")
    if when:
        keyfile.commit_file = paused(keyfile.commit_file, when, Path(os.environ["MPC_TEST_PAUSE_MARKER"]))  # type: ignore[assignment]
    sys.exit(enclave_main.main())
