from __future__ import annotations

import threading

import pytest

from enclave.crypto.primes import (
    FixtureSource,
    PreParamPool,
    SafePrimePair,
    generate_safe_prime,
    is_safe_prime,
    system_source,
)
from enclave.crypto.rng import SYSTEM_RNG
from enclave.errors import InvalidParameters, LocalError
from tests.enclave import safe_primes


@pytest.mark.parametrize("bits", [64, 256, 512])
def test_generated_primes_are_safe(bits: int) -> None:
    p = generate_safe_prime(bits, SYSTEM_RNG)
    assert p.bit_length() == bits and is_safe_prime(p) and p % 4 == 3


def test_is_safe_prime() -> None:
    assert is_safe_prime(23) and is_safe_prime(47)
    assert not is_safe_prime(13)  # prime, (13-1)/2 = 6
    assert not is_safe_prime(29)  # 29 ≡ 1 mod 4
    assert not is_safe_prime(21)


def test_fixture_primes_are_safe_and_sized() -> None:
    assert len(safe_primes.primes(1024)) >= 20 and len(safe_primes.primes(1536)) >= 6
    source = safe_primes.source()
    pair = source(2048)
    assert pair.bits == 2048 and pair.p != pair.q
    assert source(3072).bits == 3072


def test_fixture_source_refuses_non_safe_primes() -> None:
    with pytest.raises(InvalidParameters):
        FixtureSource([23, 29])


def test_pool_fills_in_background_and_takes() -> None:
    calls = []

    def source(bits: int) -> SafePrimePair:
        calls.append(bits)
        return SafePrimePair(generate_safe_prime(bits // 2, SYSTEM_RNG), generate_safe_prime(bits // 2, SYSTEM_RNG))

    pool = PreParamPool(source, 256, size=2)
    pool.start()
    try:
        first = pool.take(timeout=30)
        second = pool.take(timeout=30)
        assert first != second and first.bits >= 255
    finally:
        pool.stop(timeout=30)
    assert all(b == 256 for b in calls)


def test_pool_fill_now_and_empty() -> None:
    pool = PreParamPool(system_source(SYSTEM_RNG), 128, size=3)
    with pytest.raises(LocalError):
        pool.take(timeout=0)
    pool.fill_now()
    assert pool.ready() == 3
    pool.take()
    assert pool.ready() == 2


def test_pool_stop_is_prompt() -> None:
    started = threading.Event()

    def source(bits: int) -> SafePrimePair:
        started.set()
        return SafePrimePair(23, 47)

    pool = PreParamPool(source, 10, size=1)
    pool.start()
    started.wait(5)
    pool.stop(timeout=5)
    while pool.ready():
        pool.take(timeout=0)
    with pytest.raises(LocalError):
        pool.take(timeout=0)  # stopped and empty: refuses at once instead of waiting forever
