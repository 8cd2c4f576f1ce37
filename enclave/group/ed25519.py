"""Ed25519's prime-order subgroup on libsodium (PyNaCl bindings), implementing `Group`.

Elements are the 32-byte canonical encodings themselves (`bytes`), because libsodium's point
API works on encodings: an element can only come from libsodium's arithmetic or from
`decode`, so every element is canonical and `encode` is free. Scalars are ints mod `order`
(L = 2^252 + 27742317777372353535851937790883648493), encoded 32 bytes little-endian.

Validation contract:
- `decode` is strict: exact length, canonical (y < p; see the comment in `decode`), on the
  curve, in the prime-order subgroup, and not the identity (libsodium's
  `crypto_core_ed25519_is_valid_point` rejects small-order points, which include the identity).
  Use `decode_allow_identity` only where a spec permits the identity. `decode_mul(data, k)`
  validates and multiplies in one libsodium call, for a peer point whose only use is k*P.
  `decode_trusted` skips the curve and subgroup checks and is only for points inside an
  enclave-sealed key share (authenticated by the sealing AEAD, validated when created); never
  for anything a peer or the host supplies in clear.
- libsodium's `crypto_core_ed25519_add` accepts any on-curve point, mixed order included, so
  the arithmetic here is only sound on elements that passed `decode` (or came from this class).
- libsodium's `crypto_scalarmult_ed25519*_noclamp` refuse a zero scalar, the identity and an
  identity result; `mul`/`base_mul` handle those cases explicitly so they return the identity
  instead of failing. No clamping: scalars are reduced mod L and used as they are.

Timing: libsodium's scalar multiplication is constant time; the Python-int scalar arithmetic
(reductions, additions) is not, which is the accepted limit of a Python implementation.
"""

from __future__ import annotations

from nacl.bindings import (
    crypto_core_ed25519_add,
    crypto_core_ed25519_is_valid_point,
    crypto_core_ed25519_sub,
    crypto_scalarmult_ed25519_base_noclamp,
    crypto_scalarmult_ed25519_noclamp,
)

from enclave.crypto.rng import Rng, random_below
from enclave.errors import InvalidEncoding

ORDER = (1 << 252) + 27742317777372353535851937790883648493
IDENTITY = b"\x01" + bytes(31)
_P = (1 << 255) - 19
_Y_MASK = (1 << 255) - 1  # the encoding without its sign bit: y
GENERATOR = bytes.fromhex("5866666666666666666666666666666666666666666666666666666666666666")


