"""Sequence-number replay guard: strictly increasing per (session, sender), all-or-nothing."""

from __future__ import annotations

import pytest

from mpc.v1 import signer_pb2 as pb
from signer.auth.replay import SequenceGuard
from signer.errors import AlreadyExists, InvalidArgument, ResourceExhausted


def m(seq: int, sender: str = "a", session: str = "s") -> pb.ProtocolMessage:
    return pb.ProtocolMessage(session_id=session, sender=sender, seq=seq)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_strictly_increasing_per_session_and_sender() -> None:
    guard = SequenceGuard(60, 100)
    guard.accept([m(1), m(1, sender="b"), m(1, session="t")])
    guard.accept([m(5)])  # gaps are fine
    for replay in (m(5), m(4), m(1)):
        with pytest.raises(AlreadyExists, match="replay"):
            guard.accept([replay])
    with pytest.raises(InvalidArgument):
        guard.accept([m(0, sender="c")])


def test_batch_is_all_or_nothing() -> None:
    guard = SequenceGuard(60, 100)
    with pytest.raises(AlreadyExists):
        guard.accept([m(1), m(2), m(2)])  # duplicate inside the batch
    guard.accept([m(1)])  # nothing of the rejected batch was recorded
    with pytest.raises(AlreadyExists):
        guard.accept([m(2, sender="z"), m(1)])
    guard.accept([m(1, sender="z")])


def test_entries_live_for_the_ttl_and_are_never_evicted_early() -> None:
    clock = Clock()
    guard = SequenceGuard(10, 2, clock=clock)
    guard.accept([m(3), m(3, sender="b")])
    with pytest.raises(ResourceExhausted):
        guard.accept([m(1, sender="c")])
    with pytest.raises(AlreadyExists):
        guard.accept([m(3)])
    clock.now = 11
    guard.accept([m(1, sender="c")])  # expired entries made room
    guard.forget_session("s")
    assert guard.accept([m(1), m(1, sender="b")]) is None
