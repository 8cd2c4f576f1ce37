"""Signing policy enforced where the key lives: no signature share without a fresh approval.

When a policy key is configured, the enclave releases a signature share only for a request that
carries an approval: a P-256 ECDSA (SHA-256) signature by the policy key over
`approval_message(subject, expires_at)`, version 2, which binds everything that decides what is
signed: the key id, the hash rule and the digest it made (the enclave computed both from the
message it was given), the derivation path, the presignature id (empty when presigning and
signing run in one session) and the session id. The host fetches approvals from the operator's
policy service but cannot make one: it lacks the policy key, and the enclave checks every field
against the request it is about to sign, the expiry against its own clock, and that the approval
was not used before by this process. Version 1 approvals (which named neither the hash rule nor
the presignature) are refused.

The encoding is length-prefixed and starts with a domain tag, so an approval cannot be confused
with any other signature made by the same key or re-read with shifted field boundaries. A policy
service implements exactly this encoding (see docs/nitro.md).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from door.encoding import lp32, u32, u64
from enclave.errors import EnclaveError, InvalidParameters

APPROVAL_DOMAIN: Final = b"mpc-signer/policy-approval/v2"
MAX_APPROVAL_LIFETIME: Final = 600  # seconds; bounds how long the replay set must remember
_MAX_FIELD: Final = 1024
_MAX_PATH_DEPTH: Final = 255


class ApprovalRejected(EnclaveError):
    """No valid approval: the enclave will not sign. `reason` is a fixed, public word."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"signing approval rejected: {reason}")


@dataclass(frozen=True)
class ApprovalSubject:
    """What one signing request signs, as the enclave is about to sign it: the fields an approval
    must name exactly. `message_hash` is the rule's public name ("keccak256", "raw", ...:
    enclave.protocols.gg20.message.MessageHash values; "sha256" for FROST, whose digest here is
    SHA-256 of the message); `presignature_id` is empty when no presignature is used."""

    key_id: str
    message_hash: str
    digest: bytes
    derivation_path: tuple[int, ...]
    presignature_id: str
    session_id: str


@dataclass(frozen=True)
class Approval:
    """An approval as carried from the host. The signed fields are repeated so a mismatch can be
    reported as such; they are compared with the request, never trusted on their own."""

    subject: ApprovalSubject
    expires_at: int
    signature: bytes = field(repr=False)


def approval_message(subject: ApprovalSubject, expires_at: int) -> bytes:
    """The exact bytes the policy key signs (all lengths u32 big-endian, lp(x) = length || x):
    lp(APPROVAL_DOMAIN) lp(key id) lp(message hash) lp(digest) lp(path: u32 indices)
    lp(presignature id) lp(session id) u64 expires_at."""
    if not 0 <= expires_at < 2**63:
        raise InvalidParameters("expiry out of range")
    path = subject.derivation_path
    if len(path) > _MAX_PATH_DEPTH or any(not 0 <= i < 2**32 for i in path):
        raise InvalidParameters("derivation path indices must be 32-bit unsigned, at most 255 levels")
    texts = [
        t.encode("utf-8") for t in (subject.key_id, subject.message_hash, subject.presignature_id, subject.session_id)
    ]
    if max(len(subject.digest), *(len(t) for t in texts)) > _MAX_FIELD:
        raise InvalidParameters("approval field too long")
    key_b, hash_b, presig_b, session_b = texts
    out = bytearray(lp32(APPROVAL_DOMAIN))
    out += lp32(key_b)
    out += lp32(hash_b)
    out += lp32(subject.digest)
    out += lp32(b"".join(u32(i) for i in path))
    out += lp32(presig_b)
    out += lp32(session_b)
    out += u64(expires_at)
    return bytes(out)


