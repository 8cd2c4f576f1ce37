"""Finished-session records: compact, bounded in age, count and bytes (oldest out first, each
eviction counted by cause), and their byte accounting close to what they really hold."""

from __future__ import annotations

import gc
import hashlib
import secrets
import tracemalloc

from mpc.v1 import enclave_pb2 as epb
from mpc.v1 import signer_pb2 as pb
from signer.sessions.retention import FinishedSession, FinishedSessions


def record(session_id: str, at: float = 0.0, state: int = pb.SESSION_STATE_DONE) -> FinishedSession:
    result = pb.SessionResult(
        sign=pb.SignResult(
            key_id=secrets.token_hex(32), signature=secrets.token_bytes(64), public_key=secrets.token_bytes(32)
        )
    )
    return FinishedSession(
        session_id=session_id,
        kind=epb.SESSION_KIND_SIGN,
        fingerprint=hashlib.sha256(session_id.encode()).digest(),
        state=state,
        finished_at=at,
        result=result.SerializeToString() if state == pb.SESSION_STATE_DONE else b"",
        reason="" if state == pb.SESSION_STATE_DONE else "invalid share",
        culprits=() if state == pb.SESSION_STATE_DONE else ("client",),
    )


class Evictions:
    def __init__(self) -> None:
        self.by_cause: dict[str, int] = {}

    def __call__(self, cause: str, count: int) -> None:
        self.by_cause[cause] = self.by_cause.get(cause, 0) + count


def test_count_bound_drops_the_oldest_first() -> None:
    evicted = Evictions()
    kept = FinishedSessions(max_age=60, max_count=3, max_bytes=1 << 20, evicted=evicted)
    for i in range(5):
        kept.add(record(f"s{i}", at=i))
    assert len(kept) == 3 and [kept.get(f"s{i}") is not None for i in range(5)] == [False, False, True, True, True]
    assert evicted.by_cause == {"count": 2}
    assert kept.bytes == sum(r.size for r in (kept.get("s2"), kept.get("s3"), kept.get("s4")) if r is not None)


def test_bytes_bound_and_age() -> None:
    evicted = Evictions()
    one = record("x").size
    kept = FinishedSessions(max_age=10, max_count=100, max_bytes=3 * one + one // 2, evicted=evicted)
    for i in range(6):
        kept.add(record(f"s{i}", at=i))
    assert len(kept) == 3 and kept.bytes <= 3 * one + one // 2 and evicted.by_cause == {"bytes": 3}
    assert kept.expire(now=14) == 1 and kept.get("s3") is None  # finished at 3, older than 10 s at 14
    assert kept.expire(now=14) == 0
    assert evicted.by_cause == {"bytes": 3, "age": 1}
    for session_id in ("s4", "s5"):
        kept.discard(session_id)
    assert len(kept) == 0 and kept.bytes == 0


def test_a_record_answers_like_the_session() -> None:
    done = record("d")
    result = done.public_result()
    assert result is not None and len(result.sign.signature) == 64 and done.failure() is None
    failed = record("f", state=pb.SESSION_STATE_FAILED)
    assert failed.public_result() is None
    failure = failed.failure()
    assert failure is not None and list(failure.culprits) == ["client"] and failure.reason == "invalid share"
    kept = FinishedSessions(max_age=60, max_count=10, max_bytes=1 << 20)
    kept.add(done)
    before = kept.bytes
    message = pb.ProtocolMessage(session_id="d", sender="signer", round=3, seq=4, payload=b"share", hmac=b"m" * 32)
    kept.set_first_outgoing("d", [message])
    assert done.outgoing() == [message] and kept.bytes == before + len(message.SerializeToString())


def test_accounted_bytes_are_close_to_the_memory_a_record_holds() -> None:
    """RECORD_OVERHEAD keeps `size` honest: within 25% of what tracemalloc sees per record."""
    kept = FinishedSessions(max_age=60, max_count=10**6, max_bytes=1 << 40)
    count = 4000
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for i in range(count):
            kept.add(record(f"sign-{secrets.token_hex(6)}-{i}"))
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    real = sum(stat.size_diff for stat in after.compare_to(before, "filename")) / count
    accounted = kept.bytes / count
    assert 0.75 * real <= accounted <= 1.25 * real, (real, accounted)
