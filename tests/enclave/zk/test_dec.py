"""Πdec in the exponent (enclave.zk.dec): C = Enc(y), X = (y mod q)·g, y in ±2^b. Wrong
statements, the y + t·N wrap, every field tampered, out-of-range elements, transcript binding."""

from __future__ import annotations

import dataclasses

import pytest

from enclave.crypto.params import EPSILON, L_PRIME, sample_pm
from enclave.crypto.rng import SYSTEM_RNG
from enclave.group.secp256k1 import Secp256k1Group
from enclave.zk import dec, wire
from tests.enclave.zk.conftest import Party, transcript

G = Secp256k1Group()
Setup = tuple[dec.Statement, dec.Proof, dec.Witness]


@pytest.fixture(scope="module")
def setup(parties: tuple[Party, Party]) -> Setup:
    prover, verifier = parties
    y = sample_pm(SYSTEM_RNG, 1 << L_PRIME)
    base = G.base_mul(G.random_scalar(SYSTEM_RNG))
    c, rho = prover.key.encrypt(y, SYSTEM_RNG)
    st = dec.Statement(G, base, G.mul(base, y), prover.key.public, c, verifier.params, L_PRIME)
    w = dec.Witness(y, rho, prover.key)
    return st, dec.prove(transcript(), st, w, SYSTEM_RNG), w


def test_valid(setup: Setup) -> None:
    st, proof, _ = setup
    assert dec.verify(transcript(), st, proof)
    assert dec.verify(transcript(), st, wire.decode(dec.Proof, wire.encode(proof)))


def test_transcript_binds_session_and_parties(setup: Setup) -> None:
    st, proof, _ = setup
    assert not dec.verify(transcript(session=b"other"), st, proof)
    assert not dec.verify(transcript(prover=2, verifier=1), st, proof)
    assert not dec.verify(transcript(verifier=3), st, proof)


def test_wrong_statement(setup: Setup, parties: tuple[Party, Party]) -> None:
    st, proof, w = setup
    prover = parties[0]
    other_c, _ = prover.key.encrypt(w.y + 1, SYSTEM_RNG)
    for bad in (
        dataclasses.replace(st, point=G.add(st.point, G.generator())),
        dataclasses.replace(st, base=G.generator()),
        dataclasses.replace(st, ciphertext=other_c),
        dataclasses.replace(st, params=prover.params),
        dataclasses.replace(st, bits=L_PRIME - 1),
    ):
        assert not dec.verify(transcript(), bad, proof)


def test_proof_for_a_false_statement_fails(setup: Setup) -> None:
    # X = (y+1)·g with C = Enc(y): the honest prover with the real witness does not convince.
    st, _, w = setup
    false = dataclasses.replace(st, point=G.mul(st.base, w.y + 1))
    assert not dec.verify(transcript(), false, dec.prove(transcript(), false, w, SYSTEM_RNG))


def test_wrap_by_a_multiple_of_n_is_refused(setup: Setup) -> None:
    # y' = y + t·N has the same ciphertext and another residue mod q: without the range on z1
    # the three equations would all hold for X' = y'·g. The range check refuses it.
    st, _, w = setup
    n = st.prover_key.n
    y_wrapped = w.y + 7 * n
    assert (y_wrapped - w.y) % G.order != 0
    false = dataclasses.replace(st, point=G.mul(st.base, y_wrapped))
    proof = dec.prove(transcript(), false, dataclasses.replace(w, y=y_wrapped), SYSTEM_RNG)
    assert not dec.verify(transcript(), false, proof)


def test_out_of_range_witness_fails(parties: tuple[Party, Party]) -> None:
    prover, verifier = parties
    y = 1 << (L_PRIME + EPSILON + 2)
    c, rho = prover.key.encrypt(y, SYSTEM_RNG)
    st = dec.Statement(G, G.generator(), G.base_mul(y), prover.key.public, c, verifier.params, L_PRIME)
    assert not dec.verify(transcript(), st, dec.prove(transcript(), st, dec.Witness(y, rho, prover.key), SYSTEM_RNG))


def test_range_too_wide_for_the_modulus_refused(parties: tuple[Party, Party]) -> None:
    # b + ε + 2 >= |N|: the plaintext would not be unique, so even an honest proof is refused.
    prover, verifier = parties
    bits = prover.key.n.bit_length() - EPSILON - 2
    y = 12345
    c, rho = prover.key.encrypt(y, SYSTEM_RNG)
    st = dec.Statement(G, G.generator(), G.base_mul(y), prover.key.public, c, verifier.params, bits)
    proof = dec.prove(transcript(), st, dec.Witness(y, rho, prover.key), SYSTEM_RNG)
    assert not dec.verify(transcript(), st, proof)
    ok = dataclasses.replace(st, bits=bits - 1)
    assert dec.verify(transcript(), ok, dec.prove(transcript(), ok, dec.Witness(y, rho, prover.key), SYSTEM_RNG))


@pytest.mark.parametrize("field", ["s", "a", "b", "d", "z1", "z2", "z3"])
def test_every_field_tampered(setup: Setup, field: str) -> None:
    st, proof, _ = setup
    value = getattr(proof, field)
    bad = G.encode(G.add(G.decode(value), G.generator())) if field == "b" else value + 1
    assert not dec.verify(transcript(), st, dataclasses.replace(proof, **{field: bad}))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("a", 0),
        ("a", "n2"),
        ("a", "non-unit"),
        ("z2", 0),
        ("z2", "n"),
        ("s", 0),
        ("s", "nhat"),
        ("d", -1),
        ("b", b""),
        ("b", b"\x02" + b"\xff" * 32),
        ("z1", 1 << 3000),
        ("z1", -(1 << 3000)),
    ],
)
def test_invalid_elements_rejected(setup: Setup, parties: tuple[Party, Party], field: str, value: object) -> None:
    st, proof, _ = setup
    prover, verifier = parties
    n, nhat = prover.key.n, verifier.params.n
    value = {"n2": n * n, "non-unit": prover.key.p * 3, "n": n, "nhat": nhat}.get(value, value)  # type: ignore[call-overload]
    assert not dec.verify(transcript(), st, dataclasses.replace(proof, **{field: value}))


@pytest.mark.parametrize("which", ["ciphertext-zero", "ciphertext-n2", "params-degenerate"])
def test_invalid_statement_elements_rejected(setup: Setup, which: str) -> None:
    st, proof, _ = setup
    n2 = st.prover_key.n2
    bad = {
        "ciphertext-zero": dataclasses.replace(st, ciphertext=0),
        "ciphertext-n2": dataclasses.replace(st, ciphertext=n2),
        "params-degenerate": dataclasses.replace(st, params=dataclasses.replace(st.params, s=st.params.t)),
    }[which]
    assert not dec.verify(transcript(), bad, proof)
