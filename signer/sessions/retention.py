"""Finished sessions, kept compactly and in bounded number, bytes and time.

When a session ends (DONE or FAILED) the registry keeps only what its later calls can need: its
state, its public result and failure (serialized), the fingerprint of its start (an identical
start is answered again, a different one is ALREADY_EXISTS), and, for a session that finished
within its start, the outgoing messages of that answer (another party may still need them; a
session that ran longer has delivered its first messages already). The start request, the
protocol state, the lock and the sealed blobs are gone.

A record is dropped when it is older than `max_age` seconds, or, oldest first, when keeping it
would exceed `max_count` records or `max_bytes` bytes (the record's bytes plus a fixed
per-record overhead, measured with tracemalloc: about 0.5 KB for a FROST signing session, where
the full session it replaces held about 5 KB of process memory). Each
eviction is counted by cause (`age`, `count`, `bytes`). The session ids stay used in the store
(`session_ids`), so a status query for a dropped record answers NOT_FOUND saying it is no
longer kept, rather than "unknown session".
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mpc.v1 import signer_pb2 as pb

# Python objects of one record beyond the bytes it holds (the dataclass, its strings and bytes
# objects, the table entry), measured with tracemalloc; see tests/signer/test_retention.py.
RECORD_OVERHEAD = 320


@dataclass(slots=True)
class FinishedSession:
    """What a finished session still answers with."""

    session_id: str
    kind: int  # enclave_pb2.SessionKind
    fingerprint: bytes
    state: int  # signer_pb2.SessionState: DONE or FAILED
    finished_at: float
    reason: str = ""
    culprits: tuple[str, ...] = ()
    result: bytes = b""  # a serialized public signer_pb2.SessionResult (DONE), else empty
    first_outgoing: tuple[bytes, ...] = ()  # serialized ProtocolMessages of the start's answer

    finished = True

    @property
    def size(self) -> int:
        return (
            RECORD_OVERHEAD
            + len(self.session_id)
            + len(self.fingerprint)
            + len(self.reason)
            + sum(len(c) for c in self.culprits)
            + len(self.result)
            + sum(len(m) for m in self.first_outgoing)
        )

    def failure(self) -> pb.SessionFailure | None:
        if self.state != pb.SESSION_STATE_FAILED:
            return None
        return pb.SessionFailure(culprits=self.culprits, reason=self.reason)

    def public_result(self) -> pb.SessionResult | None:
        return pb.SessionResult.FromString(self.result) if self.result else None

    def outgoing(self) -> list[pb.ProtocolMessage]:
        return [pb.ProtocolMessage.FromString(m) for m in self.first_outgoing]


class FinishedSessions:
    def __init__(
        self,
        *,
        max_age: float,
        max_count: int,
        max_bytes: int,
        evicted: Callable[[str, int], None] | None = None,
    ) -> None:
        self._max_age = max_age
        self._max_count = max_count
        self._max_bytes = max_bytes
        self._evicted = evicted or (lambda _cause, _count: None)
        self._records: OrderedDict[str, FinishedSession] = OrderedDict()  # in the order they finished
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._records)

    @property
    def bytes(self) -> int:
        return self._bytes

    def get(self, session_id: str) -> FinishedSession | None:
        return self._records.get(session_id)

    def add(self, record: FinishedSession) -> None:
        self.discard(record.session_id)
        self._records[record.session_id] = record
        self._bytes += record.size
        self._bound()

    def set_first_outgoing(self, session_id: str, messages: Sequence[pb.ProtocolMessage]) -> None:
        record = self._records.get(session_id)
        if record is None or not messages:
            return
        self._bytes -= record.size
        record.first_outgoing = tuple(m.SerializeToString() for m in messages)
        self._bytes += record.size
        self._bound()

    def discard(self, session_id: str) -> None:
        record = self._records.pop(session_id, None)
        if record is not None:
            self._bytes -= record.size

    def expire(self, now: float) -> int:
        """Drop records older than max_age; returns how many."""
        dropped = 0
        while self._records:
            oldest = next(iter(self._records.values()))
            if now - oldest.finished_at <= self._max_age:
                break
            self.discard(oldest.session_id)
            dropped += 1
        if dropped:
            self._evicted("age", dropped)
        return dropped

    def _bound(self) -> None:
        over_count: Callable[[], bool] = lambda: len(self._records) > self._max_count  # noqa: E731
        over_bytes: Callable[[], bool] = lambda: self._bytes > self._max_bytes  # noqa: E731
        for cause, over in (("count", over_count), ("bytes", over_bytes)):
            dropped = 0
            while self._records and over():
                oldest = next(iter(self._records))
                self.discard(oldest)
                dropped += 1
            if dropped:
                self._evicted(cause, dropped)
