"""The signing-policy step of a SIGN session on the host: fetch an approval, hand it to the enclave.

Runs in the session's prepare hook (signer/api/operations.py), after the key lookup and before
any presignature is consumed or the enclave sees the start. The host only relays: the enclave
rebuilds the approved message from the request it is about to sign and checks the policy key's
signature, expiry and single use itself (enclave/policy.py), so what this module does wrong can
make the enclave refuse, never make it sign something unapproved.

Errors become the API's: a refusal PERMISSION_DENIED, a callback that does not answer in time
DEADLINE_EXCEEDED, anything else UNAVAILABLE, each with the policy client's message.
"""

from __future__ import annotations

import hashlib
import struct
from typing import Final

from mpc.v1 import enclave_pb2 as epb
from signer.errors import DeadlineExceeded, PermissionDenied, Unavailable
from signer.policy_client import ApprovalGrant, PolicyClient, PolicyRejected, PolicyTimeout, PolicyUnavailable

# SessionStart.policy_approval: u8 version || u64 expires_at || DER signature (docs/nitro.md §7).
APPROVAL_VERSION: Final = 1


# Taproot with a script tree: the key is tweaked by the merkle root, so the approval covers both
# (enclave/engine/approval.py computes the same bytes).
TAPROOT_APPROVAL_TAG: Final = b"mpc-signer/approval/taproot/v1"


def approval_digest(start: epb.SessionStart) -> bytes:
    """The 32-byte "digest" an approval covers: the digest itself for GG20, SHA-256 of the
    message for FROST (whose message may be long), SHA-256(tag || merkle root || message) for a
    Taproot signature under a script tree's merkle root."""
    if start.protocol == epb.PROTOCOL_GG20_SECP256K1:
        return bytes(start.message)
    if start.taproot_merkle_root:
        return hashlib.sha256(TAPROOT_APPROVAL_TAG + start.taproot_merkle_root + start.message).digest()
    return hashlib.sha256(start.message).digest()


def encode_approval(grant: ApprovalGrant) -> bytes:
    return bytes([APPROVAL_VERSION]) + struct.pack(">Q", grant.expires_at) + grant.signature


async def attach_approval(policy: PolicyClient, start: epb.SessionStart) -> None:
    """Ask the policy callback about this SIGN start and put its approval into the start."""
    try:
        grant = await policy.request_approval_async(
            key_id=start.key_id,
            digest=approval_digest(start),
            derivation_path=list(start.derivation_path),
            session_id=start.session_id,
        )
    except PolicyRejected as exc:
        raise PermissionDenied(str(exc)) from None
    except PolicyTimeout as exc:
        raise DeadlineExceeded(str(exc)) from None
    except PolicyUnavailable as exc:
        raise Unavailable(str(exc)) from None
    if not 0 <= grant.expires_at < 2**64:
        raise Unavailable("policy service approval has an out-of-range expires_at")
    start.policy_approval = encode_approval(grant)
