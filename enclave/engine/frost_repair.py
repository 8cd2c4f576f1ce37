"""FROST share repair in the engine: SESSION_KIND_REPAIR (enclave.protocols.frost.repair_rounds).

The start names the key (key_id) and describes it as the key's own: party_ids in the key's
order, threshold. repair_party_id is the party whose share is rebuilt, source_signers the
helpers (at least threshold parties of the key, not the repaired party). Session parties are the
helpers and the repaired party, each under its FROST identifier in the key (its 1-based
position in party_ids).

A helper brings its sealed share (and only a helper does). The repaired party brings none, but
source_public_key (the key as results show it), source_chain_code (empty for a key made without
one) and, in new_party_keys, its enclave identity key, which must be this enclave's: it signs the
repaired party's round-one message, so no other enclave (and no host) can stand in for it.
new_party_keys lists exactly the repaired party, at every party. Every party's view (the
protocol's digest of key, threshold, helpers and repaired party, plus the key id, every party
name, the listed key and the chain code here) must agree, or the session aborts naming nobody:
so the repaired party's key id and chain code are the helpers' sealed ones.

The result: the repaired party gets its sealed share of the SAME key_id (no new key: the share
is the one it lost, rebuilt); a helper finishes DONE with that key id and no sealed_share, its
own share untouched.

A helper asks a policy approval when a policy is configured: the repair hands the listed key's
holder the repaired party's share, so whoever decides that key decides who gets the share. The
approval ("repair", `door.digests.repair_digest` of the key's parties and threshold, the
helpers, the repaired party and its listed key, with the key id and the session id) makes that
the policy service's decision, as a signature is. Without a policy, the relay decides who the
repaired party is: a relay that lists its own key for it gets the share.
"""

from __future__ import annotations

import hashlib
from typing import Any

from door.digests import REPAIR_APPROVAL_HASH, repair_digest
from door.encoding import lp32
from enclave.crypto.rng import Rng
from enclave.engine import blobs
from enclave.engine.common import MAX_PARTIES, Prepared, check_party_list, invalid, only_kinds
from enclave.engine.frost_share import open_key, public_key_bytes, sealed_key_result
from enclave.engine.keyids import is_key_id
from enclave.engine.live import Parties, Phase, Plan
from enclave.errors import EnclaveError, LocalError, RequestRejected
from enclave.protocols.frost import derive
from enclave.protocols.frost.ciphersuite import Ciphersuite, identifier_from_int
from enclave.protocols.frost.keys import KeyPackage, PublicKeyPackage
from enclave.protocols.frost.repair_rounds import RepairSetup, repair_driver
from enclave.protocols.reshare_auth import P256_KEY_LEN
from enclave.sealing import Sealer
from enclave.tee.identity import EnclaveIdentity
from mpc.v1 import enclave_pb2 as pb

CONTEXT_TAG = b"mpc-signer/engine/repair/context/v1"


def _check_shape(request: pb.SessionStart) -> tuple[list[str], list[str], str]:
    """(party_ids, helpers, repaired party) after every rule that needs no sealed share."""
    only_kinds(request, {pb.SEALED_BLOB_KIND_KEY_SHARE})
    if request.message or request.derivation_path or request.presignature_id or request.taproot_merkle_root:
        raise invalid("a repair takes no message, derivation_path, presignature_id or taproot_merkle_root")
    if request.message_hash != pb.MESSAGE_HASH_UNSPECIFIED or request.result_recipient_key:
        raise invalid("a repair takes no message_hash or result_recipient_key")
    if request.source_party_ids or request.source_threshold:
        raise invalid("a repair keeps the key's parties and threshold: give them as party_ids and threshold")
    if not is_key_id(request.key_id):
        raise invalid("key_id must be 64 lowercase hex characters (the key whose share is repaired)")
    parties, helpers, r = list(request.party_ids), list(request.source_signers), request.repair_party_id
    check_party_list(parties, request.self_party_id)
    if len(parties) > MAX_PARTIES or not 2 <= request.threshold <= len(parties):
        raise invalid("threshold must be at least 2 and at most the number of party_ids")
    if r not in parties:
        raise invalid("repair_party_id must be one of party_ids")
    if len(set(helpers)) != len(helpers) or any(h not in parties or h == r for h in helpers):
        raise invalid("source_signers (the helpers) must be distinct parties of party_ids, not repair_party_id")
    if len(helpers) < request.threshold:
        raise invalid(f"a repair needs at least threshold ({request.threshold}) helpers in source_signers")
    if request.self_party_id != r and request.self_party_id not in helpers:
        raise invalid("self_party_id must be repair_party_id or one of source_signers")
    if set(request.new_party_keys) != {r} or len(request.new_party_keys[r]) != P256_KEY_LEN:
        raise invalid(f"new_party_keys must list exactly repair_party_id, with its P-256 key ({P256_KEY_LEN} bytes)")
    return parties, helpers, r


