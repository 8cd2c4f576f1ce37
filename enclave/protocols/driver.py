"""The round state machine every threshold protocol runs on (FROST and GG20 alike).

A protocol is a chain of `Round` objects. A round describes the messages it waits for and
turns them into the next round:

- `expects()` -> `Expect(broadcast=..., direct=...)`: the parties that broadcast in this round
  (this party included if it broadcasts too) and the parties that send this party a
  point-to-point ("direct") message. Every party builds the same broadcaster set.
- `verify_broadcast(sender, body) -> B` and `verify_direct(sender, body) -> D` decode and
  check one message of that kind. They are pure (no state change) and return the decoded
  value, or raise `ProtocolFault(culprits, reason)`. Any other exception they raise is a fault
  of `sender` too: garbage from a peer never escapes. A direct message is verified only after
  its sender's broadcast of the same round is stored (when the sender broadcasts in that
  round), so `verify_direct` may rely on it: proofs of direct messages are checked there.
- `store_broadcast(sender, value: B)` / `store_direct(sender, value: D)` record a verified value.
- `finalize()` runs once everything expected is stored and returns `Next(round, sends)` (the
  next round and this party's messages for it), `Output(value)` or `Abort(culprits, reason)`;
  it may also raise `ProtocolFault`.

What a round needs from earlier rounds is handed over explicitly by the previous `finalize`
(an immutable carry, e.g. a frozen dataclass); no round inherits every earlier secret.

One `Driver` per session owns acceptance. It knows the party set and this party's id; the
sender of a message is the authenticated channel's (`receive(sender, payload)`), never a field
inside the payload. It rejects unknown senders (`BadInput`, the session continues: someone
outside the session cannot abort it), and turns into `Abort` on: a second message of the same
(round, kind) from a party, a round outside 1..total_rounds, a message kind the round does not
expect from that party, an unparsable or oversized (`max_payload`) frame, a
broadcast-consistency failure, or any fault a round reports. A failure of this party's own code
raises `LocalError` (the session is then over, with `Abort(frozenset(), "local error")`).
Messages for later rounds are queued (one per sender, round and kind) and processed when
their round comes, but only one round ahead: while this party is in round r, a message for
round r+2 or later aborts naming its sender, because no honest party gets that far without this
party's round-(r+1) message. That needs every round to have each party send to each other one
(a broadcast, or a direct message to each): `Driver` checks it of every round it enters. So
what waits unexamined is, per peer, at most one direct message of the current round (held
until that peer's broadcast of the round is stored) and one broadcast and one direct message
of the next round (`held_bytes`). A message that arrives after the session ended is ignored.

Wire frame (what `Outgoing.payload` carries and `receive` takes):
    0x01 || round (u16 BE) || kind (u8: 0 broadcast, 1 direct) || n_echo (u16 BE)
         || n_echo * 32-byte echo digests || body (the round's own bytes)

Broadcast consistency (echo by hash, piggybacked): every message a party sends in round r+1
carries, for each broadcaster b of round r in ascending id order, the digest
SHA-256("mpc-signer/rounds/echo/v1" || session || r || b || body_b) of the broadcast body it
received from b (its own for itself). A receiver compares the vector with its own before the
round sees the message. A mismatch on broadcaster b reported by k aborts naming k if b is k
itself or if b is this party (we know what we sent), and otherwise naming b, with k recorded
in `Abort.accusers`. Without transferable signatures a lying k that frames an honest b cannot
be told apart from a real equivocation by b; `accusers` keeps that evidence visible. Broadcasts
of a protocol's last round are not echo-checked (there is no later message to carry the echo);
a protocol whose output depends on last-round broadcast consistency adds one more round.

Example (a one-round protocol where everybody broadcasts a byte string and outputs them all):

    class Hello(Round[bytes, None]):
        number = 1
        def __init__(self, parties): self.parties, self.got = parties, {}
        def expects(self): return Expect(broadcast=self.parties)
        def verify_broadcast(self, sender, body):
            if len(body) != 5: raise ProtocolFault(sender, "bad length")
            return body
        def store_broadcast(self, sender, value): self.got[sender] = value
        def finalize(self): return Output(self.got)

    d = Driver(b"sid", self_id=1, parties=[1, 2], total_rounds=1,
               start=Next(Hello(frozenset({1, 2})), (Send(None, b"hello"),)))
    for out in d.take_outgoing(): ...             # Outgoing(to=None, round=1, payload=...)
    d.receive(2, payload_from_party_2)
    d.result.value                                # {2: b"hello"}: a round never sees its own sends
"""

from __future__ import annotations

import abc
import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Generic, TypeVar

