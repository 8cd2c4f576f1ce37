"""The committed generated code (mpc/v1) is exactly what `make proto` produces from proto/."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_generated_code_is_fresh(tmp_path: Path) -> None:
    subprocess.run(
        # STAMP points at an existing file so the order-only venv prerequisite never reinstalls
        ["make", "-s", "proto", f"PROTO_OUT={tmp_path}", f"PY={sys.executable}", "STAMP=Makefile"],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=120,
    )
    generated = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    committed = sorted(p.relative_to(REPO) for p in (REPO / "mpc" / "v1").glob("*_pb2*.py*"))
    assert generated == committed, "generated file set differs: run `make proto` and commit"
    stale = [str(p) for p in generated if (tmp_path / p).read_bytes() != (REPO / p).read_bytes()]
    assert not stale, f"stale generated code {stale}: run `make proto` and commit"
