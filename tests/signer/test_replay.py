"""Sequence-number replay guard of one session: strictly increasing per sender, all-or-nothing."""

from __future__ import annotations

import pytest

from mpc.v1 import signer_pb2 as pb
from signer.auth.replay import SenderSequences
from signer.errors import AlreadyExists, InvalidArgument


def m(seq: int, sender: str = "a") -> pb.ProtocolMessage:
    return pb.ProtocolMessage(session_id="s", sender=sender, seq=seq)


def test_strictly_increasing_per_sender() -> None:
    sequences = SenderSequences()
    sequences.accept([m(1), m(1, sender="b")])
    sequences.accept([m(5)])  # gaps are fine
    for replay in (m(5), m(4), m(1), m(1, sender="b")):
        with pytest.raises(AlreadyExists, match="replay"):
            sequences.accept([replay])
    with pytest.raises(InvalidArgument):
        sequences.accept([m(0, sender="c")])
    assert len(sequences) == 2


def test_batch_is_all_or_nothing() -> None:
    sequences = SenderSequences()
    with pytest.raises(AlreadyExists):
        sequences.accept([m(1), m(2), m(2)])  # duplicate inside the batch
    sequences.accept([m(1)])  # nothing of the rejected batch was recorded
    with pytest.raises(AlreadyExists):
        sequences.accept([m(2, sender="z"), m(1)])
    sequences.accept([m(1, sender="z")])
    assert len(sequences) == 2
