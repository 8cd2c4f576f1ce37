"""One live session inside the enclave (`LiveSession`): its parties, its phases of `Driver`s, its state.

Party mapping. Party ids are strings at the API; drivers use ints. A session's `Parties` maps
each party id string to the int its protocol driver uses (DKG: 1-based position in the ordered
party_ids; SIGN/PRESIGN: the signer's index in the key's DKG party list).

Phases. Most sessions are one driver. A GG20 signature without a presignature is two: presign
(rounds 1-4) then the online round. A `Phase` is a driver plus a round offset: its messages
travel as EnclaveMessage.round = offset + driver round, and a message whose round lies beyond
the current phase is held (one per sender and round) until its phase starts; a second one from
the same sender for the same round aborts naming the sender, a round outside the session's
range too. When a driver outputs, the phase's `finish` turns the output into the next phase or
into the SessionResult (a `ProtocolFault` it raises aborts naming its culprits).

Acceptance before a message reaches a driver (each failure aborts naming the sender): a frame
header that parses, a frame round equal to the message's round less the phase offset, a size
within the protocol's bound for that round and kind (`MessageLimits`, enclave/engine/limits.py;
in a `capped` round a message over the 1 MiB ceiling names nobody), and a round at most one
ahead of this party's (no honest peer is further ahead). What the session then holds for later
rounds is within the reservation it made at start (`HeldBudget`, enclave/engine/held.py); bytes
beyond it (early abort-branch messages only) are lent from the engine's spare room, or the
session fails naming nobody.

Everything here runs under the session's lock, the heavy parts in a worker thread: a session is
touched by one thread at a time. Failing or finishing drops the drivers (and with them every
secret the session held; Python cannot wipe memory, the references go).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from enclave.engine.held import HeldBudget
from enclave.engine.limits import MessageLimits
from enclave.errors import LocalError, ProtocolFault
from enclave.protocols.driver import FRAME_VERSION, Abort, Driver, Kind, Output
from enclave.tee.kms import KmsUnavailable
from mpc.v1 import enclave_pb2 as pb

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Parties:
    """The session's party ids and the int each one has in the protocol drivers."""

    self_name: str
    index: Mapping[str, int]

    def __post_init__(self) -> None:
        if self.self_name not in self.index or len(set(self.index.values())) != len(self.index):
            raise ValueError("party indices must be distinct and include this party")

    @property
    def self_index(self) -> int:
        return self.index[self.self_name]

    def name(self, i: int) -> str:
        for name, j in self.index.items():
            if j == i:
                return name
        raise KeyError(i)

    def names(self, indices: Iterable[int]) -> list[str]:
        return [self.name(i) for i in sorted(indices)]


@dataclass
class Phase:
    driver: Driver = field(repr=False)
    offset: int
    # Runs in the worker thread with the driver's Output value.
    finish: Callable[[Any], pb.SessionResult | Phase] = field(repr=False)

    @property
    def last_round(self) -> int:
        return self.offset + self.driver.total_rounds


@dataclass(frozen=True)
class Plan:
    """What an adapter hands the engine: the first phase and the rounds of the whole session."""

    first: Phase
    total_rounds: int


_HEADER = 6


