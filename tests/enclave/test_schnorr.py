"""Generic Schnorr proof of knowledge of a discrete log."""

from __future__ import annotations

import pytest

from enclave.crypto.rng import SYSTEM_RNG
from enclave.crypto.transcript import Transcript
from enclave.errors import InvalidEncoding
from enclave.group.ed25519 import ED25519 as G
from enclave.zk import schnorr


def tr(party: int = 1, session: bytes = b"s") -> Transcript:
    return Transcript("test", session_id=session, protocol="p", round=1, party=party)


def make() -> tuple[schnorr.Statement, schnorr.Proof]:
    x = G.random_scalar(SYSTEM_RNG)
    st = schnorr.Statement(G, G.base_mul(x))
    return st, schnorr.prove(tr(), st, schnorr.Witness(x), SYSTEM_RNG)


def test_roundtrip_and_verify() -> None:
    st, pf = make()
    assert schnorr.verify(tr(), st, pf)
    pf2 = schnorr.decode(G, schnorr.encode(G, pf))
    assert schnorr.verify(tr(), st, pf2)


def test_rejects_other_context_statement_or_tampering() -> None:
    st, pf = make()
    assert not schnorr.verify(tr(party=2), st, pf)
    assert not schnorr.verify(tr(session=b"other"), st, pf)
    assert not schnorr.verify(tr(), schnorr.Statement(G, G.base_mul(3)), pf)
    assert not schnorr.verify(tr(), st, schnorr.Proof(pf.commitment, (pf.response + 1) % G.order))
    assert not schnorr.verify(tr(), st, schnorr.Proof(G.base_mul(5), pf.response))
    assert not schnorr.verify(tr(), st, schnorr.Proof(pf.commitment, G.order + pf.response))


def test_witness_not_in_repr() -> None:
    assert "12345" not in repr(schnorr.Witness(12345))


def test_decode_strict() -> None:
    _st, pf = make()
    enc = schnorr.encode(G, pf)
    with pytest.raises(InvalidEncoding):
        schnorr.decode(G, enc[:-1])
    with pytest.raises(InvalidEncoding):
        schnorr.decode(G, enc[:32] + G.order.to_bytes(32, "little"))
    with pytest.raises(InvalidEncoding):
        schnorr.decode(G, bytes(32) + enc[32:])
