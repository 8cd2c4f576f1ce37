"""Loader for the fixture safe primes in tests/vectors/safe_primes.json (`make test-primes`).

Fixtures only save the prime search: every proof about the moduli built from them runs in full.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from enclave.crypto.primes import FixtureSource

PATH = Path(__file__).resolve().parent.parent / "vectors" / "safe_primes.json"


@cache
def primes(bits: int) -> tuple[int, ...]:
    doc = json.loads(PATH.read_text())
    return tuple(int(h, 16) for h in doc["primes"][str(bits)])


def source() -> FixtureSource:
    """A fresh source over every fixture prime (pairs are handed out in order, then cycle)."""
    return FixtureSource(primes(1024) + primes(1536))