class LiveSession:
    """A session the engine runs: its phases and secrets while running, its public outcome once
    finished (the engine keeps finished ones to answer late requests)."""

    def __init__(
        self,
        request: pb.SessionStart,
        parties: Parties,
        deadline: float,
        limits: MessageLimits | None = None,
        budget: HeldBudget | None = None,
        reserved: int = 0,
    ) -> None:
        self.id = request.session_id
        self.kind = request.kind
        self.protocol = request.protocol
        self.parties = parties
        self.deadline = deadline
        self.state: int = pb.SESSION_STATE_RUNNING
        self.result: pb.SessionResult | None = None
        self.culprits: list[str] = []
        self.reason = ""
        self.total_rounds = 0
        self._phase: Phase | None = None
        self._later: dict[tuple[int, int], bytes] = {}
        self.lock = asyncio.Lock()
        self.light = False  # steps run on the event loop (see Prepared.light)
        self.result_recipient = bytes(request.result_recipient_key)  # see engine.sealed_results
        self.limits = limits
        self._budget = budget
        self._reserved = reserved  # taken from the budget at start; given back by _drop
        self._lent = 0  # held beyond the reservation, lent by the budget
        self.held = 0  # bytes of peers' messages for later rounds, not examined yet

    @property
    def running(self) -> bool:
        return self.state == pb.SESSION_STATE_RUNNING

    # -- worker-thread side -------------------------------------------------------------------

    def begin(self, plan: Plan) -> list[pb.EnclaveMessage]:
        self._phase = plan.first
        self.total_rounds = plan.total_rounds
        if self.limits is not None and len(self.limits.rounds) != plan.total_rounds:
            raise LocalError("message limits do not cover the session's rounds")
        return self._guarded(self._advance)

    def feed(self, messages: Iterable[tuple[int, int, bytes]]) -> list[pb.EnclaveMessage]:
        """Apply (round, sender index, payload) messages in order; returns what to send."""

        def run() -> list[pb.EnclaveMessage]:
            out: list[pb.EnclaveMessage] = []
            for rnd, sender, payload in messages:
                if not self.running:
                    break
                self._receive(rnd, sender, payload)
                out += self._advance()
                self._recount()
            return out

        return self._guarded(run)

    def _guarded(self, fn: Callable[[], list[pb.EnclaveMessage]]) -> list[pb.EnclaveMessage]:
        try:
            return fn()
        except KmsUnavailable as exc:
            # Sealing a result needs KMS; its message is written for operators (no secrets).
            log.error("session %s failed: %s", self.id, exc)
            self.fail(f"sealing unavailable: {exc}")
        except LocalError as exc:
            log.error("session %s failed locally: %s", self.id, exc)
            self.fail("local error in the enclave")
        except Exception:
            log.exception("session %s failed", self.id)
            self.fail("internal error in the enclave")
        return []

    def _receive(self, rnd: int, sender: int, payload: bytes) -> None:
        phase = self._phase
        assert phase is not None
        if not 1 <= rnd <= self.total_rounds:
            self.fail("round out of range", [sender])
            return
        if rnd <= phase.offset:
            return  # traffic for an earlier, finished phase changes nothing (as a Driver does)
        if not self._acceptable(rnd, sender, payload, phase):
            return
        if rnd > phase.last_round:
            if (rnd, sender) in self._later:
                self.fail("duplicate message", [sender])
            elif self._room(len(payload)):
                self._later[(rnd, sender)] = payload
            return
        frame_round = int.from_bytes(payload[1:3], "big")
        if frame_round + phase.offset != rnd:
            self.fail(f"message for round {rnd} carries a frame of round {frame_round}", [sender])
        elif frame_round <= phase.driver.round_number or self._room(len(payload)):
            phase.driver.receive(sender, payload)

    def _acceptable(self, rnd: int, sender: int, payload: bytes, phase: Phase) -> bool:
        """The checks of the module docstring that need no driver; False once the session failed."""
        if len(payload) < _HEADER or payload[0] != FRAME_VERSION or payload[3] not in (Kind.BROADCAST, Kind.DIRECT):
            self.fail("unparsable frame", [sender])
            return False
        furthest = phase.offset + phase.driver.furthest_round()
        if rnd > furthest:
            self._refused(oversize=False)
            current = phase.offset + phase.driver.round_number
            self.fail(
                f"message for round {rnd} while this party is in round {current} (no honest party is that far ahead)",
                [sender],
            )
            return False
        if self.limits is None:
            return True
        broadcast = payload[3] == Kind.BROADCAST
        bound = self.limits.max_bytes(rnd, broadcast)
        if len(payload) > bound:
            self._refused(oversize=True)
            what = "broadcast" if broadcast else "direct message"
            reason = f"{len(payload)}-byte {what} for round {rnd} exceeds the protocol's bound of {bound} bytes"
            if self.limits.capped(rnd, broadcast):
                self.fail(reason + " (an honest one may too, at this party count: nobody is named)")
            else:
                self.fail(reason, [sender])
            return False
        return True

    def _refused(self, *, oversize: bool) -> None:
        if self._budget is not None:
            self._budget.note_refused(oversize=oversize)

    def _room(self, size: int) -> bool:
        """Room to hold `size` more bytes for a later round (see the module docstring)."""
        need = self.held + size - self._reserved - self._lent
        if need > 0:
            if self._budget is None or not self._budget.lend(need):
                self.fail("no room left in the enclave to hold an early message of a failing session")
                return False
            self._lent += need
        self.held += size
        if self._budget is not None:
            self._budget.note_held(size)
        return True

    def _recount(self) -> None:
        """Held bytes after the drivers took what their rounds reached; lent bytes go back."""
        phase = self._phase
        held = 0 if phase is None else phase.driver.held_bytes() + sum(len(p) for p in self._later.values())
        self._set_held(held)

    def _set_held(self, held: int) -> None:
        if self._budget is not None:
            self._budget.note_held(held - self.held)
            surplus = min(self._lent, self._reserved + self._lent - held)
            if surplus > 0:
                self._budget.give_back(surplus)
                self._lent -= surplus
        self.held = held

    def _advance(self) -> list[pb.EnclaveMessage]:
        out: list[pb.EnclaveMessage] = []
        while self.running and self._phase is not None:
            phase = self._phase
            out += [self._message(phase, o.to, o.round, o.payload) for o in phase.driver.take_outgoing()]
            res = phase.driver.result
            if res is None:
                break
            if isinstance(res, Abort):
                self.fail(res.reason, res.culprits)
                break
            assert isinstance(res, Output)
            try:
                nxt = phase.finish(res.value)
            except ProtocolFault as fault:
                self.fail(fault.reason, fault.culprits)
                break
            if isinstance(nxt, pb.SessionResult):
                self.done(nxt)
                break
            self._phase = nxt
            held = sorted(k for k in self._later if nxt.offset < k[0] <= nxt.last_round)
            for rnd, sender in held:
                payload = self._later.pop((rnd, sender))
                if int.from_bytes(payload[1:3], "big") + nxt.offset != rnd:
                    self.fail(f"message for round {rnd} carries a frame of another round", [sender])
                    break
                nxt.driver.receive(sender, payload)
        return out

    def _message(self, phase: Phase, to: int | None, rnd: int, payload: bytes) -> pb.EnclaveMessage:
        return pb.EnclaveMessage(
            sender=self.parties.self_name,
            recipient="" if to is None else self.parties.name(to),
            round=phase.offset + rnd,
            payload=payload,
        )

    # -- state ----------------------------------------------------------------------------------

    def _drop(self) -> None:
        self._phase = None
        self._later.clear()
        self._set_held(0)
        if self._budget is not None:
            self._budget.release(self._reserved, self._lent)
        self._reserved = self._lent = 0
        self._budget = None

    def fail(self, reason: str, culprits: Iterable[int] = ()) -> None:
        if not self.running:
            return
        self._drop()
        self.state = pb.SESSION_STATE_FAILED
        self.reason = reason
        self.culprits = self.parties.names(culprits)

    def done(self, result: pb.SessionResult) -> None:
        self._drop()
        self.state = pb.SESSION_STATE_DONE
        self.result = result

    def update(self, outgoing: Iterable[pb.EnclaveMessage] = ()) -> pb.SessionUpdate:
        u = pb.SessionUpdate(session_id=self.id, state=self.state, outgoing=list(outgoing))  # type: ignore[arg-type]
        if self.state == pb.SESSION_STATE_DONE and self.result is not None:
            u.result.CopyFrom(self.result)
        if self.state == pb.SESSION_STATE_FAILED:
            u.culprits.extend(self.culprits)
            u.reason = self.reason
        return u
