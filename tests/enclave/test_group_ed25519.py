"""Ed25519 group: arithmetic against libsodium's own signing, and strict decoding."""

from __future__ import annotations

import hashlib

import nacl.bindings as sodium
import nacl.signing
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from enclave.errors import InvalidEncoding
from enclave.group.ed25519 import ED25519 as G
from enclave.group.ed25519 import IDENTITY, ORDER

P = 2**255 - 19
scalars = st.integers(min_value=0, max_value=ORDER - 1)

# Points of order 1, 2, 4 and 8 (the torsion subgroup), canonical encodings.
SMALL_ORDER = [
    bytes.fromhex("0100000000000000000000000000000000000000000000000000000000000000"),
    bytes.fromhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    bytes.fromhex("0000000000000000000000000000000000000000000000000000000000000000"),
    bytes.fromhex("0000000000000000000000000000000000000000000000000000000000000080"),
    bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),
    bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
]


def test_base_mul_matches_rfc8032_public_key() -> None:
    seed = bytes(range(32))
    h = hashlib.sha512(seed).digest()
    a = bytearray(h[:32])
    a[0] &= 248
    a[31] &= 127
    a[31] |= 64
    pk = nacl.signing.SigningKey(seed).verify_key.encode()
    assert G.base_mul(int.from_bytes(a, "little")) == pk


@settings(max_examples=40, deadline=None)
@given(scalars, scalars)
def test_arithmetic_laws(a: int, b: int) -> None:
    pa, pb = G.base_mul(a), G.base_mul(b)
    assert G.eq(G.add(pa, pb), G.base_mul(a + b))
    assert G.eq(G.sub(pa, pb), G.base_mul(a - b))
    assert G.eq(G.mul(pa, b), G.base_mul(a * b))
    assert G.eq(G.neg(pa), G.base_mul(-a))
    assert G.eq(G.add(pa, G.neg(pa)), G.identity())


def test_zero_and_identity_edge_cases() -> None:
    assert G.is_identity(G.base_mul(0))
    assert G.is_identity(G.base_mul(ORDER))
    assert G.is_identity(G.mul(G.generator(), 0))
    assert G.is_identity(G.mul(G.identity(), 5))
    assert G.eq(G.add(G.identity(), G.generator()), G.generator())
    assert G.sum([]) == IDENTITY


def test_decode_roundtrip() -> None:
    p = G.base_mul(123456789)
    assert G.decode(G.encode(p)) == p
    assert G.decode_allow_identity(IDENTITY) == IDENTITY


@pytest.mark.parametrize("enc", SMALL_ORDER)
def test_decode_rejects_small_order(enc: bytes) -> None:
    with pytest.raises(InvalidEncoding):
        G.decode(enc)


def test_decode_rejects_mixed_order() -> None:
    p = G.base_mul(42)
    mixed = sodium.crypto_core_ed25519_add(p, SMALL_ORDER[4])
    with pytest.raises(InvalidEncoding):
        G.decode(mixed)


def test_decode_rejects_non_canonical_y() -> None:
    # y = p + 1 encodes the identity non-canonically; y = p + 3 etc. are off-range encodings.
    for y in (P, P + 1, P + 3, 2**255 - 1):
        for sign in (0, 1 << 255):
            with pytest.raises(InvalidEncoding):
                G.decode((y | sign).to_bytes(32, "little"))


def test_decode_rejects_off_curve_and_bad_length() -> None:
    off = None
    for y in range(2, 50):
        enc = y.to_bytes(32, "little")
        if not sodium.crypto_core_ed25519_is_valid_point(enc):
            off = enc
            break
    assert off is not None
    with pytest.raises(InvalidEncoding):
        G.decode(off)
    for bad in (b"", bytes(31), bytes(33)):
        with pytest.raises(InvalidEncoding):
            G.decode(bad)


def test_scalar_decoding_strict() -> None:
    assert G.decode_scalar(G.encode_scalar(ORDER - 1)) == ORDER - 1
    for bad in (ORDER, ORDER + 1, 2**256 - 1):
        with pytest.raises(InvalidEncoding):
            G.decode_scalar(bad.to_bytes(32, "little"))
    with pytest.raises(InvalidEncoding):
        G.decode_scalar(bytes(31))


def test_random_scalar_nonzero_in_range() -> None:
    from enclave.crypto.rng import SYSTEM_RNG

    for _ in range(50):
        k = G.random_scalar(SYSTEM_RNG)
        assert 0 < k < ORDER


def test_every_non_canonical_encoding_rejected() -> None:
    # y in [p, 2^255) are the only non-canonical y encodings; with either sign bit.
    for y in range(P, 2**255):
        for sign in (0, 1 << 255):
            enc = (y | sign).to_bytes(32, "little")
            with pytest.raises(InvalidEncoding):
                G.decode(enc)
            with pytest.raises(InvalidEncoding):
                G.decode_mul(enc, 5)


def test_decode_mul_matches_and_is_as_strict_as_decode() -> None:
    p = G.base_mul(987654321)
    assert G.decode_mul(p, 77) == G.mul(p, 77)
    assert G.decode_mul(p, 0) == IDENTITY
    assert G.decode_mul(p, ORDER) == IDENTITY
    mixed = sodium.crypto_core_ed25519_add(p, SMALL_ORDER[4])
    for bad in [*SMALL_ORDER, mixed, bytes(31), b"\x02" + bytes(31)]:
        for k in (0, 1, 5):
            with pytest.raises(InvalidEncoding):
                G.decode_mul(bad, k)
