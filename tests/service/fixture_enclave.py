"""`python -m tests.service.fixture_enclave ...`: the enclave process exactly as `python -m enclave`
runs it (same options, same service, same engine), except that GG20 Paillier pre-parameters come
from the fixture safe primes in tests/vectors instead of a fresh prime search (or, with
MPC_TEST_PRIME_SOURCE=never, from nowhere: only imported pre-parameters). Every proof about
the moduli still runs in full; only the search for primes is saved. This is test harness code:
nothing in the product reads a fixture.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import threading

import enclave.__main__ as enclave_main
from enclave import options
from enclave.crypto.primes import FixtureSource, SafePrimePair
from enclave.engine.engine import Engine
from enclave.tee.identity import EnclaveIdentity
from tests.enclave import safe_primes

SLICES = 3  # the caller's local party and up to two signer nodes never share a prime


def prime_slice(index: int) -> FixtureSource:
    """Fixture primes of one party: slice `index` of SLICES disjoint slices, so two parties of
    one key generation never hold the same Paillier modulus (or share a prime factor)."""
    return FixtureSource(safe_primes.primes(1024)[index::SLICES] + safe_primes.primes(1536)[index::SLICES])


def never(modulus_bits: int) -> SafePrimePair:
    """A prime source that never delivers (a restarted enclave whose search has not finished):
    whatever its pool holds must have been imported. Key generation then waits 3 s at most."""
    threading.Event().wait()
    raise AssertionError("unreachable")


def _build_engine(parts: options.EngineParts, identity: EnclaveIdentity) -> Engine:
    if os.environ.get("MPC_TEST_PRIME_SOURCE") == "never":
        config = dataclasses.replace(parts.config, preparams_wait_seconds=3.0)
        return Engine(parts.sealer, config=config, policy=parts.policy, prime_source=never, identity=identity)
    source = prime_slice(int(os.environ.get("MPC_TEST_PRIME_SLICE", "1")))
    return Engine(parts.sealer, config=parts.config, policy=parts.policy, prime_source=source, identity=identity)


if __name__ == "__main__":
    enclave_main.build_engine = _build_engine  # type: ignore[assignment]
    sys.exit(enclave_main.main())
