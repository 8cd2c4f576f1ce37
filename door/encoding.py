"""The byte encodings both wings write: big-endian fixed-width integers and 4-byte length prefixes.

One module so that a length prefix means the same thing in every layout that uses one (sealed-blob
associated data, key ids, approval statements, HMAC envelopes): `lp32(data)` is
`u32(len(data)) || data`. Pure functions of their input; they import nothing from either wing.
"""

from __future__ import annotations

import struct

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")


def u32(value: int) -> bytes:
    """`value` as 4 big-endian bytes (struct.error if it does not fit)."""
    return _U32.pack(value)


def u64(value: int) -> bytes:
    """`value` as 8 big-endian bytes (struct.error if it does not fit)."""
    return _U64.pack(value)


def lp32(data: bytes) -> bytes:
    """`data` prefixed with its length as a 4-byte big-endian integer."""
    return _U32.pack(len(data)) + data


def lp64(data: bytes) -> bytes:
    """`data` prefixed with its length as an 8-byte big-endian integer."""
    return _U64.pack(len(data)) + data
