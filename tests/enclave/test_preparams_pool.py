"""Pool bookkeeping for pre-parameters at rest (export once, consumed ids, imports bounded by
the pool size) and the pair serialization (version byte, strict re-validation)."""

from __future__ import annotations

import pytest

from enclave.crypto.primes import (
    PAIR_FORMAT_VERSION,
    FixtureSource,
    PreParamPool,
    SafePrimePair,
    decode_pair,
    encode_pair,
)
from enclave.errors import InvalidParameters
from tests.enclave import safe_primes


def pairs(n: int) -> list[SafePrimePair]:
    source = FixtureSource(safe_primes.primes(1024))
    return [source(2048) for _ in range(n)]


def test_encode_decode_round_trip_and_strictness() -> None:
    (pair,) = pairs(1)
    data = encode_pair(pair)
    assert data[0] == PAIR_FORMAT_VERSION
    assert decode_pair(data, 2048) == pair
    for bad in (b"", bytes([2]) + data[1:], data[:-1], data + b"\x00", data[:3]):
        with pytest.raises(InvalidParameters):
            decode_pair(bad, 2048)
    with pytest.raises(InvalidParameters, match="configured size"):
        decode_pair(data, 3072)
    same = encode_pair(SafePrimePair(pair.p, pair.p))
    with pytest.raises(InvalidParameters, match="distinct safe primes"):
        decode_pair(same, 2048)


def test_exported_once_and_consumption_reported() -> None:
    made = iter(pairs(3))
    pool = PreParamPool(lambda bits: next(made), 2048, 3)
    pool.fill_now()
    first = pool.unexported(2)
    assert len(first) == 2 and len(pool.unexported(5)) == 1 and pool.unexported(5) == []
    pool.note_exported(first[0], "a" * 32)
    pool.note_exported(first[1], "b" * 32)
    assert pool.take(timeout=0) == first[0]  # oldest first
    assert pool.consumed_exports() == ["a" * 32]
    assert pool.consumed_exports() == []


def test_taken_while_sealing_is_reported_at_once() -> None:
    made = iter(pairs(1))
    pool = PreParamPool(lambda bits: next(made), 2048, 1)
    pool.fill_now()
    (pair,) = pool.unexported(1)
    assert pool.take(timeout=0) == pair
    pool.note_exported(pair, "c" * 32)
    assert pool.consumed_exports() == ["c" * 32]


def test_imports_bounded_and_not_reexported() -> None:
    p1, p2, p3 = pairs(3)
    pool = PreParamPool(lambda bits: pytest.fail("no search expected"), 2048, 2)
    assert pool.add(p1) and not pool.add(p1)  # the same pair twice: refused
    assert pool.add(p2) and not pool.add(p3)  # full
    assert pool.ready() == 2 and pool.unexported(5) == []
    assert pool.take(timeout=0) == p1 and pool.consumed_exports() == []


def test_requeue_after_failed_seal() -> None:
    made = iter(pairs(2))
    pool = PreParamPool(lambda bits: next(made), 2048, 2)
    pool.fill_now()
    got = pool.unexported(2)
    pool.requeue_unexported(got)
    assert pool.unexported(2) == got
