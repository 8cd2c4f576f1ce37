"""`SessionStart.policy_approval`: the bytes the host relays from the policy service.

Encoding: u8 version (1) || u64 big-endian expires_at (unix seconds) || DER ECDSA P-256 signature
(the policy service's "signature", base64-decoded). The other signed fields (key id, digest,
derivation path, session id) are not carried: the enclave takes them from the request it is
about to sign and rebuilds `enclave.policy.approval_message` from them, so an approval for
anything else simply fails to verify.

The approved "digest" is SessionStart.message for GG20 (the 32-byte digest) and SHA-256 of
SessionStart.message for FROST (whose message may be up to 64 KiB; the approval field is fixed
at 32 bytes either way). A Taproot signature with a script tree's merkle root is made under a
key tweaked by that root, so its digest covers both: SHA-256("mpc-signer/approval/taproot/v1"
|| root || message) (signer/approvals.py computes the same).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from typing import Final

from enclave.policy import Approval, ApprovalRejected

APPROVAL_VERSION: Final = 1
_MAX_SIGNATURE: Final = 80  # DER P-256 signatures are at most 72 bytes


def encode_approval(expires_at: int, signature: bytes) -> bytes:
    return bytes([APPROVAL_VERSION]) + struct.pack(">Q", expires_at) + signature


def decode_approval(
    data: bytes, *, key_id: str, digest: bytes, derivation_path: Sequence[int], session_id: str
) -> Approval:
    if not data:
        raise ApprovalRejected("approval required")
    if data[0] != APPROVAL_VERSION or not 10 <= len(data) <= 9 + _MAX_SIGNATURE:
        raise ApprovalRejected("malformed approval")
    (expires_at,) = struct.unpack(">Q", data[1:9])
    return Approval(key_id, bytes(digest), tuple(derivation_path), session_id, expires_at, bytes(data[9:]))


TAPROOT_APPROVAL_TAG: Final = b"mpc-signer/approval/taproot/v1"


def frost_digest(message: bytes, taproot_merkle_root: bytes = b"") -> bytes:
    if taproot_merkle_root:
        return hashlib.sha256(TAPROOT_APPROVAL_TAG + taproot_merkle_root + message).digest()
    return hashlib.sha256(message).digest()
