"""The digest a GG20 signature signs, computed in the enclave from the message and a named rule.

A presignature fixes the nonce before the message is known, so the enclave must see what it
signs: with a named rule the request carries the message and the enclave hashes it here; RAW
takes the request's 32 bytes as the digest (a "bare digest", whose message nobody in the enclave
saw; the engine refuses it with a presignature unless configured otherwise).

    RAW            the 32-byte digest itself
    SHA256         SHA-256(message)
    DOUBLE_SHA256  SHA-256(SHA-256(message))                      (Bitcoin)
    KECCAK256      Keccak-256(message) (original Keccak padding, not SHA3-256; Ethereum)
    ETH_PERSONAL   Keccak-256("\\x19Ethereum Signed Message:\\n" || decimal len(message) || message)
                   (EIP-191 version 0x45, what `personal_sign` / `eth_sign` sign)

`MessageHash.value` is the rule's public name: it is what policy approvals and the signature's
re-randomizer bind (enclave.policy, enclave.protocols.gg20.sign).
"""

from __future__ import annotations

import hashlib
from enum import Enum
from typing import Final

from Crypto.Hash import keccak

from enclave.errors import BadInput

DIGEST_LEN: Final = 32
MAX_MESSAGE: Final = 64 * 1024
_ETH_PREFIX: Final = b"\x19Ethereum Signed Message:\n"


class MessageHash(Enum):
    RAW = "raw"
    SHA256 = "sha256"
    DOUBLE_SHA256 = "double-sha256"
    KECCAK256 = "keccak256"
    ETH_PERSONAL = "eth-personal-message"


def _keccak256(data: bytes) -> bytes:
    return keccak.new(digest_bits=256, data=data).digest()


def digest_of(rule: MessageHash, message: bytes) -> bytes:
    """The 32-byte digest `rule` makes of `message` (BadInput for a wrong length)."""
    if rule is MessageHash.RAW:
        if len(message) != DIGEST_LEN:
            raise BadInput("a bare digest (message_hash RAW) must be exactly 32 bytes")
        return bytes(message)
    if len(message) > MAX_MESSAGE:
        raise BadInput(f"message must be at most {MAX_MESSAGE} bytes")
    if rule is MessageHash.SHA256:
        return hashlib.sha256(message).digest()
    if rule is MessageHash.DOUBLE_SHA256:
        return hashlib.sha256(hashlib.sha256(message).digest()).digest()
    if rule is MessageHash.KECCAK256:
        return _keccak256(message)
    return _keccak256(_ETH_PREFIX + str(len(message)).encode("ascii") + message)
