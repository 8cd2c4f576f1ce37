from __future__ import annotations

import pytest
from coincurve import PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from enclave.errors import InvalidEncoding
from enclave.group.secp256k1 import FIELD_PRIME, ORDER, Secp256k1Group

G = Secp256k1Group()
scalars = st.integers(min_value=0, max_value=ORDER - 1)


def test_generator_matches_libsecp256k1() -> None:
    assert G.encode(G.generator()) == PrivateKey.from_int(1).public_key.format()
    assert G.eq(G.base_mul(1), G.generator())


@settings(max_examples=50, deadline=None)
@given(a=scalars, b=scalars)
def test_arithmetic_is_the_scalar_ring(a: int, b: int) -> None:
    assert G.eq(G.add(G.base_mul(a), G.base_mul(b)), G.base_mul(a + b))
    assert G.eq(G.sub(G.base_mul(a), G.base_mul(b)), G.base_mul(a - b))
    assert G.eq(G.mul(G.base_mul(a), b), G.base_mul(a * b))
    assert G.eq(G.neg(G.base_mul(a)), G.base_mul(-a))
    assert G.eq(G.add_many([G.base_mul(a), G.base_mul(b), G.base_mul(-a)]), G.base_mul(b))


def test_identity_handling() -> None:
    p = G.base_mul(12345)
    zero = G.identity()
    assert G.is_identity(G.add(p, G.neg(p)))
    assert G.is_identity(G.sub(p, p))
    assert G.is_identity(G.mul(p, 0)) and G.is_identity(G.mul(p, ORDER))
    assert G.is_identity(G.base_mul(0)) and G.is_identity(G.base_mul(ORDER))
    assert G.eq(G.add(zero, p), p) and G.eq(G.add(p, zero), p)
    assert G.is_identity(G.mul(zero, 5)) and G.is_identity(G.neg(zero))
    assert G.is_identity(G.add_many([p, G.neg(p)]))
    assert G.eq(G.add(p, p), G.mul(p, 2))
    with pytest.raises(InvalidEncoding):
        G.encode(zero)


def test_decode_round_trip() -> None:
    p = G.base_mul(987654321)
    assert G.eq(G.decode(G.encode(p)), p)


def _off_curve() -> bytes:
    for x in range(1, 50):
        data = b"\x02" + x.to_bytes(32, "big")
        try:
            G.decode(data)
        except InvalidEncoding:
            return data
    raise AssertionError


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00",  # SEC1 identity
        bytes(33),
        b"\x04" + G.encode(G.generator())[1:],  # wrong prefix (uncompressed marker, short)
        b"\x05" + G.encode(G.generator())[1:],
        PrivateKey.from_int(5).public_key.format(compressed=False),  # uncompressed form
        b"\x02" + FIELD_PRIME.to_bytes(32, "big"),  # x = p
        b"\x03" + (2**256 - 1).to_bytes(32, "big"),  # x > p
        _off_curve(),
        G.encode(G.generator()) + b"\x00",  # trailing byte
    ],
)
def test_strict_decode(data: bytes) -> None:
    with pytest.raises(InvalidEncoding):
        G.decode(data)


def test_scalars() -> None:
    assert G.decode_scalar(G.encode_scalar(ORDER - 1)) == ORDER - 1
    for bad in (ORDER.to_bytes(32, "big"), (2**256 - 1).to_bytes(32, "big"), bytes(31), bytes(33)):
        with pytest.raises(InvalidEncoding):
            G.decode_scalar(bad)
    with pytest.raises(ValueError):
        G.encode_scalar(ORDER)
    with pytest.raises(ValueError):
        G.encode_scalar(-1)


def test_random_scalar_nonzero() -> None:
    class Zeros:
        calls = 0

        def random_bytes(self, n: int) -> bytes:
            self.calls += 1
            return bytes(n)

    assert G.random_scalar(Zeros()) == 1
