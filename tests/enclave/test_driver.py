"""The round driver: acceptance rules, queueing, echo consistency, fault typing (toy protocol)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from enclave.errors import BadInput, LocalError, ProtocolFault
from enclave.protocols.driver import (
    Abort,
    Driver,
    Expect,
    Frame,
    Kind,
    Next,
    Output,
    Round,
    Send,
)
from tests import harness

SID = b"session-1"


@dataclass(frozen=True)
class Carry:
    me: int
    parties: frozenset[int]
    val: int = 0


class Round1(Round[bytes, bytes]):
    """Everybody broadcasts 4 bytes and sends each peer a 2-byte direct message."""

    number = 1

    def __init__(self, carry: Carry) -> None:
        self.c = carry
        self.bc: dict[int, bytes] = {}
        self.dm: dict[int, bytes] = {}

    def expects(self) -> Expect:
        return Expect(broadcast=self.c.parties, direct=self.c.parties - {self.c.me})

    def _check(self, sender: int, body: bytes, want: int) -> bytes:
        if len(body) != want:
            raise ProtocolFault(sender, "wrong length")
        if body == b"boom":
            raise ValueError("decoder blew up")
        return body

    def verify_broadcast(self, sender: int, body: bytes) -> bytes:
        return self._check(sender, body, 4)

    def verify_direct(self, sender: int, body: bytes) -> bytes:
        # the driver stores a sender's broadcast of a round before its direct message
        assert sender in self.bc, "direct message verified before its sender's broadcast"
        return self._check(sender, body, 2)

    def store_broadcast(self, sender: int, value: bytes) -> None:
        self.bc[sender] = value

    def store_direct(self, sender: int, value: bytes) -> None:
        self.dm[sender] = value

    def finalize(self) -> Next | Output | Abort:
        # A round never receives its own messages; it knows what it sent.
        total = self.c.val + sum(int.from_bytes(v, "big") for v in self.bc.values())
        return Next(Round2(self.c, total), (Send(None, b"ok" + bytes([self.c.me])),))


class Round2(Round[bytes, None]):
    number = 2

    def __init__(self, carry: Carry, total: int) -> None:
        self.c, self.total = carry, total
        self.got: dict[int, bytes] = {}

    def expects(self) -> Expect:
        return Expect(broadcast=self.c.parties)

    def verify_broadcast(self, sender: int, body: bytes) -> bytes:
        if body != b"ok" + bytes([sender]):
            raise ProtocolFault(sender, "bad ack")
        return body

    def store_broadcast(self, sender: int, value: bytes) -> None:
        self.got[sender] = value

    def finalize(self) -> Next | Output | Abort:
        if self.total < 0:
            raise RuntimeError("local bug")
        return Output(self.total)


def make(parties: list[int], seed_val: dict[int, int] | None = None) -> list[Driver]:
    ps = frozenset(parties)
    out = []
    for p in parties:
        val = (seed_val or {}).get(p, p)
        sends = [Send(None, val.to_bytes(4, "big"))] + [Send(q, b"d" + bytes([p])) for q in parties if q != p]
        out.append(Driver(SID, p, parties, Next(Round1(Carry(p, ps, val)), tuple(sends)), total_rounds=2))
    return out


def test_honest_run_all_orders() -> None:
    for seed in [None, 1, 2, 3, 4, 5]:
        res = harness.run(make([1, 2, 3, 4]), seed=seed)
        assert res.outputs() == {p: 10 for p in [1, 2, 3, 4]}


def test_frames_declare_kind_and_echo() -> None:
    d = make([1, 2, 3])[0]
    outs = d.take_outgoing()
    assert [o.to for o in outs] == [None, 2, 3]
    f = Frame.decode(outs[0].payload)
    assert (f.round, f.kind, f.echo, f.body) == (1, Kind.BROADCAST, (), (1).to_bytes(4, "big"))


def test_round2_carries_echo_of_round1_broadcasts() -> None:
    drivers = make([1, 2, 3])
    captured: list[Frame] = []

    def spy(s: int, r: int, frame: Frame) -> None:
        if frame.round == 2:
            captured.append(frame)
        return None

    harness.run(drivers, [spy])
    assert captured and all(len(f.echo) == 3 for f in captured)
    assert len({f.echo for f in captured}) == 1


def test_equivocation_names_broadcaster() -> None:
    res = harness.run(make([1, 2, 3]), [harness.equivocate(3, 1, 2, lambda b: b"\x00\x00\x00\x09")])
    aborts = res.aborts()
    for honest in (1, 2):  # the equivocator's own view does not matter
        a = aborts[honest]
        assert a.culprits == frozenset({3})
        assert a.reason == "broadcast inconsistency"


def test_lying_echo_about_own_broadcast_names_echoer() -> None:
    # Party 2 lies in its round-2 echo about party 1's broadcast: party 1 knows what it sent.
    def lie(s: int, r: int, frame: Frame) -> list[Frame | bytes] | None:
        if s == 2 and r == 1 and frame.round == 2:
            echo = (bytes(32), *frame.echo[1:])
            return [Frame(frame.round, frame.kind, echo, frame.body)]
        return None

    res = harness.run(make([1, 2, 3]), [lie])
    assert res.outcomes[1] == Abort(frozenset({2}), "broadcast inconsistency")


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        (harness.duplicate(2, 1, to=1), "duplicate message"),
        (harness.garbage(2, 1, b"\x07garbage", to=1), "unparsable frame"),
        (harness.garbage(2, 1, b"", to=1), "unparsable frame"),
        (harness.garbage(2, 1, Frame(9, Kind.BROADCAST, (), b"x").encode(), to=1), "round out of range"),
        (harness.garbage(2, 1, Frame(0, Kind.BROADCAST, (), b"x").encode(), to=1), "round out of range"),
        (harness.modify(2, 1, lambda b: b + b"x", to=1, kind=Kind.BROADCAST), "wrong length"),
        (harness.modify(2, 1, lambda b: b"boom", to=1, kind=Kind.BROADCAST), "invalid message (ValueError)"),
        (harness.modify(2, 2, lambda b: b"ok\x05", to=1), "bad ack"),
        (harness.drop(2, 1, to=1), None),
    ],
)
def test_faults_name_only_the_sender(rule: harness.Rule, reason: str | None) -> None:
    res = harness.run(make([1, 2, 3]), [rule], seed=7)
    if reason is None:
        assert res.outcomes[1] is None
        assert drivers_missing(res) == frozenset({2})
        return
    assert res.outcomes[1] == Abort(frozenset({2}), reason)


def drivers_missing(res: harness.Result) -> frozenset[int]:
    return frozenset({2}) if res.outcomes[1] is None else frozenset()


def test_missing_reports_waiting_parties() -> None:
    drivers = make([1, 2, 3])
    harness.run(drivers, [harness.drop(2, 1, to=1)])
    assert drivers[0].missing() == frozenset({2})


def test_unexpected_kind_is_fault() -> None:
    drivers = make([1, 2])
    bad = Frame(2, Kind.DIRECT, (), b"ok\x02").encode()
    res = harness.run(drivers, inject=[(2, 1, bad)])
    assert res.outcomes[1] == Abort(frozenset({2}), "message kind not expected from sender")


def test_unknown_sender_rejected_session_survives() -> None:
    drivers = make([1, 2, 3])
    res = harness.run(drivers, inject=[(9, 1, b"\x01anything"), (1, 1, b"self")])
    assert res.rejected == [(1, 9), (1, 1)]
    assert res.outputs() == {1: 6, 2: 6, 3: 6}


def test_wrong_echo_size_is_fault() -> None:
    def short(s: int, r: int, frame: Frame) -> list[Frame | bytes] | None:
        if s == 3 and frame.round == 2:
            return [Frame(2, frame.kind, frame.echo[:1], frame.body)]
        return None

    res = harness.run(make([1, 2, 3]), [short])
    assert res.outcomes[1] == Abort(frozenset({3}), "echo of the wrong size")


def test_local_error_is_not_blamed_on_peers() -> None:
    drivers = make([1, 2], seed_val={1: 0, 2: 0})
    d1, d2 = drivers
    # Force the local bug: make round 2's carry negative through a crafted state.
    for out in d2.take_outgoing():
        d1.receive(2, out.payload)
    assert isinstance(d1._round, Round2)
    d1._round.total = -1
    for out in d1.take_outgoing():
        d2.receive(1, out.payload)
    with pytest.raises(LocalError):
        for out in d2.take_outgoing():
            d1.receive(2, out.payload)
    assert d1.result == Abort(frozenset(), "local error")


def test_constructor_rejects_bad_setup() -> None:
    ps = frozenset({1, 2})
    with pytest.raises(BadInput):
        Driver(SID, 3, [1, 2], Next(Round1(Carry(3, ps))), 2)
    with pytest.raises(BadInput):  # round expects a broadcast from us but none is sent
        Driver(SID, 1, [1, 2], Next(Round1(Carry(1, ps))), 2)
    with pytest.raises(BadInput):
        Driver(SID, 1, [1, 2], Next(Round1(Carry(1, ps)), (Send(None, b"aaaa"), Send(5, b"x"))), 2)


def test_late_traffic_after_end_is_ignored() -> None:
    drivers = make([1, 2])
    res = harness.run(drivers)
    assert res.outputs() == {1: 3, 2: 3}
    drivers[0].receive(2, b"whatever")
    assert drivers[0].result == Output(3)


def test_oversized_message_is_fault() -> None:
    drivers = make([1, 2])
    big = Frame(1, Kind.BROADCAST, (), bytes(2 << 20)).encode()
    res = harness.run(drivers, inject=[(2, 1, big)])
    assert res.outcomes[1] == Abort(frozenset({2}), "message too large")


def test_invalid_next_round_is_local_error() -> None:
    class Broken(Round1):
        def finalize(self) -> Next | Output | Abort:
            return Next(Round2(self.c, 0), (Send(7, b"x"),))  # recipient outside the session

    ps = frozenset({1, 2})
    d1 = Driver(SID, 1, [1, 2], Next(Broken(Carry(1, ps)), (Send(None, bytes(4)), Send(2, b"d1"))), 2)
    d2 = make([1, 2])[1]
    with pytest.raises(LocalError):
        for out in d2.take_outgoing():
            d1.receive(2, out.payload)
    assert d1.result == Abort(frozenset(), "local error")


def test_lying_echo_about_a_third_party_is_recorded_with_its_accuser() -> None:
    """The documented limit of echo-by-hash: without transferable signatures, party 1 cannot tell
    "3 lies about 2's broadcast" from "2 equivocated towards 3". It names the disputed
    broadcaster and records the reporter in `accusers`; party 2 itself knows what it sent and
    names 3, so the operator sees both sides."""

    def lie_about_2(s: int, r: int, frame: Frame) -> list[Frame | bytes] | None:
        if s == 3 and frame.round == 2:
            echo = (frame.echo[0], bytes(32), frame.echo[2])
            return [Frame(frame.round, frame.kind, echo, frame.body)]
        return None

    res = harness.run(make([1, 2, 3]), [lie_about_2])
    assert res.outcomes[1] == Abort(frozenset({2}), "broadcast inconsistency", frozenset({3}))
    assert res.outcomes[2] == Abort(frozenset({3}), "broadcast inconsistency")


def test_round_expecting_outsiders_is_rejected() -> None:
    with pytest.raises(BadInput):
        Driver(SID, 1, [1, 2], Next(Round1(Carry(1, frozenset({1, 2, 3}))), (Send(None, bytes(4)),)), 2)


def _frames_of(d: Driver) -> dict[tuple[int | None, Kind], bytes]:
    return {(o.to, Frame.decode(o.payload).kind): o.payload for o in d.take_outgoing()}


def test_direct_message_is_held_until_its_senders_broadcast_is_stored() -> None:
    order: list[tuple[int, Kind]] = []

    class Recording(Round1):
        def verify_broadcast(self, sender: int, body: bytes) -> bytes:
            order.append((sender, Kind.BROADCAST))
            return super().verify_broadcast(sender, body)

        def verify_direct(self, sender: int, body: bytes) -> bytes:
            order.append((sender, Kind.DIRECT))
            return super().verify_direct(sender, body)

    ps = frozenset({1, 2})
    d1 = Driver(SID, 1, ps, Next(Recording(Carry(1, ps)), (Send(None, bytes(4)), Send(2, b"d1"))), 2)
    from2 = _frames_of(make([1, 2])[1])
    d1.receive(2, from2[(1, Kind.DIRECT)])
    assert order == [] and d1.result is None
    assert d1.held_bytes() == len(from2[(1, Kind.DIRECT)]) and d1.missing() == frozenset({2})
    d1.receive(2, from2[(None, Kind.BROADCAST)])
    assert order == [(2, Kind.BROADCAST), (2, Kind.DIRECT)]
    assert d1.held_bytes() == 0 and d1.round_number == 2


def test_direct_message_of_a_sender_that_never_broadcasts_stays_bounded() -> None:
    d1, d2 = make([1, 2])
    from2 = _frames_of(d2)
    d1.receive(2, from2[(1, Kind.DIRECT)])
    assert d1.result is None and d1.missing() == frozenset({2})  # timeout blame names 2
    d1.receive(2, from2[(1, Kind.DIRECT)])  # a second copy is a duplicate, not held twice
    assert d1.result == Abort(frozenset({2}), "duplicate message")
    d1 = make([1, 2])[0]
    d1.receive(2, from2[(1, Kind.DIRECT)])
    d1.receive(2, Frame(3, Kind.BROADCAST, (), b"ok\x02").encode())  # and no further ahead
    assert d1.result is not None and d1.result.culprits == frozenset({2})  # type: ignore[union-attr]


def test_direct_message_in_a_broadcast_only_round_aborts_at_once() -> None:
    """Round 2 expects broadcasts only. A direct message there from a party that broadcasts in
    it is not held for that broadcast (it would wait forever, as hypothesis once found with a
    flipped kind byte): the round does not expect it, so it aborts naming its sender."""
    d1, d2 = make([1, 2])
    for out in d2.take_outgoing():
        d1.receive(2, out.payload)
    assert d1.round_number == 2
    d1.receive(2, Frame(2, Kind.DIRECT, d1._prev_echo, b"ok\x02").encode())
    assert d1.result == Abort(frozenset({2}), "message kind not expected from sender")
