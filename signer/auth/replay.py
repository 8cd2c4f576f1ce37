"""Replay rejection: per (session, sender), message sequence numbers must strictly increase.

Checked only after every HMAC of a request has verified, and committed all-or-nothing, so a
rejected request changes nothing. An entry lives as long as a session may (the session
deadline); when the table is full of live entries, new (session, sender) pairs are refused
rather than evicting live ones, because an evicted entry would reopen a replay window.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from mpc.v1 import signer_pb2
from signer.errors import AlreadyExists, InvalidArgument, ResourceExhausted


class SequenceGuard:
    def __init__(self, ttl_seconds: float, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        self._clock = clock
        # (session_id, sender) -> (last accepted seq, expiry); ordered by expiry (insertion order)
        self._last: OrderedDict[tuple[str, str], tuple[int, float]] = OrderedDict()

    def _expire(self, now: float) -> None:
        while self._last:
            slot, (_seq, expiry) = next(iter(self._last.items()))
            if expiry > now:
                break
            del self._last[slot]

    def accept(self, messages: Iterable[signer_pb2.ProtocolMessage]) -> None:
        """Check every message against the table and the ones before it, then record them."""
        now = self._clock()
        self._expire(now)
        pending: dict[tuple[str, str], int] = {}
        for index, message in enumerate(messages):
            if message.seq == 0:
                raise InvalidArgument(f"messages[{index}]: seq must start at 1")
            slot = (message.session_id, message.sender)
            last = pending.get(slot)
            if last is None and slot in self._last:
                last = self._last[slot][0]
            if last is not None and message.seq <= last:
                raise AlreadyExists(
                    f"messages[{index}]: seq {message.seq} from {message.sender!r} was already used "
                    f"(last accepted {last}): replay rejected"
                )
            pending[slot] = message.seq
        new_slots = sum(1 for slot in pending if slot not in self._last)
        if len(self._last) + new_slots > self._max:
            raise ResourceExhausted("too many live (session, sender) sequence entries")
        for slot, seq in pending.items():
            expiry = self._last[slot][1] if slot in self._last else now + self._ttl
            self._last[slot] = (seq, expiry)

    def forget_session(self, session_id: str) -> None:
        for slot in [s for s in self._last if s[0] == session_id]:
            del self._last[slot]
