"""Shamir over GF(2^256 - 189): any threshold of shares gives the secret, fewer do not."""

from __future__ import annotations

import itertools

import pytest

from enclave.crypto import shamir
from enclave.crypto.primes import is_probable_prime
from enclave.errors import InvalidParameters
from tests.enclave.frost.common import FixedRng


def test_the_field_is_the_largest_prime_below_2_256() -> None:
    p = shamir.FIELD_PRIME
    assert is_probable_prime(p) and p < 2**256
    assert not any(is_probable_prime(c) for c in range(p + 2, 2**256, 2))


@pytest.mark.parametrize(("threshold", "shares"), [(1, 1), (1, 3), (2, 3), (3, 5), (5, 5)])
def test_every_threshold_subset_in_any_order_combines_to_the_secret(threshold: int, shares: int) -> None:
    rng = FixedRng(b"shamir-%d-%d" % (threshold, shares))
    secret = shamir.random_secret(rng)
    values = shamir.split(secret, threshold, shares, rng)
    assert sorted(values) == list(range(1, shares + 1))
    for subset in itertools.permutations(values, threshold):
        assert shamir.combine({x: values[x] for x in subset}) == secret
    if shares > threshold:  # more shares than needed still give f(0)
        assert shamir.combine(values) == secret


def test_fewer_than_threshold_shares_give_another_value() -> None:
    rng = FixedRng(b"shamir-short")
    secret = shamir.random_secret(rng)
    values = shamir.split(secret, 3, 5, rng)
    for subset in itertools.combinations(values, 2):
        assert shamir.combine({x: values[x] for x in subset}) != secret


def test_two_splits_of_one_secret_differ_and_do_not_mix() -> None:
    rng = FixedRng(b"shamir-mix")
    secret = shamir.random_secret(rng)
    a, b = shamir.split(secret, 2, 3, rng), shamir.split(secret, 2, 3, rng)
    assert a != b
    assert shamir.combine({1: a[1], 2: b[2]}) != secret


def test_bounds_are_checked() -> None:
    rng = FixedRng(b"shamir-bounds")
    with pytest.raises(InvalidParameters):
        shamir.split(1, 0, 3, rng)
    with pytest.raises(InvalidParameters):
        shamir.split(1, 4, 3, rng)
    with pytest.raises(InvalidParameters):
        shamir.split(shamir.FIELD_PRIME, 2, 3, rng)
    with pytest.raises(InvalidParameters):
        shamir.combine({})
    with pytest.raises(InvalidParameters):
        shamir.combine({1: shamir.FIELD_PRIME})
    with pytest.raises(InvalidParameters):
        shamir.from_bytes(shamir.FIELD_PRIME.to_bytes(32, "big"))
    assert shamir.from_bytes(shamir.to_bytes(12345)) == 12345