from enclave.errors import BadInput, InvalidEncoding, LocalError, ProtocolFault

PartyId = int
B = TypeVar("B")
D = TypeVar("D")

FRAME_VERSION = 1
_HEADER_LEN = 6
ECHO_LEN = 32
_ECHO_TAG = b"mpc-signer/rounds/echo/v1"


class Kind(IntEnum):
    BROADCAST = 0
    DIRECT = 1


@dataclass(frozen=True)
class Expect:
    """Who sends what in a round. `broadcast` lists every broadcaster, self included if so."""

    broadcast: frozenset[PartyId] = frozenset()
    direct: frozenset[PartyId] = frozenset()


@dataclass(frozen=True)
class Send:
    """One message this party emits: `to` a party, or None for a broadcast to all."""

    to: PartyId | None
    body: bytes = field(repr=False)


@dataclass(frozen=True)
class Outgoing:
    """A framed message for the transport: deliver `payload` to `to` (None: every other party)."""

    to: PartyId | None
    round: int
    payload: bytes = field(repr=False)


@dataclass(frozen=True)
class Output:
    value: Any = field(repr=False)


@dataclass(frozen=True)
class Abort:
    culprits: frozenset[PartyId]
    reason: str
    accusers: frozenset[PartyId] = frozenset()


class Round(abc.ABC, Generic[B, D]):
    """One protocol round whose broadcasts decode to `B` and direct messages to `D` (see the
    module docstring for the contract). The driver hands a round only the kinds its
    `expects()` lists, so a round without direct messages (or broadcasts) leaves that pair of
    methods as they are here."""

    number: int

    @abc.abstractmethod
    def expects(self) -> Expect: ...

    def verify_broadcast(self, sender: PartyId, body: bytes) -> B:
        raise ProtocolFault(sender, "no broadcast expected in this round")

    def verify_direct(self, sender: PartyId, body: bytes) -> D:
        raise ProtocolFault(sender, "no direct message expected in this round")

    def store_broadcast(self, sender: PartyId, value: B) -> None:
        raise LocalError("a broadcast stored in a round without broadcasts")

    def store_direct(self, sender: PartyId, value: D) -> None:
        raise LocalError("a direct message stored in a round without direct messages")

    @abc.abstractmethod
    def finalize(self) -> Next | Output | Abort: ...


@dataclass(frozen=True)
class Next:
    round: Round[Any, Any]
    sends: tuple[Send, ...] = ()


@dataclass(frozen=True)
class Frame:
    """A parsed wire frame (exposed so tests can tamper with bodies and keep valid framing)."""

    round: int
    kind: Kind
    echo: tuple[bytes, ...]
    body: bytes = field(repr=False)

    def encode(self) -> bytes:
        return b"".join(
            [
                bytes([FRAME_VERSION]),
                self.round.to_bytes(2, "big"),
                bytes([self.kind]),
                len(self.echo).to_bytes(2, "big"),
                *self.echo,
                self.body,
            ]
        )

    @classmethod
    def decode(cls, payload: bytes) -> Frame:
        payload = bytes(payload)
        if len(payload) < _HEADER_LEN or payload[0] != FRAME_VERSION:
            raise InvalidEncoding("bad frame header")
        rnd = int.from_bytes(payload[1:3], "big")
        if payload[3] not in (Kind.BROADCAST, Kind.DIRECT):
            raise InvalidEncoding("bad message kind")
        n_echo = int.from_bytes(payload[4:6], "big")
        end = _HEADER_LEN + n_echo * ECHO_LEN
        if len(payload) < end:
            raise InvalidEncoding("truncated echo")
        echo = tuple(payload[i : i + ECHO_LEN] for i in range(_HEADER_LEN, end, ECHO_LEN))
        return cls(rnd, Kind(payload[3]), echo, payload[end:])


def echo_digest(session_id: bytes, round_no: int, broadcaster: PartyId, body: bytes) -> bytes:
    h = hashlib.sha256(_ECHO_TAG)
    for part in (session_id, round_no.to_bytes(2, "big"), broadcaster.to_bytes(4, "big"), body):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.digest()


