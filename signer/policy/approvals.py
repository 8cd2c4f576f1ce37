"""The signing-policy step of a SIGN session on the host (and of a reshare's dealer or a repair's
helper, which give a share's worth away): fetch an approval, hand it to the enclave.

Runs in the session's prepare hook (signer/api/operations.py), after the key lookup and before
any presignature is consumed or the enclave sees the start. The host only relays: the enclave
rebuilds the approved message from the request it is about to sign, with the digest it computes
itself from the message, and checks the policy key's signature, expiry and single use itself
(enclave/policy.py), so what this module does wrong can make the enclave refuse, never make it
sign something unapproved.

What an approval names (version 2): key id, hash rule, digest, derivation path, presignature id
(empty without one), session id. The host computes the digest too, with the rules the
enclave uses (door/digests.py), for the policy request and the audit record;
a policy service should recompute it from the message it is sent.

Errors become the API's: a refusal PERMISSION_DENIED, a callback that does not answer in time
DEADLINE_EXCEEDED, anything else UNAVAILABLE, each with the policy client's message.
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

from door.digests import (
    FROST_APPROVAL_HASH,
    REPAIR_APPROVAL_HASH,
    RESHARE_APPROVAL_HASH,
    frost_digest,
    message_digest,
    repair_preimage,
    reshare_preimage,
)
from mpc.v1 import enclave_pb2 as epb
from signer.errors import DeadlineExceeded, PermissionDenied, Unavailable
from signer.policy.client import (
    ApprovalGrant,
    ApprovalRequest,
    PolicyClient,
    PolicyRejected,
    PolicyTimeout,
    PolicyUnavailable,
)

# SessionStart.policy_approval: a PolicyApproval {version, expires_at, DER signature} (docs/nitro.md §7).
APPROVAL_VERSION: Final = 2

# The rule names approvals bind (the enclave's MessageHash values). FROST approvals cover
# SHA-256 of the message, named "sha256".
HASH_NAMES: Final[dict[int, str]] = {
    epb.MESSAGE_HASH_UNSPECIFIED: "raw",
    epb.MESSAGE_HASH_RAW: "raw",
    epb.MESSAGE_HASH_SHA256: "sha256",
    epb.MESSAGE_HASH_DOUBLE_SHA256: "double-sha256",
    epb.MESSAGE_HASH_KECCAK256: "keccak256",
    epb.MESSAGE_HASH_ETH_PERSONAL: "eth-personal-message",
}


def signed_digest(start: epb.SessionStart) -> tuple[str, bytes]:
    """(hash rule name, 32-byte digest) of a validated SIGN start: what an approval covers and the
    audit records. GG20: the digest the enclave will sign; FROST: SHA-256 of the message (whose
    message may be long), SHA-256(tag || merkle root || message) for a Taproot signature under a
    script tree's merkle root. A RESHARE start (a dealer's): "reshare" and `reshare_digest` of its
    party sets, thresholds and new_party_keys, as the enclave makes it. A REPAIR start (a
    helper's): "repair" and `repair_digest` of the key's parties and threshold, the helpers, the
    repaired party and the key listed for it."""
    if start.kind in (epb.SESSION_KIND_REPAIR, epb.SESSION_KIND_RESHARE):
        # door.digests' repair_digest / reshare_digest: SHA-256 of these bytes, as the enclave makes it.
        name, preimage = _share_preimage(start)
        return name, hashlib.sha256(preimage).digest()
    message = bytes(start.message)
    if start.protocol != epb.PROTOCOL_GG20_SECP256K1:
        return FROST_APPROVAL_HASH, frost_digest(message, start.taproot_merkle_root)
    name = HASH_NAMES[start.message_hash]
    return name, message_digest(name, message)


def _share_fields(start: epb.SessionStart) -> tuple[Any, ...]:
    if start.kind == epb.SESSION_KIND_REPAIR:
        r = start.repair_party_id
        return (start.party_ids, start.threshold, start.source_signers, r, start.new_party_keys[r])
    return (
        start.source_party_ids,
        start.source_threshold,
        start.source_signers,
        start.party_ids,
        start.threshold,
        start.new_party_keys,
    )


def _share_preimage(start: epb.SessionStart) -> tuple[str, bytes]:
    """A reshare dealer's or a repair helper's approval: its name and the bytes its digest hashes
    (door.digests), which the policy service is sent as the message to read and rehash."""
    if start.kind == epb.SESSION_KIND_REPAIR:
        return REPAIR_APPROVAL_HASH, repair_preimage(*_share_fields(start))
    return RESHARE_APPROVAL_HASH, reshare_preimage(*_share_fields(start))


def approval_request(start: epb.SessionStart) -> ApprovalRequest:
    name, digest = signed_digest(start)
    shared = start.kind in (epb.SESSION_KIND_REPAIR, epb.SESSION_KIND_RESHARE)
    return ApprovalRequest(
        key_id=start.key_id,
        message_hash=name,
        message=_share_preimage(start)[1] if shared else bytes(start.message),
        digest=digest,
        derivation_path=tuple(start.derivation_path),
        presignature_id=start.presignature_id,
        session_id=start.session_id,
    )


def encode_approval(grant: ApprovalGrant) -> epb.PolicyApproval:
    return epb.PolicyApproval(version=APPROVAL_VERSION, expires_at=grant.expires_at, signature=grant.signature)


async def attach_approval(policy: PolicyClient, start: epb.SessionStart) -> None:
    """Ask the policy callback about this SIGN start and put its approval into the start."""
    try:
        grant = await policy.request_approval_async(approval_request(start))
    except PolicyRejected as exc:
        raise PermissionDenied(str(exc)) from None
    except PolicyTimeout as exc:
        raise DeadlineExceeded(str(exc)) from None
    except PolicyUnavailable as exc:
        raise Unavailable(str(exc)) from None
    if not 0 <= grant.expires_at < 2**64:
        raise Unavailable("policy service approval has an out-of-range expires_at")
    start.policy_approval.CopyFrom(encode_approval(grant))
