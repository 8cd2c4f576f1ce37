"""The digest rules, stated once: what a signature or a policy approval covers.

GG20 signs a 32-byte digest the enclave makes from the message by a named rule; the host makes
the same digest for the policy request and the audit record, and both call `message_digest`:

    raw                    the 32-byte digest itself
    sha256                 SHA-256(message)
    double-sha256          SHA-256(SHA-256(message))                      (Bitcoin)
    keccak256              Keccak-256(message) (original Keccak padding, not SHA3-256; Ethereum)
    eth-personal-message   Keccak-256("\\x19Ethereum Signed Message:\\n" || decimal len || message)
                           (EIP-191 version 0x45, what `personal_sign` / `eth_sign` sign)

A FROST approval covers SHA-256 of the message (which may be up to 64 KiB), named "sha256"; a
Taproot signature under a script tree's merkle root is made with a key tweaked by that root, so
its approval covers SHA-256("mpc-signer/approval/taproot/v1" || root || message): `frost_digest`.
Pure functions; the caller checks lengths (the enclave refuses a RAW digest that is not 32 bytes).
"""

from __future__ import annotations

import hashlib
from typing import Final

from Crypto.Hash import keccak

FROST_APPROVAL_HASH: Final = "sha256"
TAPROOT_APPROVAL_TAG: Final = b"mpc-signer/approval/taproot/v1"
_ETH_PREFIX: Final = b"\x19Ethereum Signed Message:\n"


def _keccak256(data: bytes) -> bytes:
    return keccak.new(digest_bits=256, data=data).digest()


def message_digest(rule: str, message: bytes) -> bytes:
    """The digest the rule named `rule` makes of `message` (ValueError for an unknown name)."""
    if rule == "raw":
        return bytes(message)
    if rule == "sha256":
        return hashlib.sha256(message).digest()
    if rule == "double-sha256":
        return hashlib.sha256(hashlib.sha256(message).digest()).digest()
    if rule == "keccak256":
        return _keccak256(message)
    if rule == "eth-personal-message":
        return _keccak256(_ETH_PREFIX + str(len(message)).encode("ascii") + message)
    raise ValueError(f"unknown message hash rule {rule!r}")


def frost_digest(message: bytes, taproot_merkle_root: bytes = b"") -> bytes:
    """What a FROST approval covers: SHA-256 of the message, or of tag || root || message."""
    if taproot_merkle_root:
        return hashlib.sha256(TAPROOT_APPROVAL_TAG + taproot_merkle_root + message).digest()
    return hashlib.sha256(message).digest()
