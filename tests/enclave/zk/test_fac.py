from __future__ import annotations

import dataclasses

import gmpy2
import pytest

from enclave.crypto.paillier import SecretKey
from enclave.crypto.rng import SYSTEM_RNG
from enclave.zk import fac
from tests.enclave.zk.conftest import Party, transcript


@pytest.fixture(scope="module")
def proof(parties: tuple[Party, Party]) -> fac.Proof:
    prover, verifier = parties
    return fac.prove(transcript(), fac.Statement(prover.key.n, verifier.params), fac.Witness(prover.key), SYSTEM_RNG)


def test_valid(parties: tuple[Party, Party], proof: fac.Proof) -> None:
    prover, verifier = parties
    assert fac.verify(transcript(), fac.Statement(prover.key.n, verifier.params), proof)


def test_replay_to_another_verifier_or_session(parties: tuple[Party, Party], proof: fac.Proof) -> None:
    prover, verifier = parties
    st = fac.Statement(prover.key.n, verifier.params)
    assert not fac.verify(transcript(verifier=3), st, proof)
    assert not fac.verify(transcript(session=b"older"), st, proof)


def _blum(bits: int, seed: int) -> int:
    p = int(gmpy2.next_prime((3 << (bits - 2)) | (seed << (bits // 2))))
    while p % 4 != 3:
        p = int(gmpy2.next_prime(p))
    return p


@pytest.mark.parametrize("small_bits", [64, 128, 200])
def test_small_factor_fails_even_with_honest_proof(parties: tuple[Party, Party], small_bits: int) -> None:
    # The BitForge modulus: N0 of full size with one small factor.
    verifier = parties[1]
    weak = SecretKey(_blum(small_bits, 5), _blum(2048 - small_bits, 7))
    proof = fac.prove(transcript(), fac.Statement(weak.n, verifier.params), fac.Witness(weak), SYSTEM_RNG)
    assert not fac.verify(transcript(), fac.Statement(weak.n, verifier.params), proof)


@pytest.mark.parametrize("field", ["p_commit", "q_commit", "a", "b", "t"])
@pytest.mark.parametrize("value", ["zero", "one-shifted", "nhat", "negative"])
def test_commitments_out_of_range(parties: tuple[Party, Party], proof: fac.Proof, field: str, value: str) -> None:
    prover, verifier = parties
    nh = verifier.params.n
    current = getattr(proof, field)
    new = {"zero": 0, "one-shifted": current + nh, "nhat": nh, "negative": -current}[value]
    bad = dataclasses.replace(proof, **{field: new})
    assert not fac.verify(transcript(), fac.Statement(prover.key.n, verifier.params), bad)


@pytest.mark.parametrize("field", ["z1", "z2"])
def test_response_out_of_range(parties: tuple[Party, Party], proof: fac.Proof, field: str) -> None:
    prover, verifier = parties
    bad = dataclasses.replace(proof, **{field: 1 << 2000})
    assert not fac.verify(transcript(), fac.Statement(prover.key.n, verifier.params), bad)


def test_proof_for_another_modulus_fails(parties: tuple[Party, Party], proof: fac.Proof) -> None:
    verifier = parties[1]
    assert not fac.verify(transcript(), fac.Statement(verifier.key.n, verifier.params), proof)
