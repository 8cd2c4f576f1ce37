"""Shamir secret sharing of one secret over the prime field GF(P), P = 2^256 - 189.

The operators' unseal shares (enclave/unseal/) split a key-encryption secret with it. P is the
largest prime below 2^256, so a share's value fits in 32 bytes and the secret is a uniform field
element of 256 bits less a negligible fraction (the key-encryption key is derived from it with
HKDF, so its distribution need only be nearly uniform). Share holders are the points x = 1..n.

Pure arithmetic: `enclave.crypto.polynomial` evaluates and interpolates modulo any modulus; this module
fixes the field, draws the coefficients from an injected `Rng`, and checks the inputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from enclave.crypto.polynomial import evaluate, interpolate
from enclave.crypto.rng import Rng, random_below
from enclave.errors import InvalidParameters

FIELD_PRIME: Final = 2**256 - 189
VALUE_LEN: Final = 32
MAX_SHARES: Final = 255


def random_secret(rng: Rng) -> int:
    """A uniform element of GF(P)."""
    return random_below(rng, FIELD_PRIME)


def split(secret: int, threshold: int, shares: int, rng: Rng) -> dict[int, int]:
    """`{x: f(x)}` for x = 1..shares, f of degree threshold-1 with f(0) = secret and the other
    coefficients uniform: any `threshold` values give the secret, fewer say nothing about it."""
    if not 1 <= threshold <= shares <= MAX_SHARES:
        raise InvalidParameters(f"need 1 <= threshold <= shares <= {MAX_SHARES}")
    if not 0 <= secret < FIELD_PRIME:
        raise InvalidParameters("the secret must be a field element")
    coeffs = (secret, *(random_below(rng, FIELD_PRIME) for _ in range(threshold - 1)))
    return {x: evaluate(coeffs, x, FIELD_PRIME) for x in range(1, shares + 1)}


def combine(points: Mapping[int, int]) -> int:
    """The secret from `threshold` (or more) shares `{x: y}` of one split. With more shares
    than the threshold the result is still f(0); with fewer, or shares of different splits, it
    is an unrelated field element: callers authenticate the outcome (the wrapped key's AEAD)."""
    if not points:
        raise InvalidParameters("no shares")
    for x, y in points.items():
        if not 1 <= x <= MAX_SHARES or not 0 <= y < FIELD_PRIME:
            raise InvalidParameters("share out of range")
    return interpolate(FIELD_PRIME, points)


def to_bytes(value: int) -> bytes:
    return value.to_bytes(VALUE_LEN, "big")


def from_bytes(data: bytes) -> int:
    if len(data) != VALUE_LEN:
        raise InvalidParameters(f"a field element is {VALUE_LEN} bytes")
    value = int.from_bytes(data, "big")
    if value >= FIELD_PRIME:
        raise InvalidParameters("not a field element (>= P)")
    return value