class Ed25519Group:
    """The Ed25519 prime-order group. Stateless; one instance may be shared freely."""

    name = "ed25519"
    order = ORDER
    scalar_len = 32
    element_len = 32

    def identity(self) -> bytes:
        return IDENTITY

    def generator(self) -> bytes:
        return GENERATOR

    def add(self, a: bytes, b: bytes) -> bytes:
        return crypto_core_ed25519_add(a, b)

    def sub(self, a: bytes, b: bytes) -> bytes:
        return crypto_core_ed25519_sub(a, b)

    def neg(self, a: bytes) -> bytes:
        return crypto_core_ed25519_sub(IDENTITY, a)

    def mul(self, p: bytes, k: int) -> bytes:
        k %= ORDER
        if k == 0 or p == IDENTITY:
            return IDENTITY
        # Non-zero k times a prime-order, non-identity point is never the identity, so
        # libsodium's identity-result refusal cannot trigger here.
        return crypto_scalarmult_ed25519_noclamp(k.to_bytes(32, "little"), p)

    def decode_mul(self, data: bytes, k: int) -> bytes:
        """k * decode(data) in one step, for peer points used once, in a multiplication.

        libsodium's scalarmult refuses exactly what `decode` refuses (y >= p, small order
        including the identity, off-curve, outside the prime-order subgroup), so the separate
        validity check (a second multiplication by L) is skipped. Raises `InvalidEncoding`.
        """
        k %= ORDER
        if k == 0:
            self.decode(data)
            return IDENTITY
        if not isinstance(data, bytes) or len(data) != 32:
            raise InvalidEncoding("ed25519 element must be 32 bytes")
        try:
            return crypto_scalarmult_ed25519_noclamp(k.to_bytes(32, "little"), data)
        except (RuntimeError, ValueError, TypeError):
            raise InvalidEncoding("not a canonical ed25519 point of prime order") from None

    def base_mul(self, k: int) -> bytes:
        k %= ORDER
        if k == 0:
            return IDENTITY
        return crypto_scalarmult_ed25519_base_noclamp(k.to_bytes(32, "little"))

    def sum(self, points: list[bytes]) -> bytes:
        """Sum of elements (identity for an empty list)."""
        if not points:
            return IDENTITY
        acc = points[0]
        for p in points[1:]:
            acc = crypto_core_ed25519_add(acc, p)
        return acc

    def eq(self, a: bytes, b: bytes) -> bool:
        # Encodings are canonical, so equality of encodings is equality of points.
        return a == b

    def is_identity(self, a: bytes) -> bool:
        return a == IDENTITY

    def encode(self, p: bytes) -> bytes:
        return p

    def decode(self, data: bytes) -> bytes:
        """Strict decode of a peer-supplied point; raises `InvalidEncoding` (identity included)."""
        if not isinstance(data, bytes | bytearray | memoryview) or len(data) != 32:
            raise InvalidEncoding("ed25519 element must be 32 bytes")
        data = bytes(data)
        # libsodium checks y < p, rejects the small-order blacklist with the sign bit masked (so
        # the identity, x = 0 with sign bit set, and every torsion point), decodes on the curve
        # and checks L*P == identity. The only non-canonical encodings besides y >= p are of
        # small order, so this is exactly "canonical, prime order, not the identity".
        if not crypto_core_ed25519_is_valid_point(data):
            raise InvalidEncoding("not a canonical ed25519 point of prime order")
        return data

    def decode_trusted(self, data: bytes) -> bytes:
        """Structural decode of a point this enclave encoded and got back authenticated.

        NOT for peer data: no curve or subgroup check (the expensive part of `decode`). Its one
        caller is the sealed key-share reader (`frost.wire._SealedReader`): those bytes were
        authenticated by the sealing AEAD (`enclave.sealing`), and their points were validated,
        or computed from validated points, when the DKG produced them.

        Refuses what is malformed by structure alone: wrong type or length, y >= p, and y = 1
        or y = p - 1 whatever the sign bit (the identity, the point of order 2, and their
        non-canonical x = 0 encodings). `decode` refuses all of these too; what only `decode`
        catches (off-curve or off-subgroup points) the DKG cannot have produced.
        """
        if not isinstance(data, bytes) or len(data) != 32:
            raise InvalidEncoding("ed25519 element must be 32 bytes")
        y = int.from_bytes(data, "little") & _Y_MASK
        if y >= _P or y == 1 or y == _P - 1:
            raise InvalidEncoding("not a canonical ed25519 point of prime order")
        return data

    def decode_allow_identity(self, data: bytes) -> bytes:
        """As `decode`, but the canonical identity encoding is accepted."""
        if bytes(data) == IDENTITY:
            return IDENTITY
        return self.decode(data)

    def encode_scalar(self, k: int) -> bytes:
        return (k % ORDER).to_bytes(32, "little")

    def decode_scalar(self, data: bytes) -> int:
        if not isinstance(data, bytes | bytearray | memoryview) or len(data) != 32:
            raise InvalidEncoding("ed25519 scalar must be 32 bytes")
        k = int.from_bytes(data, "little")
        if k >= ORDER:
            raise InvalidEncoding("ed25519 scalar not reduced")
        return k

    def random_scalar(self, rng: Rng) -> int:
        return random_below(rng, ORDER - 1) + 1


ED25519 = Ed25519Group()
