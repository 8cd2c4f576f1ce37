"""secp256k1 on libsecp256k1 (coincurve bindings), implementing `Group`.

Elements are `coincurve.PublicKey` objects, or the module sentinel `IDENTITY`: libsecp256k1's
public-key type cannot hold the point at infinity, so every operation that can produce it
(P + (-P), k*P with k ≡ 0 mod n) is handled here and returns the sentinel instead of failing.

Encoding: 33-byte SEC1 compressed points. `decode` is strict: exact length, prefix 0x02/0x03,
x < p and on the curve (libsecp256k1's parser checks both); the identity has no encoding and
is rejected. secp256k1 has cofactor 1, so every curve point is in the prime-order group.
`encode` refuses the identity. Scalars are 32-byte big-endian, strictly < n.

BIP340 x-only keys: `x_only(p)` is the 32-byte x coordinate, `lift_x(x)` the point with that x
and an even y (BIP340's lift_x, strict like `decode`). Negating a point flips the parity byte
of its compressed encoding, so `negate_encoding` works on encodings without a curve operation.

For FROST (enclave.protocols.frost), which keeps points as encodings and does arithmetic on
decoded elements, `decode_mul`, `decode_trusted` and `sum` mirror the Ed25519 group's:
libsecp256k1 parses and validates in the same step, so here they are `decode` (then `mul`),
`decode` and `add_many`, with no cheaper unchecked path.

Timing: libsecp256k1's multiplication is constant time; Python-int scalar handling is not.
"""

from __future__ import annotations

from typing import Final

from coincurve import PublicKey

from enclave.crypto.rng import Rng, random_below
from enclave.errors import InvalidEncoding

ORDER: Final = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
FIELD_PRIME: Final = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFC2F
_GENERATOR_SEC1: Final = bytes.fromhex("0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798")


class _Identity:
    """The point at infinity (no libsecp256k1 representation)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "secp256k1.IDENTITY"


IDENTITY: Final = _Identity()
Point = PublicKey | _Identity


class Secp256k1Group:
    """The secp256k1 group. Stateless; one instance may be shared freely."""

    name = "secp256k1"
    order = ORDER
    scalar_len = 32
    element_len = 33

    def __init__(self) -> None:
        self._g = PublicKey(_GENERATOR_SEC1)

    def identity(self) -> Point:
        return IDENTITY

    def generator(self) -> Point:
        return self._g

    def add(self, a: Point, b: Point) -> Point:
        if isinstance(a, _Identity):
            return b
        if isinstance(b, _Identity):
            return a
        try:
            return PublicKey.combine_keys([a, b])
        except ValueError:
            # libsecp256k1 refuses an infinite sum; with valid inputs that means b == -a
            return IDENTITY

    def add_many(self, points: list[Point]) -> Point:
        """Sum of many points in one libsecp256k1 call (falls back pairwise on infinity)."""
        pts = [p for p in points if not isinstance(p, _Identity)]
        if not pts:
            return IDENTITY
        if len(pts) == 1:
            return pts[0]
        try:
            return PublicKey.combine_keys(pts)
        except ValueError:
            acc: Point = IDENTITY
            for p in pts:
                acc = self.add(acc, p)
            return acc

    def neg(self, a: Point) -> Point:
        if isinstance(a, _Identity):
            return a
        enc = bytearray(a.format(compressed=True))
        enc[0] ^= 0x01  # 0x02 <-> 0x03: same x, the other y
        return PublicKey(bytes(enc))

    def sub(self, a: Point, b: Point) -> Point:
        return self.add(a, self.neg(b))

    def mul(self, p: Point, k: int) -> Point:
        k %= ORDER
        if k == 0 or isinstance(p, _Identity):
            return IDENTITY
        return p.multiply(k.to_bytes(32, "big"))

    def base_mul(self, k: int) -> Point:
        k %= ORDER
        if k == 0:
            return IDENTITY
        return PublicKey.from_valid_secret(k.to_bytes(32, "big"))

    def eq(self, a: Point, b: Point) -> bool:
        if isinstance(a, _Identity) or isinstance(b, _Identity):
            return a is b
        return bool(a.format(compressed=True) == b.format(compressed=True))

    def is_identity(self, a: Point) -> bool:
        return isinstance(a, _Identity)

    def encode(self, p: Point) -> bytes:
        if isinstance(p, _Identity):
            raise InvalidEncoding("the identity has no encoding")
        return bytes(p.format(compressed=True))

    def decode(self, data: bytes) -> Point:
        if len(data) != 33 or data[0] not in (2, 3):
            raise InvalidEncoding("not a compressed secp256k1 point")
        if int.from_bytes(data[1:], "big") >= FIELD_PRIME:
            raise InvalidEncoding("x coordinate out of range")
        try:
            return PublicKey(bytes(data))
        except ValueError as exc:
            raise InvalidEncoding("not a point on secp256k1") from exc

    def decode_mul(self, data: bytes, k: int) -> Point:
        """k * decode(data): a peer point whose only use is one multiplication (strict)."""
        return self.mul(self.decode(data), k)

    def decode_trusted(self, data: bytes) -> Point:
        """An encoding that passed `decode` before (or that this enclave sealed). libsecp256k1's
        parser is also its validity check, so this is exactly `decode`."""
        return self.decode(data)

    def sum(self, points: list[Point]) -> Point:
        return self.add_many(points)

    def x_only(self, p: Point) -> bytes:
        """BIP340 x-only encoding: the 32-byte big-endian x coordinate."""
        return self.encode(p)[1:]

    def lift_x(self, x: bytes) -> Point:
        """BIP340 lift_x: the point with x coordinate `x` (32 bytes) and an even y. Strict."""
        if len(x) != 32:
            raise InvalidEncoding("x-only key must be 32 bytes")
        return self.decode(b"\x02" + bytes(x))

    @staticmethod
    def negate_encoding(data: bytes) -> bytes:
        """The encoding of -P from the encoding of P (same x, the other y)."""
        if len(data) != 33 or data[0] not in (2, 3):
            raise InvalidEncoding("not a compressed secp256k1 point")
        return bytes([data[0] ^ 0x01]) + bytes(data[1:])

    def x_coordinate(self, p: Point) -> int:
        if isinstance(p, _Identity):
            raise InvalidEncoding("the identity has no x coordinate")
        return int.from_bytes(p.format(compressed=True)[1:], "big")

    def y_is_odd(self, p: Point) -> bool:
        if isinstance(p, _Identity):
            raise InvalidEncoding("the identity has no y coordinate")
        return p.format(compressed=True)[0] == 3

    def encode_scalar(self, k: int) -> bytes:
        if not 0 <= k < ORDER:
            raise ValueError("scalar out of range")
        return k.to_bytes(32, "big")

    def decode_scalar(self, data: bytes) -> int:
        if len(data) != 32:
            raise InvalidEncoding("scalar must be 32 bytes")
        k = int.from_bytes(data, "big")
        if k >= ORDER:
            raise InvalidEncoding("scalar not reduced")
        return k

    def random_scalar(self, rng: Rng) -> int:
        return 1 + random_below(rng, ORDER - 1)


SECP256K1: Final = Secp256k1Group()
