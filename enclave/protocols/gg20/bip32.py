"""Non-hardened BIP32 public derivation (CKDpub) for a threshold key.

A threshold key has no single private key, so only non-hardened children exist: for index
i < 2^31, I = HMAC-SHA512(chain code, ser_P(parent) || ser_32(i)), the child key is
parent + I_L·G and the child chain code is I_R. The sum of the I_L along a path is the
`tweak`: the signers add tweak·k_i to their χ_i so the signature verifies under the child
key (enclave.protocols.gg20.sign). Indices >= 2^31 (hardened) are refused. BIP32's
"I_L >= n or identity child: skip to the next index" case is refused too (BadInput), so a
path always names exactly the key it says.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from enclave.errors import BadInput
from enclave.group.secp256k1 import ORDER, Point, Secp256k1Group

HARDENED = 1 << 31


@dataclass(frozen=True)
class Derived:
    public_key: Point
    chain_code: bytes
    tweak: int  # child = parent + tweak·G


def parse_path(path: str) -> tuple[int, ...]:
    """'m/0/1/2' -> (0, 1, 2); hardened markers (', h) are refused."""
    parts = path.strip().split("/")
    if not parts or parts[0] != "m":
        raise BadInput("derivation path must start with m")
    out = []
    for part in parts[1:]:
        if not (part.isascii() and part.isdigit()):
            raise BadInput("only non-hardened numeric path components are allowed")
        out.append(int(part))
    return tuple(out)


def derive(group: Secp256k1Group, public_key: Point, chain_code: bytes, path: tuple[int, ...]) -> Derived:
    if len(chain_code) != 32:
        raise BadInput("chain code must be 32 bytes")
    key, code, tweak = public_key, chain_code, 0
    for index in path:
        if not 0 <= index < HARDENED:
            raise BadInput("hardened or out-of-range index")
        digest = hmac.new(code, group.encode(key) + index.to_bytes(4, "big"), hashlib.sha512).digest()
        il = int.from_bytes(digest[:32], "big")
        if il >= ORDER:
            raise BadInput("derivation index yields an invalid key")
        key = group.add(key, group.base_mul(il))
        if group.is_identity(key):
            raise BadInput("derivation index yields an invalid key")
        code = digest[32:]
        tweak = (tweak + il) % ORDER
    return Derived(key, code, tweak)
