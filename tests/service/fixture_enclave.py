"""`python -m tests.service.fixture_enclave ...`: the enclave process exactly as `python -m enclave`
runs it (same options, same service, same engine), except that GG20 Paillier pre-parameters come
from the fixture safe primes in tests/vectors instead of a fresh prime search. Every proof about
the moduli still runs in full; only the search for primes is saved. This is test harness code:
nothing in the product reads a fixture.
"""

from __future__ import annotations

import os
import sys

import enclave.__main__ as enclave_main
from enclave.engine import setup as engine_setup
from enclave.engine.engine import Engine
from enclave.primes import FixtureSource
from tests.enclave import safe_primes

SLICES = 3  # the caller's local party and up to two signer nodes never share a prime


def prime_slice(index: int) -> FixtureSource:
    """Fixture primes of one party: slice `index` of SLICES disjoint slices, so two parties of
    one key generation never hold the same Paillier modulus (or share a prime factor)."""
    return FixtureSource(safe_primes.primes(1024)[index::SLICES] + safe_primes.primes(1536)[index::SLICES])


def _build_engine(parts: engine_setup.EngineParts) -> Engine:
    source = prime_slice(int(os.environ.get("MPC_TEST_PRIME_SLICE", "1")))
    return Engine(parts.sealer, config=parts.config, policy=parts.policy, prime_source=source)


if __name__ == "__main__":
    engine_setup.build_engine = _build_engine  # type: ignore[assignment]
    sys.exit(enclave_main.main())
