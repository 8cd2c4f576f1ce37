"""What every reshare start has to satisfy, whatever the protocol (enclave/engine/frost_reshare.py,
gg20_reshare.py): the shape of the party sets and thresholds, the session's party numbering, and
the engine's part of the view every party must agree on.

Session parties: the new party_ids in order (so a receiver's session number is its new index),
then the dealers not among them, in source_signers order.

Who a party is: every party of party_ids is either a dealer (in source_signers: it proves its
round-one message with its share of the source key) or listed in new_party_keys with the P-256
key that signs its round-one message (enclave.protocols.reshare_auth), never both, never
neither. A listed party signs with this enclave's identity key, so its listed key must be that.
"""

from __future__ import annotations

import hashlib
import hmac

from door.encoding import lp32
from enclave.engine.common import MAX_PARTIES, PARTY_ID, invalid, only_kinds
from enclave.engine.keyids import is_key_id
from enclave.engine.live import Parties
from enclave.errors import InvalidEncoding, RequestRejected
from enclave.protocols.reshare_auth import decode_p256
from mpc.v1 import enclave_pb2 as pb

CONTEXT_TAG = b"mpc-signer/engine/reshare/context/v2"


def _party_list(ids: list[str], what: str) -> None:
    if not 2 <= len(ids) <= MAX_PARTIES:
        raise invalid(f"{what} must list 2..{MAX_PARTIES} parties")
    if any(not PARTY_ID.fullmatch(p) for p in ids):
        raise invalid(f"{what}: party ids must be 1-64 characters of [A-Za-z0-9._:-]")
    if len(set(ids)) != len(ids):
        raise invalid(f"{what} must be distinct")


def check_shape(request: pb.SessionStart) -> None:
    """Every rule that needs no sealed share."""
    only_kinds(request, {pb.SEALED_BLOB_KIND_KEY_SHARE})
    if request.message or request.derivation_path or request.presignature_id or request.taproot_merkle_root:
        raise invalid("a reshare takes no message, derivation_path, presignature_id or taproot_merkle_root")
    if request.message_hash != pb.MESSAGE_HASH_UNSPECIFIED or request.result_recipient_key:
        raise invalid("a reshare takes no message_hash or result_recipient_key")
    if not is_key_id(request.key_id):
        raise invalid("key_id must be 64 lowercase hex characters (the source key)")
    new, old, dealers = list(request.party_ids), list(request.source_party_ids), list(request.source_signers)
    _party_list(new, "party_ids")
    _party_list(old, "source_party_ids")
    if not 2 <= request.threshold <= len(new):
        raise invalid("threshold (the new key's) must be at least 2 and at most the number of party_ids")
    if not 2 <= request.source_threshold <= len(old):
        raise invalid("source_threshold must be at least 2 and at most the number of source_party_ids")
    if len(set(dealers)) != len(dealers) or any(d not in old for d in dealers):
        raise invalid("source_signers must be distinct parties of source_party_ids")
    if len(dealers) < request.source_threshold:
        raise invalid(f"source_signers needs at least source_threshold ({request.source_threshold}) parties")
    if request.self_party_id not in dealers and request.self_party_id not in new:
        raise invalid("self_party_id must be one of source_signers or party_ids")
    if len(set(new) | set(dealers)) > MAX_PARTIES:
        raise invalid(f"a reshare session has at most {MAX_PARTIES} parties")


def listed_keys(request: pb.SessionStart, parties: Parties, identity_key: bytes) -> dict[int, bytes]:
    """new_party_keys by session party number, after the rules above (INVALID_ARGUMENT;
    FAILED_PRECONDITION when this party is listed with a key that is not its identity key)."""
    new, dealers, keys = list(request.party_ids), set(request.source_signers), dict(request.new_party_keys)
    for p in sorted(keys):
        if p not in new:
            raise invalid(f"new_party_keys lists {p!r}, which is not one of party_ids")
        if p in dealers:
            raise invalid(f"{p!r} is a dealer (source_signers): it proves its share and takes no new_party_keys entry")
        try:
            decode_p256(keys[p])
        except InvalidEncoding:
            raise invalid(f"new_party_keys[{p!r}] is not a P-256 public key (SEC1 uncompressed, 65 bytes)") from None
    for p in new:
        if p not in dealers and p not in keys:
            raise invalid(f"{p!r} of party_ids is neither a dealer (source_signers) nor listed in new_party_keys")
    # One identity signs for one party: a key listed twice would hand one holder two shares while
    # the dealers count two parties (and a policy reading the digest two approvals' worth).
    holders: dict[bytes, str] = {}
    for p in sorted(keys):
        if keys[p] in holders:
            raise invalid(
                f"new_party_keys lists one key for both {holders[keys[p]]!r} and {p!r}: each party has its own"
            )
        holders[keys[p]] = p
    me = request.self_party_id
    if me in keys and not hmac.compare_digest(keys[me], identity_key):
        raise RequestRejected(
            pb.ERROR_CODE_FAILED_PRECONDITION, "new_party_keys[self_party_id] is not this enclave's identity key"
        )
    return {parties.index[p]: bytes(k) for p, k in keys.items()}


def session_parties(request: pb.SessionStart) -> Parties:
    new = list(request.party_ids)
    order = new + [d for d in request.source_signers if d not in new]
    return Parties(request.self_party_id, {p: i + 1 for i, p in enumerate(order)})


def view_context(request: pb.SessionStart, public_key: bytes, chain_code: bytes) -> bytes:
    parts = [request.key_id, *request.source_party_ids, "|", *request.source_signers, "|", *request.party_ids]
    body = b"".join(lp32(p.encode("utf-8")) for p in parts)
    # The listed keys too: parties handed different keys for one party abort naming nobody.
    keys = b"".join(lp32(p.encode("utf-8")) + lp32(k) for p, k in sorted(request.new_party_keys.items()))
    return hashlib.sha256(lp32(CONTEXT_TAG) + body + lp32(public_key) + lp32(chain_code) + keys).digest()
