"""hash_to_field with expand_message_xmd(SHA-256) (RFC 9380 sections 5.2 and 5.3.1), count 1.

FROST(secp256k1, SHA-256) defines H1, H2, H3 (and ZF frost HDKG, HID) as this function with
DST = contextString || tag, L = 48 bytes (RFC 9591 section 6.5): the 48 uniform bytes are read
big-endian and reduced mod the group order, which leaves a bias below 2^-128.

    expand_message_xmd(msg, DST, 48):
        DST'  = DST || I2OSP(len(DST), 1)
        b_0   = SHA-256(Z_pad(64 zero bytes) || msg || I2OSP(48, 2) || 0x00 || DST')
        b_1   = SHA-256(b_0 || 0x01 || DST')
        b_2   = SHA-256((b_0 XOR b_1) || 0x02 || DST')
        out   = b_1 || b_2[:16]

The zero block is absorbed once into a SHA-256 state that every call copies (hashlib's
`copy`), which saves one compression per call on the signing path.
"""

from __future__ import annotations

import hashlib
from typing import Final

from enclave.errors import InvalidParameters

_L: Final = 48
_ZERO_BLOCK_STATE: Final = hashlib.sha256(bytes(64))
_LEN_SUFFIX: Final = _L.to_bytes(2, "big") + b"\x00"


def expand_message_xmd_sha256(msg: bytes, dst: bytes, length: int = _L) -> bytes:
    if not 1 <= len(dst) <= 255:
        raise InvalidParameters("DST must be 1..255 bytes")
    if length != _L:
        raise InvalidParameters("only the 48-byte expansion FROST uses is implemented")
    dst_prime = dst + bytes([len(dst)])
    h0 = _ZERO_BLOCK_STATE.copy()
    h0.update(msg)
    h0.update(_LEN_SUFFIX)
    h0.update(dst_prime)
    b0 = h0.digest()
    b1 = hashlib.sha256(b0 + b"\x01" + dst_prime).digest()
    mixed = (int.from_bytes(b0, "big") ^ int.from_bytes(b1, "big")).to_bytes(32, "big")
    b2 = hashlib.sha256(mixed + b"\x02" + dst_prime).digest()
    return b1 + b2[:16]


def hash_to_scalar(msg: bytes, dst: bytes, order: int) -> int:
    """hash_to_field(msg, 1) into Z/order (RFC 9380 section 5.2 with m = 1, L = 48)."""
    return int.from_bytes(expand_message_xmd_sha256(msg, dst), "big") % order
