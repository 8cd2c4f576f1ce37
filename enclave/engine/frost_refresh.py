"""FROST key refresh in the engine: SESSION_KIND_REFRESH (enclave.protocols.frost.refresh).

The start names the source key (key_id, its sealed share in sealed_blobs); party_ids must be the
key's parties in the key's order and threshold the key's, because a refresh keeps both (moving a
key is a reshare). The two rounds are the DKG's with zero-constant polynomials. The result is a
new key id (`keyids.successor_key_id`: the source id, this session id and the new verifying
shares) for the same public key and chain code, a new
sealed share, and predecessor_key_id = the source key. The source share is untouched: the host
keeps both until it retires the old key (README "Keys: lookup and retirement").

No policy approval is asked: a refresh signs nothing, and a host that plays every other party
learns no more of this party's new share than it knew of the old one (it knows the zero
shares it dealt, not this party's own).
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

from enclave.crypto.rng import Rng
from enclave.engine.common import Prepared, invalid, only_kinds
from enclave.engine.frost_share import open_key, sealed_key_result
from enclave.engine.keyids import successor_key_id
from enclave.engine.live import Parties, Phase, Plan
from enclave.errors import LocalError
from enclave.protocols.frost import wire
from enclave.protocols.frost.ciphersuite import Ciphersuite, identifier_from_int
from enclave.protocols.frost.keys import KeyPackage, PublicKeyPackage
from enclave.protocols.frost.rounds import DkgSetup, dkg_driver
from enclave.sealing import Sealer
from mpc.v1 import enclave_pb2 as pb


def prepare_refresh(sealer: Sealer, rng: Rng, cs: Ciphersuite, name: str, request: pb.SessionStart) -> Prepared:
    only_kinds(request, {pb.SEALED_BLOB_KIND_KEY_SHARE})
    if request.message or request.derivation_path or request.presignature_id or request.taproot_merkle_root:
        raise invalid("a refresh takes no message, derivation_path, presignature_id or taproot_merkle_root")
    if request.message_hash != pb.MESSAGE_HASH_UNSPECIFIED or request.result_recipient_key:
        raise invalid("a refresh takes no message_hash or result_recipient_key")
    record, key, public = open_key(cs, sealer, request, name)
    if tuple(request.party_ids) != record.parties:
        raise invalid("a refresh keeps the key's parties: party_ids must be the key's, in the key's order")
    if request.threshold != record.threshold:
        raise invalid(f"a refresh keeps the key's threshold ({record.threshold})")
    parties = Parties(request.self_party_id, {p: i + 1 for i, p in enumerate(record.parties)})
    sid, source = request.session_id, record.key_id

    def finish(value: Any) -> pb.SessionResult:
        new_key, new_public = value
        assert isinstance(new_key, KeyPackage) and isinstance(new_public, PublicKeyPackage)
        if new_key.verifying_key != key.verifying_key:  # refresh.part3 keeps it; never trust less
            raise LocalError("refresh changed the verifying key")
        shares = hashlib.sha256(wire.encode_public_key_package(cs, new_public)).digest()
        kid = successor_key_id(name, source, sid, record.threshold, record.parties, record.public_key, shares)
        if kid == source:
            raise LocalError("a refresh must make a new key id")  # a hash collision, never expected
        result = sealed_key_result(sealer, cs, replace(record, key_id=kid), new_key, new_public)
        result.predecessor_key_id = source
        return result

    def build(deadline: float) -> Plan:
        ids = {i: identifier_from_int(i) for i in parties.index.values()}
        setup = DkgSetup(cs, sid.encode("utf-8"), parties.self_index, ids, record.threshold, rng, refresh=(key, public))
        return Plan(Phase(dkg_driver(setup), 0, finish), 2)

    return Prepared(parties, build, key_id=source)
