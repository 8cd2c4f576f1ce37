"""FROST reshare in the engine: SESSION_KIND_RESHARE (enclave.protocols.frost.reshare).

The start names the source key (key_id) and describes it: source_party_ids (its ordered party
set), source_threshold, and source_signers, the old parties that deal (at least the source
threshold). party_ids, threshold and self_party_id describe the new key. A dealer brings its
sealed source share (and only a dealer does); a party new to the key brings source_public_key
and source_chain_code instead, and the protocol checks the dealers' contributions add up to that
key. Every party's view (the protocol's digest of key, dealers, receivers, thresholds, plus the
source key id, every party name and the chain code here) must agree, or the session aborts
naming nobody: a host that hands a new party a wrong chain code is caught there.

Session parties: the new party_ids in order, then the dealers not among them. FROST
identifiers: a dealer's is its position in source_party_ids, a receiver's its position in
party_ids (both 1-based).

The result: a receiver gets a new sealed share under `keyids.successor_key_id` (source id,
session id, new threshold, new parties, public key, digest of the new public key package) with
predecessor_key_id the source key; a dealer not in the new set finishes DONE with that key id
and no sealed_share. The source share is untouched.

Round one is authenticated (enclave.protocols.reshare_auth, the rules in reshare_common): a
dealer proves its source share, a party listed in new_party_keys signs with its key (this
enclave's identity key when it is the one listed). A dealer hands each receiver g_i(j), and
g_i(0) = lambda_i * s_i, so whoever holds the keys of t_new receivers learns this dealer's
share: with a policy configured a dealer asks an approval ("reshare",
`door.digests.reshare_digest` of the party sets, thresholds and new_party_keys, with the source
key id and the session id); without one the engine refuses a dealer a start that lists t_new or
more keys. A party new to the key risks nothing and asks none.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from door.digests import RESHARE_APPROVAL_HASH, reshare_digest
from enclave.crypto.rng import Rng
from enclave.engine import blobs
from enclave.engine.common import Prepared, invalid
from enclave.engine.frost_share import open_key, sealed_key_result
from enclave.engine.keyids import successor_key_id
from enclave.engine.live import Phase, Plan
from enclave.engine.reshare_common import check_shape, listed_keys, session_parties, view_context
from enclave.errors import EnclaveError, LocalError
from enclave.protocols.frost import derive, wire
from enclave.protocols.frost.ciphersuite import Ciphersuite, identifier_from_int
from enclave.protocols.frost.keys import KeyPackage, PublicKeyPackage
from enclave.protocols.frost.reshare_rounds import ReshareSetup, reshare_driver
from enclave.sealing import Sealer
from enclave.tee.identity import EnclaveIdentity
from mpc.v1 import enclave_pb2 as pb


def _source_of_new_party(cs: Ciphersuite, request: pb.SessionStart) -> tuple[bytes, bytes, bytes]:
    """(verifying key encoding, shown key, chain code) from the request, for a party that holds
    no share."""
    shown, chain_code = bytes(request.source_public_key), bytes(request.source_chain_code)
    want = 32 if cs.bip340 else cs.element_len
    if len(shown) != want:
        raise invalid(f"a party new to the key needs source_public_key ({want} bytes)")
    if len(chain_code) not in (0, derive.CHAIN_CODE_LEN):
        raise invalid(f"source_chain_code must be {derive.CHAIN_CODE_LEN} bytes (empty: a key made without one)")
    # Taproot keys are shown x-only; the protocol compares x-only for that suite, and the new key
    # package takes the dealers' summed key with its real parity.
    encoding = b"\x02" + shown if cs.bip340 else shown
    try:
        cs.group.decode(encoding)
    except EnclaveError:
        raise invalid("source_public_key is not a valid key of this protocol") from None
    return encoding, shown, chain_code


@dataclass(frozen=True)
class _Source:
    verifying_key: bytes  # its encoding (a party new to a Taproot key: even-y guess, see reshare_rounds)
    shown: bytes  # as the API shows it (SessionResult.public_key)
    chain_code: bytes
    share: tuple[KeyPackage, PublicKeyPackage] | None = field(default=None, repr=False)


def _dealer_source(cs: Ciphersuite, sealer: Sealer, name: str, request: pb.SessionStart) -> _Source:
    if not any(b.kind == pb.SEALED_BLOB_KIND_KEY_SHARE for b in request.sealed_blobs):
        raise invalid("a party of source_signers needs its sealed share of the source key")
    record, key, public = open_key(cs, sealer, request, name)
    if record.parties != tuple(request.source_party_ids):
        raise invalid("source_party_ids must be the source key's parties, in the key's order")
    if record.threshold != request.source_threshold:
        raise invalid(f"source_threshold is not the source key's threshold ({record.threshold})")
    given_key, given_code = bytes(request.source_public_key), bytes(request.source_chain_code)
    if (given_key and given_key != record.public_key) or (given_code and given_code != record.chain_code):
        raise invalid("source_public_key / source_chain_code do not match the sealed share's key")
    return _Source(key.verifying_key, record.public_key, record.chain_code, (key, public))


def prepare_reshare(
    sealer: Sealer, rng: Rng, cs: Ciphersuite, name: str, request: pb.SessionStart, identity: EnclaveIdentity
) -> Prepared:
    check_shape(request)
    me, old, new = request.self_party_id, tuple(request.source_party_ids), tuple(request.party_ids)
    dealers = list(request.source_signers)
    if me in dealers:
        src_key = _dealer_source(cs, sealer, name, request)
    elif request.sealed_blobs:
        raise invalid("only a party of source_signers brings a sealed share (this party deals nothing)")
    else:
        src_key = _Source(*_source_of_new_party(cs, request))
    verifying_key, shown, chain_code, source = src_key.verifying_key, src_key.shown, src_key.chain_code, src_key.share
    parties = session_parties(request)
    ix = parties.index
    keys = listed_keys(request, parties, identity.public_key)
    dealer_ids = {ix[d]: identifier_from_int(old.index(d) + 1) for d in dealers}
    receiver_ids = {ix[p]: identifier_from_int(i + 1) for i, p in enumerate(new)}
    sid, src, threshold = request.session_id, request.key_id, request.threshold
    context = view_context(request, shown, chain_code)

    def finish(value: Any) -> pb.SessionResult:
        new_key, new_public = value
        assert isinstance(new_public, PublicKeyPackage) and (new_key is None or isinstance(new_key, KeyPackage))
        if (new_public.verifying_key[1:] if cs.bip340 else new_public.verifying_key) != shown:
            raise LocalError("reshare changed the public key")  # the protocol checked the sum; never trust less
        digest = hashlib.sha256(wire.encode_public_key_package(cs, new_public)).digest()
        kid = successor_key_id(name, src, sid, threshold, new, shown, digest)
        if kid == src:
            raise LocalError("a reshare must make a new key id")  # a hash collision, never expected
        if new_key is None:
            return pb.SessionResult(key_id=kid, public_key=shown, chain_code=chain_code, predecessor_key_id=src)
        record = blobs.ShareRecord(name, kid, threshold, new, new.index(me) + 1, shown, chain_code, b"")
        result = sealed_key_result(sealer, cs, record, new_key, new_public)
        result.predecessor_key_id = src
        return result

    def build(deadline: float) -> Plan:
        setup = ReshareSetup(
            cs,
            sid.encode("utf-8"),
            parties.self_index,
            dealer_ids,
            receiver_ids,
            verifying_key,
            request.source_threshold,
            threshold,
            rng,
            source,
            context,
            new_party_keys=keys,
            sign=identity.sign if me in request.new_party_keys else None,
        )
        return Plan(Phase(reshare_driver(setup), 0, finish), 2)

    if source is None:  # a party new to the key gives nothing away
        return Prepared(parties, build, key_id=src)
    approved = reshare_digest(old, request.source_threshold, dealers, new, threshold, request.new_party_keys)
    return Prepared(parties, build, key_id=src, approval_digest=approved, approval_hash=RESHARE_APPROVAL_HASH)
