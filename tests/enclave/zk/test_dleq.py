"""Πmul in the group (Chaum–Pedersen, enclave.zk.dleq): soundness against wrong statements,
every field tampered, invalid encodings, transcript binding."""

from __future__ import annotations

import dataclasses

import pytest

from enclave.crypto.rng import SYSTEM_RNG
from enclave.errors import InvalidEncoding
from enclave.group.secp256k1 import IDENTITY, Secp256k1Group
from enclave.zk import dleq, wire
from tests.enclave.zk.conftest import transcript

G = Secp256k1Group()


@pytest.fixture(scope="module")
def setup() -> tuple[dleq.Statement, dleq.Proof, int]:
    x = G.random_scalar(SYSTEM_RNG)
    base = G.base_mul(G.random_scalar(SYSTEM_RNG))
    st = dleq.Statement(G, base, G.base_mul(x), G.mul(base, x))
    return st, dleq.prove(transcript(), st, dleq.Witness(x), SYSTEM_RNG), x


def test_valid(setup: tuple[dleq.Statement, dleq.Proof, int]) -> None:
    st, proof, _ = setup
    assert dleq.verify(transcript(), st, proof)
    assert dleq.verify(transcript(), st, wire.decode(dleq.Proof, wire.encode(proof)))


def test_transcript_binds_session_and_parties(setup: tuple[dleq.Statement, dleq.Proof, int]) -> None:
    st, proof, _ = setup
    assert not dleq.verify(transcript(session=b"other"), st, proof)
    assert not dleq.verify(transcript(prover=2, verifier=1), st, proof)
    assert not dleq.verify(transcript(verifier=3), st, proof)


@pytest.mark.parametrize("which", ["base", "public", "product"])
def test_wrong_statement(setup: tuple[dleq.Statement, dleq.Proof, int], which: str) -> None:
    st, proof, _ = setup
    moved = G.add(getattr(st, which), G.generator())
    assert not dleq.verify(transcript(), dataclasses.replace(st, **{which: moved}), proof)


def test_proof_for_a_false_statement_fails(setup: tuple[dleq.Statement, dleq.Proof, int]) -> None:
    # T = (x+1)·H with X = x·G: an honest prover run with either exponent does not convince.
    st, _, x = setup
    false = dataclasses.replace(st, product=G.mul(st.base, x + 1))
    for w in (x, x + 1):
        assert not dleq.verify(transcript(), false, dleq.prove(transcript(), false, dleq.Witness(w), SYSTEM_RNG))


@pytest.mark.parametrize("field", ["a", "b", "z"])
def test_every_field_tampered(setup: tuple[dleq.Statement, dleq.Proof, int], field: str) -> None:
    st, proof, _ = setup
    if field == "z":
        bad: object = (proof.z + 1) % G.order
    else:
        bad = G.encode(G.add(G.decode(getattr(proof, field)), G.generator()))
    assert not dleq.verify(transcript(), st, dataclasses.replace(proof, **{field: bad}))


@pytest.mark.parametrize(
    ("field", "value"),
    [("z", -1), ("z", G.order), ("a", b""), ("a", b"\x04" + bytes(32)), ("b", b"\x02" + b"\xff" * 32)],
)
def test_invalid_elements_rejected(setup: tuple[dleq.Statement, dleq.Proof, int], field: str, value: object) -> None:
    st, proof, _ = setup
    assert not dleq.verify(transcript(), st, dataclasses.replace(proof, **{field: value}))


def test_identity_base_refused() -> None:
    # T = x·O is O for every x: a statement with the identity as base proves nothing.
    st = dleq.Statement(G, IDENTITY, G.base_mul(5), IDENTITY)
    proof = dleq.Proof(G.encode(G.base_mul(3)), G.encode(G.base_mul(3)), 8)
    assert not dleq.verify(transcript(), st, proof)


@pytest.mark.parametrize("data", [b"\x83\x01\x02\x03", b"\x82\x41\x00\x41\x00", b"\x83\x41\x00\x41\x00\xf5"])
def test_wire_types_checked(data: bytes) -> None:
    with pytest.raises(InvalidEncoding):
        wire.decode(dleq.Proof, data)
