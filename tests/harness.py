"""Run N protocol parties in process through their `Driver`s, with tamper rules.

    result = run(drivers, rules=[...], seed=None)
    result.outcomes[party]   # Output | Abort (None if the party is still waiting)
    result.rejected          # [(recipient, sender)] messages a driver refused with BadInput

Every broadcast is expanded into one delivery per recipient before rules apply, so a rule can
treat recipients differently (equivocation). A rule is any callable
`(sender, recipient, frame) -> list[Frame | bytes] | None`: return None to leave the delivery
alone, [] to drop it, several items to duplicate it, a modified `Frame` to tamper with the body
while keeping a valid frame, or raw bytes for frame-level garbage. Helpers build common rules:

    modify(sender, round, fn, to=None, kind=None)  # body -> body, optionally one recipient only
    drop(sender, round, to=None)
    duplicate(sender, round, to=None)
    equivocate(sender, round, to, fn)              # modify one recipient's copy of a broadcast
    garbage(sender, round, data, to=None)          # replace the whole frame with raw bytes

`inject=[(sender, recipient, payload), ...]` delivers extra messages first (e.g. from a party
outside the session). `seed` shuffles delivery order (exercises future-round queueing).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from enclave.errors import BadInput
from enclave.protocols.driver import Abort, Driver, Frame, Kind, Output, PartyId
from enclave.tee.identity import EnclaveIdentity

Rule = Callable[[PartyId, PartyId, Frame], "list[Frame | bytes] | None"]


@dataclass
class Result:
    outcomes: dict[PartyId, Output | Abort | None]
    rejected: list[tuple[PartyId, PartyId]] = field(default_factory=list)
    delivered: int = 0

    def outputs(self) -> dict[PartyId, object]:
        out = {}
        for p, o in self.outcomes.items():
            assert isinstance(o, Output), f"party {p} ended with {o!r}"
            out[p] = o.value
        return out

    def aborts(self) -> dict[PartyId, Abort]:
        return {p: o for p, o in self.outcomes.items() if isinstance(o, Abort)}


_IDENTITIES: dict[PartyId, EnclaveIdentity] = {}


def identity(party: PartyId) -> EnclaveIdentity:
    """A P-256 identity key per party id (a reshare's listed parties sign with it), the same for
    every setup in one test run, so two setups of one party agree on its key."""
    return _IDENTITIES.setdefault(party, EnclaveIdentity.generate())


def _match(frame: Frame, sender: PartyId, s: PartyId, rnd: int, to: PartyId | None, recipient: PartyId) -> bool:
    return sender == s and frame.round == rnd and (to is None or to == recipient)


def modify(
    sender: PartyId,
    round: int,
    fn: Callable[[bytes], bytes],
    to: PartyId | None = None,
    kind: Kind | None = None,
) -> Rule:
    def rule(s: PartyId, r: PartyId, frame: Frame) -> list[Frame | bytes] | None:
        if _match(frame, s, sender, round, to, r) and (kind is None or frame.kind == kind):
            return [replace(frame, body=fn(frame.body))]
        return None

    return rule


def equivocate(sender: PartyId, round: int, to: PartyId, fn: Callable[[bytes], bytes]) -> Rule:
    return modify(sender, round, fn, to=to, kind=Kind.BROADCAST)


def drop(sender: PartyId, round: int, to: PartyId | None = None) -> Rule:
    def rule(s: PartyId, r: PartyId, frame: Frame) -> list[Frame | bytes] | None:
        return [] if _match(frame, s, sender, round, to, r) else None

    return rule


def duplicate(sender: PartyId, round: int, to: PartyId | None = None) -> Rule:
    def rule(s: PartyId, r: PartyId, frame: Frame) -> list[Frame | bytes] | None:
        return [frame, frame] if _match(frame, s, sender, round, to, r) else None

    return rule


def garbage(sender: PartyId, round: int, data: bytes, to: PartyId | None = None) -> Rule:
    def rule(s: PartyId, r: PartyId, frame: Frame) -> list[Frame | bytes] | None:
        return [data] if _match(frame, s, sender, round, to, r) else None

    return rule


def run(
    drivers: Sequence[Driver],
    rules: Iterable[Rule] = (),
    *,
    inject: Iterable[tuple[PartyId, PartyId, bytes]] = (),
    seed: int | None = None,
    max_deliveries: int = 100_000,
) -> Result:
    by_id = {d.self_id: d for d in drivers}
    rules = list(rules)
    rng = random.Random(seed) if seed is not None else None
    pending: list[tuple[PartyId, PartyId, bytes]] = list(inject)
    result = Result({p: None for p in by_id})

    def collect() -> None:
        for d in drivers:
            for out in d.take_outgoing():
                targets = [out.to] if out.to is not None else sorted(p for p in d.parties if p != d.self_id)
                for t in targets:
                    items: list[Frame | bytes] = [Frame.decode(out.payload)]
                    for rule in rules:
                        nxt: list[Frame | bytes] = []
                        for it in items:
                            if isinstance(it, bytes):
                                nxt.append(it)
                                continue
                            res = rule(d.self_id, t, it)
                            nxt.extend([it] if res is None else res)
                        items = nxt
                    for it in items:
                        pending.append((d.self_id, t, it if isinstance(it, bytes) else it.encode()))

    collect()
    while pending:
        if result.delivered >= max_deliveries:
            raise RuntimeError("too many deliveries")
        idx = rng.randrange(len(pending)) if rng is not None else 0
        sender, recipient, payload = pending.pop(idx)
        result.delivered += 1
        target = by_id.get(recipient)
        if target is None:
            continue
        try:
            target.receive(sender, payload)
        except BadInput:
            result.rejected.append((recipient, sender))
        collect()
    result.outcomes = {p: d.result for p, d in by_id.items()}
    return result
