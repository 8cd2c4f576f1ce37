"""Regenerate tests/vectors/safe_primes.json (`make test-primes`): fixture safe primes for tests.

Fixtures only save the prime search; every proof over the resulting moduli still runs in full.
Writes after each prime so an interrupted run keeps what it found. Usage:
    python -m tests.make_safe_primes [--count-1024 N] [--count-1536 N] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from enclave.crypto.primes import generate_safe_prime
from enclave.crypto.rng import SYSTEM_RNG

DEFAULT_OUT = Path(__file__).parent / "vectors" / "safe_primes.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count-1024", type=int, default=24)
    parser.add_argument("--count-1536", type=int, default=8)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    doc: dict[str, object] = {
        "description": "safe primes p = 2p'+1 (p' prime) for test Paillier-Blum moduli; data only",
        "primes": {"1024": [], "1536": []},
    }
    primes: dict[str, list[str]] = doc["primes"]  # type: ignore[assignment]
    for bits, count in ((1024, args.count_1024), (1536, args.count_1536)):
        for _ in range(count):
            t0 = time.perf_counter()
            p = generate_safe_prime(bits, SYSTEM_RNG)
            primes[str(bits)].append(hex(p))
            print(f"{bits}-bit safe prime in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
            args.out.write_text(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
