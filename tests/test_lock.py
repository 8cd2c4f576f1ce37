"""The dependency locks: pyproject.toml declares, requirements/*.lock pin the whole closure with
hashes, and this virtualenv holds exactly the dev lock (so what CI tests is what the lock names).

tools/check_lock.py does the checking; these tests run it on the repository and on altered
copies, so a check that stopped finding a disagreement would fail here."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


check_lock = load("check_lock")
lock_subset = load("lock_subset")


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """pyproject.toml and requirements/ as they are, in a folder a test may change."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(ROOT / "requirements", tmp_path / "requirements")
    return tmp_path


def test_the_locks_agree_with_pyproject() -> None:
    assert check_lock.problems() == []


def test_this_virtualenv_holds_exactly_the_dev_lock() -> None:
    """The proof that nothing was installed from outside the lock: every distribution in the
    environment running the tests is in requirements/dev.lock at its locked version, and every
    locked package is installed."""
    assert check_lock.venv_problems() == []


def test_every_entry_is_pinned_with_hashes() -> None:
    for name in ("runtime.lock", "dev.lock"):
        pins = check_lock.read_lock(ROOT / "requirements" / name)
        assert len(pins) > 10
        assert all(pin.hashes for pin in pins.values()), name


def test_a_declared_dependency_missing_from_the_lock_is_found(copy: Path) -> None:
    lock = copy / "requirements" / "runtime.lock"
    lock.write_text(re.sub(r"(?ms)^cbor2==.*?(?=^\S)", "", lock.read_text()))
    found = check_lock.problems(copy)
    assert any("cbor2 is declared but not in runtime.lock" in p for p in found), found
    assert any("cbor2 is in dev.lock" not in p for p in found)


def test_a_locked_version_outside_the_declared_pin_is_found(copy: Path) -> None:
    project = copy / "pyproject.toml"
    project.write_text(project.read_text().replace('"cbor2==6.2.1"', '"cbor2==6.2.0"'))
    found = check_lock.problems(copy)
    assert any("cbor2: runtime.lock pins 6.2.1, outside the declared ==6.2.0" in p for p in found), found


def test_a_runtime_package_locked_differently_for_development_is_found(copy: Path) -> None:
    dev = copy / "requirements" / "dev.lock"
    text = dev.read_text()
    dev.write_text(text.replace("idna==3.20 ", "idna==3.19 ", 1))
    found = check_lock.problems(copy)
    assert any(p.startswith("idna: dev.lock pins 3.19, runtime.lock 3.20") for p in found), found


def test_an_unpinned_or_hashless_line_is_refused(copy: Path) -> None:
    lock = copy / "requirements" / "runtime.lock"
    lock.write_text(lock.read_text() + "requests>=2\n")
    with pytest.raises(ValueError, match="not name==version pins"):
        check_lock.problems(copy)
    lock.write_text(lock.read_text().replace("requests>=2\n", "extra-pkg==1.0\n"))
    assert "extra-pkg has no hash in runtime.lock" in check_lock.problems(copy)


def test_an_installed_package_outside_the_lock_is_found() -> None:
    have = check_lock.installed()
    assert check_lock.venv_problems(have={**have, "left-over": "0.1"}) == [
        "left-over==0.1 is installed but not in dev.lock"
    ]
    version = have["cbor2"]
    assert check_lock.venv_problems(have={**have, "cbor2": "0.0.1"}) == [f"cbor2: installed 0.0.1, locked {version}"]


def test_the_build_system_and_lock_tools_are_locked() -> None:
    dev = check_lock.read_lock(ROOT / "requirements" / "dev.lock")
    for name in ("setuptools", "wheel", "pip", "pip-tools"):
        assert name in dev, name


def test_the_check_runs_as_make_runs_it() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "check_lock.py"), "--venv"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "holds exactly requirements/dev.lock" in done.stdout


def test_lock_subset_prints_the_locked_entries_with_their_hashes(tmp_path: Path) -> None:
    text = (ROOT / "requirements" / "runtime.lock").read_text()
    out = tmp_path / "subset.txt"
    with out.open("w") as f:
        done = subprocess.run(
            [
                sys.executable,
                str(ROOT / "tools" / "lock_subset.py"),
                str(ROOT / "requirements" / "runtime.lock"),
                "PyNaCl",
                "cbor2",
            ],
            stdout=f,
            text=True,
            check=False,
        )
    assert done.returncode == 0
    subset = check_lock.read_lock(out)
    full = check_lock.read_lock(ROOT / "requirements" / "runtime.lock")
    assert subset == {"pynacl": full["pynacl"], "cbor2": full["cbor2"]}
    assert "pynacl==" in text
    missing = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "lock_subset.py"),
            str(ROOT / "requirements" / "runtime.lock"),
            "no-such-package",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 2 and "no-such-package" in missing.stderr and not missing.stdout


def test_make_installs_only_from_the_lock() -> None:
    out = subprocess.run(
        ["make", "-n", "-B", "-C", str(ROOT), ".venv/.installed"], capture_output=True, text=True, check=True
    ).stdout
    installs = [line for line in out.splitlines() if "pip install" in line]
    assert installs == [
        ".venv/bin/python -m pip install --quiet --require-hashes --no-deps -r requirements/dev.lock",
        ".venv/bin/python -m pip install --quiet --no-deps --no-build-isolation -e .",
    ]
    assert ".venv/bin/python tools/check_lock.py --venv" in out
