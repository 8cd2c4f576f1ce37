"""Paillier keys and ring-Pedersen parameters from fixture safe primes, shared per session."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from enclave.crypto import ringpedersen
from enclave.crypto.paillier import SecretKey
from enclave.crypto.rng import SYSTEM_RNG
from enclave.crypto.transcript import Transcript
from tests.enclave import safe_primes


@dataclass(frozen=True)
class Party:
    key: SecretKey
    params: ringpedersen.Params
    trapdoor: ringpedersen.Trapdoor


@pytest.fixture(scope="session")
def parties() -> tuple[Party, Party]:
    ps = safe_primes.primes(1024)
    out = []
    for i in (0, 2):
        key = SecretKey(ps[i], ps[i + 1])
        params, trapdoor = ringpedersen.generate(key, SYSTEM_RNG)
        out.append(Party(key, params, trapdoor))
    return out[0], out[1]


def transcript(session: bytes = b"sid", prover: int = 1, verifier: int = 2) -> Transcript:
    t = Transcript("tests/zk", session_id=session, protocol="zk-test", round=1, party=prover)
    t.append("verifier", verifier)
    return t
