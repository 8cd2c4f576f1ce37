"""FROST(Ed25519, SHA-512) ciphersuite constants and hash functions (RFC 9591 section 6.1).

contextString = "FROST-ED25519-SHA512-v1". H1..H5 exactly as the RFC; HDKG and HID are
ZF frost's extensions (DKG proof-of-knowledge challenge and identifier derivation), both
`SHA-512(contextString || tag || m)` reduced mod L like H1/H3.

Identifiers are non-zero scalars. `identifier_from_int(n)` is ZF frost's `Identifier::try_from(n)`
(the scalar n, 1 <= n <= 65535); `derive_identifier(s)` is ZF frost's `Identifier::derive(s)`
= HID(s). Identifiers sort by their integer value (ZF frost orders by the big-endian scalar),
which is the order every list in the RFC uses.
"""

from __future__ import annotations

import hashlib
import zlib

from enclave.errors import InvalidParameters
from enclave.group.ed25519 import ED25519, ORDER, Ed25519Group

CONTEXT_STRING = b"FROST-ED25519-SHA512-v1"
GROUP: Ed25519Group = ED25519
# ZF frost serialization header: format version 0 || CRC-32 of the context string, big endian.
SUITE_ID = zlib.crc32(CONTEXT_STRING).to_bytes(4, "big")
HEADER = b"\x00" + SUITE_ID


def _h_scalar(*parts: bytes) -> int:
    return int.from_bytes(hashlib.sha512(b"".join(parts)).digest(), "little") % ORDER


def H1(m: bytes) -> int:  # the RFC's function names
    return _h_scalar(CONTEXT_STRING, b"rho", m)


def H2(m: bytes) -> int:
    # No context string: H2 is the RFC 8032 challenge, so signatures verify as plain Ed25519.
    return _h_scalar(m)


def H3(m: bytes) -> int:
    return _h_scalar(CONTEXT_STRING, b"nonce", m)


def H4(m: bytes) -> bytes:
    return hashlib.sha512(CONTEXT_STRING + b"msg" + m).digest()


def H5(m: bytes) -> bytes:
    return hashlib.sha512(CONTEXT_STRING + b"com" + m).digest()


def HDKG(m: bytes) -> int:
    return _h_scalar(CONTEXT_STRING, b"dkg", m)


def HID(m: bytes) -> int:
    return _h_scalar(CONTEXT_STRING, b"id", m)


def identifier_from_int(n: int) -> int:
    if not 1 <= n <= 0xFFFF:
        raise InvalidParameters("small identifiers are 1..65535")
    return n


def derive_identifier(s: bytes | str) -> int:
    ident = HID(s.encode() if isinstance(s, str) else bytes(s))
    if ident == 0:
        raise InvalidParameters("derived identifier is zero")
    return ident


def encode_identifier(ident: int) -> bytes:
    return ident.to_bytes(32, "little")
