"""Fiat–Shamir framing: moving bytes between adjacent fields always changes the challenge."""

from __future__ import annotations

import pytest

from enclave.crypto.transcript import Transcript
from enclave.protocols.gg20.common import proof_transcript


def _t() -> Transcript:
    return Transcript("d", session_id=b"s", protocol="p", round=1, party=1)


def test_adjacent_byte_fields() -> None:
    a, b = _t(), _t()
    a.append("x", b"ab")
    a.append("y", b"c")
    b.append("x", b"a")
    b.append("y", b"bc")
    assert a.challenge_bytes("e", 32) != b.challenge_bytes("e", 32)


def test_adjacent_int_fields() -> None:
    a, b = _t(), _t()
    a.append("x", 0x0102)
    a.append("y", 0x03)
    b.append("x", 0x01)
    b.append("y", 0x0203)
    assert a.challenge_int("e", 2**256) != b.challenge_int("e", 2**256)


def test_label_and_value_boundary() -> None:
    a, b = _t(), _t()
    a.append("ab", b"c")
    b.append("a", b"bc")
    assert a.challenge_bytes("e", 32) != b.challenge_bytes("e", 32)


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ((b"ab", "c", 1, 1, 2, "enc"), (b"a", "bc", 1, 1, 2, "enc")),
        ((b"s", "gg20/presign", 1, 12, 3, "enc"), (b"s", "gg20/presign", 1, 1, 23, "enc")),
        ((b"s", "p", 1, 1, 2, "affg-w"), (b"s", "p", 1, 1, 2, "affg-gamma")),
        ((b"s", "p", 2, 1, 2, "enc"), (b"s", "p", 1, 1, 2, "enc")),
    ],
)
def test_proof_transcripts_bind_every_context_field(left: tuple, right: tuple) -> None:  # type: ignore[type-arg]
    assert proof_transcript(*left).challenge_bytes("e", 32) != proof_transcript(*right).challenge_bytes("e", 32)


def test_sign_of_ints_is_bound() -> None:
    a, b = _t(), _t()
    a.append("z", 5)
    b.append("z", -5)
    assert a.challenge_bytes("e", 16) != b.challenge_bytes("e", 16)
