from __future__ import annotations

import dataclasses

import pytest

from enclave.crypto.params import EPSILON, L
from enclave.crypto.rng import SYSTEM_RNG
from enclave.group.secp256k1 import Secp256k1Group
from enclave.zk import logstar
from tests.enclave.zk.conftest import Party, transcript

G = Secp256k1Group()


@pytest.fixture(scope="module")
def setup(parties: tuple[Party, Party]) -> tuple[logstar.Statement, logstar.Proof]:
    prover, verifier = parties
    x = G.random_scalar(SYSTEM_RNG)
    base = G.base_mul(G.random_scalar(SYSTEM_RNG))
    c, rho = prover.key.encrypt(x, SYSTEM_RNG)
    st = logstar.Statement(G, base, G.mul(base, x), prover.key.public, c, verifier.params)
    return st, logstar.prove(transcript(), st, logstar.Witness(x, rho, prover.key), SYSTEM_RNG)


def test_valid(setup: tuple[logstar.Statement, logstar.Proof]) -> None:
    assert logstar.verify(transcript(), *setup)


def test_replay(setup: tuple[logstar.Statement, logstar.Proof]) -> None:
    assert not logstar.verify(transcript(session=b"other"), *setup)
    assert not logstar.verify(transcript(prover=2, verifier=1), *setup)


def test_wrong_point(setup: tuple[logstar.Statement, logstar.Proof]) -> None:
    st, proof = setup
    assert not logstar.verify(transcript(), dataclasses.replace(st, point=G.add(st.point, G.generator())), proof)


def test_wrong_base(setup: tuple[logstar.Statement, logstar.Proof]) -> None:
    st, proof = setup
    assert not logstar.verify(transcript(), dataclasses.replace(st, base=G.generator()), proof)


def test_out_of_range_witness_fails(parties: tuple[Party, Party]) -> None:
    prover, verifier = parties
    x = 1 << (L + EPSILON + 2)
    c, rho = prover.key.encrypt(x, SYSTEM_RNG)
    st = logstar.Statement(G, G.generator(), G.base_mul(x), prover.key.public, c, verifier.params)
    assert not logstar.verify(
        transcript(), st, logstar.prove(transcript(), st, logstar.Witness(x, rho, prover.key), SYSTEM_RNG)
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [("y", b"\x02" + bytes(32)), ("y", b""), ("z2", 0), ("s", 0), ("d", -1), ("a", 0), ("z1", 1 << 900)],
)
def test_elements_out_of_range(setup: tuple[logstar.Statement, logstar.Proof], field: str, value: object) -> None:
    st, proof = setup
    assert not logstar.verify(transcript(), st, dataclasses.replace(proof, **{field: value}))
