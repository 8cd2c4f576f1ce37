from __future__ import annotations

import dataclasses

import pytest

from enclave.crypto.params import EPSILON, L
from enclave.crypto.rng import SYSTEM_RNG
from enclave.zk import enc, wire
from tests.enclave.zk.conftest import Party, transcript

K = 0x1234567890ABCDEF << 190


@pytest.fixture(scope="module")
def setup(parties: tuple[Party, Party]) -> tuple[enc.Statement, enc.Proof]:
    prover, verifier = parties
    c, rho = prover.key.encrypt(K, SYSTEM_RNG)
    st = enc.Statement(prover.key.public, c, verifier.params)
    return st, enc.prove(transcript(), st, enc.Witness(K, rho, prover.key), SYSTEM_RNG)


def test_valid(setup: tuple[enc.Statement, enc.Proof]) -> None:
    st, proof = setup
    assert enc.verify(transcript(), st, proof)
    assert enc.verify(transcript(), st, wire.decode(enc.Proof, wire.encode(proof)))


def test_replay(setup: tuple[enc.Statement, enc.Proof]) -> None:
    st, proof = setup
    assert not enc.verify(transcript(session=b"x"), st, proof)
    assert not enc.verify(transcript(prover=7), st, proof)
    assert not enc.verify(transcript(verifier=7), st, proof)


@pytest.mark.parametrize("k", [1 << (L + EPSILON + 1), -(1 << (L + EPSILON + 1)), 1 << 1500])
def test_plaintext_out_of_range_fails_with_honest_proof(parties: tuple[Party, Party], k: int) -> None:
    prover, verifier = parties
    c, rho = prover.key.encrypt(k, SYSTEM_RNG)
    st = enc.Statement(prover.key.public, c, verifier.params)
    proof = enc.prove(transcript(), st, enc.Witness(k, rho, prover.key), SYSTEM_RNG)
    assert not enc.verify(transcript(), st, proof)


@pytest.mark.parametrize("value", ["zero", "n2", "non-unit", "negative"])
def test_ciphertext_outside_z_star_n2(
    parties: tuple[Party, Party], setup: tuple[enc.Statement, enc.Proof], value: str
) -> None:
    st, proof = setup
    key = parties[0].key
    bad = {"zero": 0, "n2": key.n * key.n, "non-unit": key.p, "negative": -st.ciphertext}[value]
    assert not enc.verify(transcript(), dataclasses.replace(st, ciphertext=bad), proof)


@pytest.mark.parametrize(
    ("field", "value"),
    [("z2", "zero"), ("z2", "n"), ("z2", "negative"), ("s", "zero"), ("c", "nhat"), ("a", "zero"), ("z1", "big")],
)
def test_elements_out_of_range(
    parties: tuple[Party, Party], setup: tuple[enc.Statement, enc.Proof], field: str, value: str
) -> None:
    st, proof = setup
    prover, verifier = parties
    cur = getattr(proof, field)
    new = {"zero": 0, "n": prover.key.n, "negative": -cur, "nhat": verifier.params.n, "big": 1 << (L + EPSILON + 1)}[
        value
    ]
    assert not enc.verify(transcript(), st, dataclasses.replace(proof, **{field: new}))
