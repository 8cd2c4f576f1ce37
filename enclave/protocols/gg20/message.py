"""The digest a GG20 signature signs, computed in the enclave from the message and a named rule.

A presignature fixes the nonce before the message is known, so the enclave must see what it
signs: with a named rule the request carries the message and the enclave hashes it here; RAW
takes the request's 32 bytes as the digest (a "bare digest", whose message nobody in the enclave
saw; the engine refuses it with a presignature unless configured otherwise). The rules
themselves are door.digests' (the host makes the same digests):

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

from enum import Enum
from typing import Final

from door.digests import message_digest
from enclave.errors import BadInput

DIGEST_LEN: Final = 32
MAX_MESSAGE: Final = 64 * 1024


class MessageHash(Enum):
    RAW = "raw"
    SHA256 = "sha256"
    DOUBLE_SHA256 = "double-sha256"
    KECCAK256 = "keccak256"
    ETH_PERSONAL = "eth-personal-message"


def digest_of(rule: MessageHash, message: bytes) -> bytes:
    """The 32-byte digest `rule` makes of `message` (BadInput for a wrong length)."""
    if rule is MessageHash.RAW:
        if len(message) != DIGEST_LEN:
            raise BadInput("a bare digest (message_hash RAW) must be exactly 32 bytes")
        return bytes(message)
    if len(message) > MAX_MESSAGE:
        raise BadInput(f"message must be at most {MAX_MESSAGE} bytes")
    return message_digest(rule.value, message)
