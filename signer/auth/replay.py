"""Replay rejection within one session: per sender, message sequence numbers must strictly increase.

One `SenderSequences` belongs to one session and is dropped with it, so its size is bounded by
the session's party set (routing is checked before it) and nothing is recorded for a session
that is not held: a message for an unknown session is refused (NOT_FOUND) without touching any
table, and a finished session refuses every message before its sequences are consulted. A
session id cannot be started twice on a node (the store's `session_ids`), so an old session's
numbers can never be replayed into a new one with the same id.

Checked only after every HMAC of a request has verified, and committed all-or-nothing, so a
rejected request changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable

from mpc.v1 import signer_pb2
from signer.errors import AlreadyExists, InvalidArgument


class SenderSequences:
    """The last sequence number accepted from each sender of one session."""

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._last)

    def accept(self, messages: Iterable[signer_pb2.ProtocolMessage]) -> None:
        """Check every message against the recorded numbers and the ones before it in the batch,
        then record them all; a refusal records nothing."""
        pending: dict[str, int] = {}
        for index, message in enumerate(messages):
            if message.seq == 0:
                raise InvalidArgument(f"messages[{index}]: seq must start at 1")
            last = pending.get(message.sender, self._last.get(message.sender))
            if last is not None and message.seq <= last:
                raise AlreadyExists(
                    f"messages[{index}]: seq {message.seq} from {message.sender!r} was already used "
                    f"(last accepted {last}): replay rejected"
                )
            pending[message.sender] = message.seq
        self._last.update(pending)