def load_policy_key(pem_or_der: bytes) -> ec.EllipticCurvePublicKey:
    """A P-256 public key from SubjectPublicKeyInfo PEM/DER or a SEC1 point."""
    try:
        if pem_or_der.startswith(b"-----BEGIN"):
            key = serialization.load_pem_public_key(pem_or_der)
        elif pem_or_der[:1] in (b"\x02", b"\x03", b"\x04"):
            key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), pem_or_der)
        else:
            key = serialization.load_der_public_key(pem_or_der)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise InvalidParameters("policy key is not a valid public key") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise InvalidParameters("policy key must be an ECDSA P-256 public key")
    return key


class PolicyVerifier:
    """Verifies approvals for one process. Remembers every approval it accepted until it expires,
    so each approval releases at most one signature share in this process' lifetime.

    That record is in memory, so after an enclave restart an approval an earlier boot accepted
    could be presented again within its lifetime. With `boot_fence`, the verifier refuses every
    approval that an earlier boot could have accepted: one accepted at time a had
    expires_at <= int(a) + max_lifetime (the lifetime check below works in whole seconds), and
    a < b, the boot time, so int(a) <= int(b): an approval expiring at or before
    int(b) + max_lifetime is refused as possibly older than this boot. (At or before: an earlier
    boot may have accepted one within the same second as this boot started.) The
    price: right after a start, approvals with a shorter lifetime than `max_lifetime` are refused
    until that much time has passed (give the policy service's approvals the full lifetime to
    avoid the gap). It relies on the enclave's clock never going back across boots.
    """

    def __init__(
        self,
        policy_key: ec.EllipticCurvePublicKey,
        clock: Callable[[], float] = time.time,
        max_lifetime: int = MAX_APPROVAL_LIFETIME,
        boot_fence: bool = False,
    ) -> None:
        if not isinstance(policy_key.curve, ec.SECP256R1):
            raise InvalidParameters("policy key must be P-256")
        self._key = policy_key
        self._clock = clock
        self._max_lifetime = max_lifetime
        self._used: dict[bytes, int] = {}  # hash of the signed message -> its expiry
        # Approvals expiring at or before this may have been accepted by an earlier boot.
        self._fence = int(clock()) + max_lifetime if boot_fence else -1

    def verify_approval(self, approval: Approval, subject: ApprovalSubject) -> None:
        """Return only if `approval` authorises signing exactly `subject`, now, once."""
        got = approval.subject
        if got.key_id != subject.key_id:
            raise ApprovalRejected("approval is for another key")
        if got.message_hash != subject.message_hash:
            raise ApprovalRejected("approval is for another message hash rule")
        if not hmac.compare_digest(got.digest, subject.digest):
            raise ApprovalRejected("approval is for another digest")
        if tuple(got.derivation_path) != tuple(subject.derivation_path):
            raise ApprovalRejected("approval is for another derivation path")
        if got.presignature_id != subject.presignature_id:
            raise ApprovalRejected("approval is for another presignature")
        if got.session_id != subject.session_id:
            raise ApprovalRejected("approval is for another session")
        try:
            message = approval_message(subject, approval.expires_at)
        except InvalidParameters:
            raise ApprovalRejected("approval fields out of range") from None
        try:
            self._key.verify(approval.signature, message, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError):
            raise ApprovalRejected("approval signature does not verify with the policy key") from None
        now = int(self._clock())
        if approval.expires_at <= now:
            raise ApprovalRejected("approval expired")
        if approval.expires_at > now + self._max_lifetime:
            raise ApprovalRejected("approval lifetime exceeds the allowed maximum")
        if approval.expires_at <= self._fence:
            raise ApprovalRejected("approval may predate this enclave boot")
        # Keyed on the signed message, not the signature: ECDSA signatures are malleable
        # ((r, s) and (r, n - s) both verify), the message is not.
        fingerprint = hashlib.sha256(message).digest()
        self._forget_expired(now)
        if fingerprint in self._used:
            raise ApprovalRejected("approval already used")
        self._used[fingerprint] = approval.expires_at

    def _forget_expired(self, now: int) -> None:
        # An expired approval is refused by the expiry check anyway, so it need not be remembered.
        for fingerprint in [f for f, exp in self._used.items() if exp <= now]:
            del self._used[fingerprint]
