"""`python -m tests.engine.paced_enclave ...`: the enclave process exactly as `python -m enclave`
runs it, with fixture safe primes (tests/vectors) for its pre-parameter pool, paced like a real
prime search: the first MPC_TEST_PAIRS_AT_ONCE pairs (default 1) come at once, every later one
after MPC_TEST_PAIR_SECONDS (default 0). Every proof about the moduli still runs in full. Test
harness code: nothing in the product reads a fixture."""

from __future__ import annotations

import os
import sys
import threading
import time

import enclave.__main__ as enclave_main
from enclave import options
from enclave.crypto.primes import PrimeSource, SafePrimePair
from enclave.engine.engine import Engine
from enclave.tee.identity import EnclaveIdentity
from tests.service.fixture_enclave import prime_slice


def paced(source: PrimeSource, at_once: int, seconds: float) -> PrimeSource:
    lock = threading.Lock()
    made = [0]

    def search(modulus_bits: int) -> SafePrimePair:
        with lock:
            made[0] += 1
            late = made[0] > at_once
        if late:
            time.sleep(seconds)
        return source(modulus_bits)

    return search


def _build_engine(parts: options.EngineParts, identity: EnclaveIdentity) -> Engine:
    source = paced(
        prime_slice(int(os.environ.get("MPC_TEST_PRIME_SLICE", "1"))),
        int(os.environ.get("MPC_TEST_PAIRS_AT_ONCE", "1")),
        float(os.environ.get("MPC_TEST_PAIR_SECONDS", "0")),
    )
    return Engine(parts.sealer, config=parts.config, policy=parts.policy, prime_source=source, identity=identity)


if __name__ == "__main__":
    enclave_main.build_engine = _build_engine  # type: ignore[assignment]
    sys.exit(enclave_main.main())
