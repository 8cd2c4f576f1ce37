"""Checks every adapter applies to a SessionStart, and the key-share / signer-set mapping.

DKG: the party index of a party id is its 1-based position in SessionStart.party_ids (the order
is part of the request and the same at every party). SIGN/PRESIGN: party_ids is the signer set;
each signer's index is its position in the key's DKG party list, read from the sealed key share.
A signer set must be distinct party ids of the key, include this party and have at least
`threshold` members.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from enclave.engine import blobs
from enclave.engine.blobs import BlobInvalid, ShareRecord
from enclave.engine.keyids import is_key_id
from enclave.engine.live import Parties, Plan
from enclave.errors import InvalidEncoding, RequestRejected
from enclave.sealing import Binding, Sealer
from mpc.v1 import enclave_pb2 as pb

SESSION_ID: Final = re.compile(r"[A-Za-z0-9._:-]{1,128}")
PARTY_ID: Final = re.compile(r"[A-Za-z0-9._:-]{1,64}")
MAX_PARTIES: Final = 64
MAX_FROST_MESSAGE: Final = 64 * 1024
MAX_PATH_DEPTH: Final = 255
HARDENED: Final = 1 << 31


def invalid(message: str) -> RequestRejected:
    return RequestRejected(pb.ERROR_CODE_INVALID_ARGUMENT, message)


def blob_invalid(message: str) -> RequestRejected:
    return RequestRejected(pb.ERROR_CODE_SEALED_BLOB_INVALID, message)


@dataclass(frozen=True)
class Prepared:
    """A validated start: the party mapping, what a policy approval must cover, and the (heavy)
    construction of the first phase, run in a worker thread (unless `light`) with the session's
    deadline."""

    parties: Parties
    build: Callable[[float], Plan]
    key_id: str = ""
    approval_digest: bytes | None = None  # set for SIGN: the "digest" an approval covers
    approval_hash: str = ""  # set for SIGN: the name of the rule that made that digest
    # Every step is well under a millisecond (FROST signing, GG20 online signing with a
    # presignature): the engine runs them on its event loop, where a thread hop would cost more
    # than the step. Anything with Paillier or range proofs stays in the worker threads so the
    # loop keeps answering (pings, other sessions).
    light: bool = False
    # Awaited on the event loop before `build`, with the deadline: what the start must wait for
    # (GG20 pre-parameters), so the wait never holds a worker thread.
    wait: Callable[[float], Awaitable[None]] | None = None


def key_result(sealer: Sealer, record: ShareRecord) -> pb.SessionResult:
    """A new key's result: `record` (this party's share of the key it names) sealed durably under
    its binding, with the key's public values."""
    binding = Binding(key_id=record.key_id, protocol=record.protocol, party_id=record.index, purpose="share")
    return pb.SessionResult(
        key_id=record.key_id,
        public_key=record.public_key,
        chain_code=record.chain_code,
        sealed_share=pb.SealedBlob(
            kind=pb.SEALED_BLOB_KIND_KEY_SHARE,
            id=record.key_id,
            data=blobs.seal(sealer, record.encode(), binding),
            sealer_kind=sealer.kind,
        ),
    )


def check_party_list(party_ids: list[str], self_party_id: str) -> None:
    if not 2 <= len(party_ids) <= MAX_PARTIES:
        raise invalid(f"party_ids must list 2..{MAX_PARTIES} parties")
    for p in party_ids:
        if not PARTY_ID.fullmatch(p):
            raise invalid("party ids must be 1-64 characters of [A-Za-z0-9._:-]")
    if len(set(party_ids)) != len(party_ids):
        raise invalid("party_ids must be distinct")
    if self_party_id not in party_ids:
        raise invalid("self_party_id must be one of party_ids")


def dkg_parties(request: pb.SessionStart) -> Parties:
    parties = list(request.party_ids)
    check_party_list(parties, request.self_party_id)
    if not 2 <= request.threshold <= len(parties):
        raise invalid("threshold must be at least 2 and at most the number of parties")
    return Parties(request.self_party_id, {p: i + 1 for i, p in enumerate(parties)})


def only_kinds(request: pb.SessionStart, allowed: set[int]) -> None:
    if any(b.kind not in allowed for b in request.sealed_blobs):
        raise invalid("unexpected kind of sealed blob for this session")


def open_share(sealer: Sealer, request: pb.SessionStart, protocol: str) -> ShareRecord:
    """Unseal the request's key share (exactly one KEY_SHARE blob, id = key_id) and check it is
    this party's share of that key."""
    key_id = request.key_id
    if not is_key_id(key_id):
        raise invalid("key_id must be 64 lowercase hex characters")
    shares = [b for b in request.sealed_blobs if b.kind == pb.SEALED_BLOB_KIND_KEY_SHARE]
    if len(shares) != 1:
        raise invalid("exactly one sealed key share is required")
    if shares[0].id != key_id:
        raise invalid("the sealed key share's id is not key_id")
    try:
        index, plaintext = blobs.unseal(sealer, shares[0].data, key_id=key_id, protocol=protocol, purpose="share")
        record = ShareRecord.decode(plaintext)
    except (BlobInvalid, InvalidEncoding) as exc:
        raise blob_invalid(f"key share: {exc}") from None
    if record.index != index or record.key_id != key_id or record.protocol != protocol:
        raise blob_invalid("key share: record does not match its binding")
    if record.self_party != request.self_party_id:
        raise invalid("self_party_id is not the party this key share belongs to")
    return record


def signer_parties(request: pb.SessionStart, record: ShareRecord) -> Parties:
    signers = list(request.party_ids)
    check_party_list(signers, request.self_party_id)
    outsiders = [p for p in signers if p not in record.parties]
    if outsiders:
        raise invalid(f"party {outsiders[0]!r} is not a party of this key")
    if len(signers) < record.threshold:
        raise invalid(f"the signer set needs at least {record.threshold} parties")
    return Parties(request.self_party_id, {p: record.parties.index(p) + 1 for p in signers})
