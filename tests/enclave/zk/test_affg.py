from __future__ import annotations

import dataclasses

import gmpy2
import pytest

from enclave.crypto.paillier import random_unit
from enclave.crypto.params import EPSILON, L_PRIME, L, sample_pm
from enclave.crypto.rng import SYSTEM_RNG
from enclave.group.secp256k1 import Secp256k1Group
from enclave.zk import affg
from tests.enclave.zk.conftest import Party, transcript

G = Secp256k1Group()


def _statement(parties: tuple[Party, Party], x: int, y: int) -> tuple[affg.Statement, affg.Witness]:
    initiator, responder = parties  # N0 = initiator's (the verifier), N1 = responder's (the prover)
    pk0 = initiator.key.public
    k = G.random_scalar(SYSTEM_RNG)
    c, _ = initiator.key.encrypt(k, SYSTEM_RNG)
    s = random_unit(SYSTEM_RNG, pk0.n)
    d = int(gmpy2.powmod(c, x, pk0.n2) * pk0.encrypt_with(y, s) % pk0.n2)
    y_enc, r = responder.key.encrypt(y, SYSTEM_RNG)
    st = affg.Statement(G, pk0, responder.key.public, c, d, y_enc, G.base_mul(x), initiator.params)
    return st, affg.Witness(x, y, s, r, responder.key)


@pytest.fixture(scope="module")
def setup(parties: tuple[Party, Party]) -> tuple[affg.Statement, affg.Proof]:
    st, wit = _statement(parties, G.random_scalar(SYSTEM_RNG), sample_pm(SYSTEM_RNG, 1 << L_PRIME))
    return st, affg.prove(transcript(), st, wit, SYSTEM_RNG)


def test_valid(parties: tuple[Party, Party], setup: tuple[affg.Statement, affg.Proof]) -> None:
    st, proof = setup
    assert affg.verify(transcript(), st, proof)
    # the verifier's CRT shortcut gives the same answers
    assert affg.verify(transcript(), dataclasses.replace(st, verifier_secret=parties[0].key), proof)
    bad = dataclasses.replace(proof, w=proof.w * 2 % st.verifier_key.n)
    assert not affg.verify(transcript(), dataclasses.replace(st, verifier_secret=parties[0].key), bad)


def test_replay(setup: tuple[affg.Statement, affg.Proof]) -> None:
    assert not affg.verify(transcript(session=b"older"), *setup)
    assert not affg.verify(transcript(prover=9), *setup)


@pytest.mark.parametrize(("x_bits", "y_bits"), [(L + EPSILON + 2, 10), (10, L_PRIME + EPSILON + 2)])
def test_witness_out_of_range_fails(parties: tuple[Party, Party], x_bits: int, y_bits: int) -> None:
    st, wit = _statement(parties, 1 << x_bits, 1 << y_bits)
    assert not affg.verify(transcript(), st, affg.prove(transcript(), st, wit, SYSTEM_RNG))


def test_d_not_matching_y(parties: tuple[Party, Party], setup: tuple[affg.Statement, affg.Proof]) -> None:
    st, proof = setup
    pk0 = st.verifier_key
    shifted = st.d * (1 + pk0.n) % pk0.n2  # D + Enc(1)
    assert not affg.verify(transcript(), dataclasses.replace(st, d=shifted), proof)


def test_wrong_group_commitment(setup: tuple[affg.Statement, affg.Proof]) -> None:
    st, proof = setup
    assert not affg.verify(transcript(), dataclasses.replace(st, point=G.add(st.point, G.generator())), proof)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("a", 0),
        ("by", -5),
        ("w", 0),
        ("wy", 1 << 5000),
        ("e_commit", 0),
        ("s", -1),
        ("f", 0),
        ("t", 0),
        ("bx", b"\x00"),
        ("z1", 1 << (L + EPSILON + 1)),
        ("z2", -(1 << (L_PRIME + EPSILON + 1))),
    ],
)
def test_elements_out_of_range(setup: tuple[affg.Statement, affg.Proof], field: str, value: object) -> None:
    st, proof = setup
    assert not affg.verify(transcript(), st, dataclasses.replace(proof, **{field: value}))


@pytest.mark.parametrize("field", ["c", "d", "y_enc"])
def test_statement_ciphertext_outside_z_star(setup: tuple[affg.Statement, affg.Proof], field: str) -> None:
    st, proof = setup
    assert not affg.verify(transcript(), dataclasses.replace(st, **{field: 0}), proof)