class Driver:
    """Runs one party of one session. Feed `receive`, drain `take_outgoing`, read `result`."""

    def __init__(
        self,
        session_id: bytes,
        self_id: PartyId,
        parties: Iterable[PartyId],
        start: Next,
        total_rounds: int,
        max_payload: int = 1 << 20,
        context: bytes | None = None,
    ) -> None:
        """`context`: a 32-byte digest of input every party must hold the same of (a one-round
        signature from preprocessed nonces: the commitment list). Round-1 frames then carry it
        as their echo, and a frame with another aborts naming its sender, as an echo mismatch
        about this party's own broadcast would."""
        self.session_id = bytes(session_id)
        self.self_id = self_id
        self.parties: frozenset[PartyId] = frozenset(parties)
        if self_id not in self.parties:
            raise BadInput("self is not a party of the session")
        if not all(isinstance(p, int) and 0 <= p < 1 << 32 for p in self.parties):
            raise BadInput("party ids must be ints in [0, 2^32)")
        if total_rounds < 1 or total_rounds > 0xFFFF:
            raise BadInput("bad number of rounds")
        self.total_rounds = total_rounds
        self.max_payload = max_payload
        self._outbox: list[Outgoing] = []
        self._queue: dict[tuple[int, PartyId, Kind], Frame] = {}
        self._seen: set[tuple[int, PartyId, Kind]] = set()
        self._stored: set[tuple[PartyId, Kind]] = set()
        self._round: Round[Any, Any] | None = None
        # Echo state: digests of the previous round's broadcasts (what we send and compare
        # against) and the digests being collected in the current round.
        self._prev_echo: tuple[bytes, ...] = ()
        self._prev_broadcasters: tuple[PartyId, ...] = ()
        if context is not None:
            if len(context) != ECHO_LEN:
                raise BadInput("a session context is one echo digest")
            self._prev_echo, self._prev_broadcasters = (bytes(context),), (self_id,)
        self._cur_echo: dict[PartyId, bytes] = {}
        self.result: Output | Abort | None = None
        self._enter(start)

    # -- public API -------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self.result is not None

    @property
    def round_number(self) -> int:
        return self._round.number if self._round is not None else 0

    def take_outgoing(self) -> list[Outgoing]:
        out, self._outbox = self._outbox, []
        return out

    def held_bytes(self) -> int:
        """Bytes of the queued messages not examined yet (their wire size): those of the next
        round and direct messages of this round waiting for their sender's broadcast."""
        return sum(_HEADER_LEN + ECHO_LEN * len(f.echo) + len(f.body) for f in self._queue.values())

    def furthest_round(self) -> int:
        """The latest round an honest peer can send a message for right now (0 once done)."""
        return self.round_number + 1 if self._round is not None else 0

    def missing(self) -> frozenset[PartyId]:
        """Parties whose message the current round still waits for (for timeout blame)."""
        if self._round is None or self.done:
            return frozenset()
        exp = self._round.expects()
        need = {(p, Kind.BROADCAST) for p in exp.broadcast} | {(p, Kind.DIRECT) for p in exp.direct}
        return frozenset(p for p, k in need - self._stored if p != self.self_id)

    def receive(self, sender: PartyId, payload: bytes) -> None:
        """Accept one message from `sender` (as authenticated by the transport)."""
        if sender not in self.parties or sender == self.self_id:
            raise BadInput("message from a party outside this session")
        if self.done:
            return  # late traffic after the end changes nothing
        if len(payload) > self.max_payload:
            self._abort(Abort(frozenset({sender}), "message too large"))
            return
        try:
            frame = Frame.decode(payload)
        except InvalidEncoding:
            self._abort(Abort(frozenset({sender}), "unparsable frame"))
            return
        key = (frame.round, sender, frame.kind)
        if not 1 <= frame.round <= self.total_rounds:
            self._abort(Abort(frozenset({sender}), "round out of range"))
            return
        if key in self._seen:
            self._abort(Abort(frozenset({sender}), "duplicate message"))
            return
        if frame.round > self.furthest_round():
            reason = f"message for round {frame.round} while this party is in round {self.round_number}"
            self._abort(Abort(frozenset({sender}), reason + " (no honest party is that far ahead)"))
            return
        self._seen.add(key)
        if frame.round < self.round_number:
            self._abort(Abort(frozenset({sender}), "unexpected message for a past round"))
            return
        self._queue[key] = frame
        self._advance()

    # -- internals ----------------------------------------------------------------------------

    def _abort(self, abort: Abort) -> None:
        self.result = abort
        self._round = None
        self._queue.clear()

    def _enter(self, nxt: Next) -> None:
        rnd = nxt.round
        if rnd.number != self.round_number + 1 or rnd.number > self.total_rounds:
            raise BadInput("rounds must be numbered 1, 2, ... up to total_rounds")
        if self._round is not None:
            prev = self._round.expects()
            self._prev_broadcasters = tuple(sorted(prev.broadcast))
            self._prev_echo = tuple(self._cur_echo[b] for b in self._prev_broadcasters)
        self._round = rnd
        self._stored = set()
        self._cur_echo = {}
        exp = rnd.expects()
        if not (exp.broadcast | exp.direct) <= self.parties or self.self_id in exp.direct:
            raise BadInput("round expects messages from parties outside the session")
        sent_broadcast = False
        reached: set[PartyId] = set()
        for s in nxt.sends:
            kind = Kind.BROADCAST if s.to is None else Kind.DIRECT
            if s.to is not None and (s.to not in self.parties or s.to == self.self_id):
                raise BadInput("direct message to a party outside the session")
            if kind is Kind.BROADCAST:
                if sent_broadcast or self.self_id not in exp.broadcast:
                    raise BadInput("round does not let this party broadcast (once)")
                sent_broadcast = True
                self._cur_echo[self.self_id] = echo_digest(self.session_id, rnd.number, self.self_id, s.body)
            frame = Frame(rnd.number, kind, self._prev_echo, s.body)
            self._outbox.append(Outgoing(s.to, rnd.number, frame.encode()))
            reached |= (self.parties - {self.self_id}) if s.to is None else {s.to}
        if self.self_id in exp.broadcast and not sent_broadcast:
            raise BadInput("round expects this party to broadcast")
        if reached != self.parties - {self.self_id}:
            # Peers could then run more than one round ahead (see the module docstring).
            raise BadInput("every round must send each other party a message")

    def _check_echo(self, sender: PartyId, frame: Frame) -> Abort | None:
        if len(frame.echo) != len(self._prev_echo):
            return Abort(frozenset({sender}), "echo of the wrong size")
        culprits: set[PartyId] = set()
        accused = False
        for b, mine, theirs in zip(self._prev_broadcasters, self._prev_echo, frame.echo, strict=True):
            if hmac.compare_digest(mine, theirs):
                continue
            if b in (sender, self.self_id):
                culprits.add(sender)
            else:
                culprits.add(b)
                accused = True
        if not culprits:
            return None
        return Abort(
            frozenset(culprits),
            "broadcast inconsistency",
            frozenset({sender}) if accused else frozenset(),
        )

    def _accept(self, rnd: Round[Any, Any], exp: Expect, sender: PartyId, kind: Kind, frame: Frame) -> bool:
        """Check, verify and store one message of the current round; False once aborted."""
        allowed = exp.broadcast if kind is Kind.BROADCAST else exp.direct
        if sender not in allowed:
            self._abort(Abort(frozenset({sender}), "message kind not expected from sender"))
            return False
        bad_echo = self._check_echo(sender, frame)
        if bad_echo is not None:
            self._abort(bad_echo)
            return False
        try:
            if kind is Kind.BROADCAST:
                value = rnd.verify_broadcast(sender, frame.body)
            else:
                value = rnd.verify_direct(sender, frame.body)
        except ProtocolFault as fault:
            self._abort(Abort(fault.culprits, fault.reason))
            return False
        except Exception as exc:  # garbage from a peer must never escape the session
            self._abort(Abort(frozenset({sender}), f"invalid message ({type(exc).__name__})"))
            return False
        if kind is Kind.BROADCAST:
            rnd.store_broadcast(sender, value)
            self._cur_echo[sender] = echo_digest(self.session_id, rnd.number, sender, frame.body)
        else:
            rnd.store_direct(sender, value)
        self._stored.add((sender, kind))
        return True

    def _advance(self) -> None:
        while self._round is not None:
            rnd = self._round
            exp = rnd.expects()
            for key in sorted(k for k in self._queue if k[0] == rnd.number):
                _, sender, kind = key
                held = kind is Kind.DIRECT and sender in exp.direct and sender in exp.broadcast
                if held and (sender, Kind.BROADCAST) not in self._stored:
                    continue  # held until the sender's broadcast of this round is stored
                # (a direct message the round does not expect is not held: _accept aborts on it)
                if not self._accept(rnd, exp, sender, kind, self._queue.pop(key)):
                    return
            if self.missing():
                return
            try:
                res = rnd.finalize()
            except ProtocolFault as fault:
                res = Abort(fault.culprits, fault.reason)
            except Exception as exc:
                # Everything finalize sees was verified, so this is our own failure, not a peer's.
                self._abort(Abort(frozenset(), "local error"))
                raise LocalError(f"round {rnd.number} failed locally ({type(exc).__name__})") from exc
            if isinstance(res, Next):
                try:
                    self._enter(res)
                except BadInput as exc:  # a round produced an invalid next step: our bug
                    self._abort(Abort(frozenset(), "local error"))
                    raise LocalError(f"round {rnd.number} produced an invalid next round") from exc
            else:
                if isinstance(res, Abort):
                    self._abort(res)
                else:
                    self.result = res
                    self._round = None
                return
