from __future__ import annotations

import dataclasses

import pytest

from enclave.crypto import ringpedersen
from enclave.crypto.params import REPETITIONS
from enclave.crypto.rng import SYSTEM_RNG
from enclave.zk import prm
from tests.enclave.zk.conftest import Party, transcript


@pytest.fixture(scope="module")
def proof(parties: tuple[Party, Party]) -> prm.Proof:
    p = parties[0]
    return prm.prove(transcript(), prm.Statement(p.params), prm.Witness(p.trapdoor), SYSTEM_RNG)


def test_valid(parties: tuple[Party, Party], proof: prm.Proof) -> None:
    assert parties[0].params.validate()
    assert prm.verify(transcript(), prm.Statement(parties[0].params), proof)


def test_replay_from_another_session_or_prover(parties: tuple[Party, Party], proof: prm.Proof) -> None:
    st = prm.Statement(parties[0].params)
    assert not prm.verify(transcript(session=b"old"), st, proof)
    assert not prm.verify(transcript(prover=2), st, proof)


@pytest.mark.parametrize("flaw", ["s=t", "s=1", "t=1", "t=-1"])
def test_degenerate_parameters_rejected_even_with_a_passing_proof(parties: tuple[Party, Party], flaw: str) -> None:
    p = parties[0]
    n, t = p.params.n, p.params.t
    params, lam = {
        "s=t": (ringpedersen.Params(n, t, t), 1),
        "s=1": (ringpedersen.Params(n, 1, t), 0),
        "t=1": (ringpedersen.Params(n, 1, 1), 0),
        "t=-1": (ringpedersen.Params(n, n - 1, n - 1), 1),
    }[flaw]
    proof = prm.prove(transcript(), prm.Statement(params), prm.Witness(ringpedersen.Trapdoor(lam, p.key)), SYSTEM_RNG)
    assert not params.validate()
    assert not prm.verify(transcript(), prm.Statement(params), proof)


def test_s_outside_the_group_of_t(parties: tuple[Party, Party], proof: prm.Proof) -> None:
    p = parties[0]
    other = ringpedersen.Params(p.params.n, p.params.s * 4 % p.params.n, p.params.t)
    assert not prm.verify(transcript(), prm.Statement(other), proof)


@pytest.mark.parametrize("count", [1, 40, REPETITIONS - 1])
def test_too_few_repetitions(parties: tuple[Party, Party], proof: prm.Proof, count: int) -> None:
    short = prm.Proof(proof.a[:count], proof.z[:count])
    assert not prm.verify(transcript(), prm.Statement(parties[0].params), short)


@pytest.mark.parametrize(
    ("field", "value"), [("a", "zero"), ("a", "n"), ("a", "negative"), ("z", "n"), ("z", "negative")]
)
def test_elements_out_of_range(parties: tuple[Party, Party], proof: prm.Proof, field: str, value: str) -> None:
    n = parties[0].params.n
    values = list(getattr(proof, field))
    values[0] = {"zero": 0, "n": n + values[0], "negative": -values[0]}[value]
    bad = dataclasses.replace(proof, **{field: tuple(values)})
    assert not prm.verify(transcript(), prm.Statement(parties[0].params), bad)
