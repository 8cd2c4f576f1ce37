"""`SessionStart.policy_approval`: the PolicyApproval the host relays from the policy service.

Fields: version (2), expires_at (unix seconds), DER ECDSA P-256 signature (the policy service's
"signature", base64-decoded) over `enclave.policy.approval_message`. The
signed fields themselves (key id, hash rule, digest, derivation path, presignature id, session
id) are not carried: the enclave takes them from the request it is about to sign, with the digest
it computed itself, and rebuilds the approved message from them, so an approval for anything
else simply fails to verify.

The approved "digest" is, for GG20, the digest the enclave made from SessionStart.message by its
message_hash (the message itself for RAW), and for FROST SHA-256 of SessionStart.message (whose
message may be up to 64 KiB; the approval field is fixed at 32 bytes either way), with the rule
named "sha256". A Taproot signature with a script tree's merkle root is made under a key tweaked
by that root, so its digest covers both: SHA-256("mpc-signer/approval/taproot/v1" || root ||
message) (door.digests.frost_digest, which the host calls too). Version 1 approvals (no hash rule, no
presignature id) are refused with a message saying so.
"""

from __future__ import annotations

from typing import Final

from enclave.policy import Approval, ApprovalRejected, ApprovalSubject
from mpc.v1 import enclave_pb2 as pb

APPROVAL_VERSION: Final = 2
_MAX_SIGNATURE: Final = 80  # DER P-256 signatures are at most 72 bytes
V1_REFUSED: Final = (
    "approval format v1 is no longer accepted: the policy service must sign v2 approvals, which bind"
    " the message hash rule and the presignature id too"
)


def encode_approval(expires_at: int, signature: bytes) -> pb.PolicyApproval:
    return pb.PolicyApproval(version=APPROVAL_VERSION, expires_at=expires_at, signature=signature)


def decode_approval(approval: pb.PolicyApproval, subject: ApprovalSubject) -> Approval:
    if approval.ByteSize() == 0:
        raise ApprovalRejected("approval required")
    if approval.version == 1:
        raise ApprovalRejected(V1_REFUSED)
    if approval.version != APPROVAL_VERSION or not 1 <= len(approval.signature) <= _MAX_SIGNATURE:
        raise ApprovalRejected("malformed approval")
    return Approval(subject, approval.expires_at, bytes(approval.signature))