def _repaired_source(cs: Ciphersuite, request: pb.SessionStart) -> tuple[bytes, bytes]:
    """(shown key, chain code) from the request, for the repaired party (it holds nothing)."""
    if request.sealed_blobs:
        raise invalid("the repaired party brings no sealed share (only a helper does)")
    shown, chain_code = bytes(request.source_public_key), bytes(request.source_chain_code)
    want = 32 if cs.bip340 else cs.element_len
    if len(shown) != want:
        raise invalid(f"the repaired party needs source_public_key ({want} bytes)")
    if len(chain_code) not in (0, derive.CHAIN_CODE_LEN):
        raise invalid(f"source_chain_code must be {derive.CHAIN_CODE_LEN} bytes (empty: a key made without one)")
    try:
        cs.group.decode(b"\x02" + shown if cs.bip340 else shown)
    except EnclaveError:
        raise invalid("source_public_key is not a valid key of this protocol") from None
    return shown, chain_code


def _context(request: pb.SessionStart, shown: bytes, chain_code: bytes) -> bytes:
    r = request.repair_party_id
    parts = [request.key_id, *request.party_ids, "|", *request.source_signers, "|", r]
    body = b"".join(lp32(p.encode("utf-8")) for p in parts) + lp32(request.new_party_keys[r])
    return hashlib.sha256(lp32(CONTEXT_TAG) + body + lp32(shown) + lp32(chain_code)).digest()


def prepare_repair(
    sealer: Sealer, rng: Rng, cs: Ciphersuite, name: str, request: pb.SessionStart, identity: EnclaveIdentity
) -> Prepared:
    parties, helpers, r = _check_shape(request)
    me, threshold = request.self_party_id, request.threshold
    party_key = bytes(request.new_party_keys[r])
    source: tuple[KeyPackage, PublicKeyPackage] | None = None
    if me == r:
        if identity.public_key != party_key:
            raise RequestRejected(
                pb.ERROR_CODE_FAILED_PRECONDITION,
                "new_party_keys lists a key for the repaired party that is not this enclave's identity key",
            )
        shown, chain_code = _repaired_source(cs, request)
    else:
        if not any(b.kind == pb.SEALED_BLOB_KIND_KEY_SHARE for b in request.sealed_blobs):
            raise invalid("a helper needs its sealed share of the key")
        record, key, public = open_key(cs, sealer, request, name)
        if record.parties != tuple(parties) or record.threshold != threshold:
            raise invalid("party_ids and threshold must be the key's (party_ids in the key's order)")
        shown, chain_code = record.public_key, record.chain_code
        given_key, given_code = bytes(request.source_public_key), bytes(request.source_chain_code)
        if (given_key and given_key != shown) or (given_code and given_code != chain_code):
            raise invalid("source_public_key / source_chain_code do not match the sealed share's key")
        source = (key, public)
    index = {p: i + 1 for i, p in enumerate(parties)}
    session = Parties(me, {p: index[p] for p in [*helpers, r]})
    kid, context = request.key_id, _context(request, shown, chain_code)

    def finish(value: Any) -> pb.SessionResult:
        rebuilt, public = value
        assert isinstance(public, PublicKeyPackage) and (rebuilt is None or isinstance(rebuilt, KeyPackage))
        if public_key_bytes(cs, public.verifying_key) != shown:
            raise LocalError("repair ended with another key")  # the protocol checked it; never trust less
        if rebuilt is None:
            return pb.SessionResult(key_id=kid, public_key=shown, chain_code=chain_code)
        record = blobs.ShareRecord(name, kid, threshold, tuple(parties), index[r], shown, chain_code, b"")
        return sealed_key_result(sealer, cs, record, rebuilt, public)

    def build(deadline: float) -> Plan:
        setup = RepairSetup(
            cs,
            request.session_id.encode("utf-8"),
            session.self_index,
            tuple(identifier_from_int(index[h]) for h in helpers),
            identifier_from_int(index[r]),
            tuple(range(1, len(parties) + 1)),
            threshold,
            shown,
            party_key,
            rng,
            source,
            context,
            sign=identity.sign if me == r else None,
        )
        return Plan(Phase(repair_driver(setup), 0, finish), 3)

    if source is None:  # the repaired party gives nothing away
        return Prepared(session, build, key_id=kid)
    approved = repair_digest(parties, threshold, helpers, r, party_key)
    return Prepared(session, build, key_id=kid, approval_digest=approved, approval_hash=REPAIR_APPROVAL_HASH)
