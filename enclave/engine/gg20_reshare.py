"""GG20 reshare in the engine: SESSION_KIND_RESHARE (enclave.protocols.gg20.reshare).

The start follows FROST's reshare (enclave/engine/frost_reshare.py, reshare_common.py): key_id
and source_* describe the source key, party_ids/threshold the new one; a dealer brings its
sealed share, a party new to the key source_public_key (33 bytes compressed) and
source_chain_code (32 bytes). Session numbers: the new parties 1..n in party_ids order (their new
indices), then the dealers that leave. A receiver takes a new Paillier key from the pre-parameter
pool (not one of the source key's); a dealer that leaves needs none. Round one is authenticated
as FROST's (a dealer's proof of its share, a listed party's signature with its identity key),
and a dealer asks an approval over the same digest when a policy is configured (its sub-shares
reveal its share to whoever holds t_new receivers' keys).

Result: a receiver's new sealed share under `keyids.successor_key_id` (the digest of the new X_j
as a refresh's), predecessor_key_id the source; a dealer that leaves: that key id, no share.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from door.digests import RESHARE_APPROVAL_HASH, reshare_digest
from enclave.crypto.primes import SafePrimePair
from enclave.crypto.rng import Rng
from enclave.engine.common import Prepared, invalid, open_share
from enclave.engine.gg20_share import key_share, new_shares_digest
from enclave.engine.keyids import successor_key_id
from enclave.engine.live import Phase, Plan
from enclave.engine.reshare_common import check_shape, listed_keys, session_parties, view_context
from enclave.errors import EnclaveError, LocalError
from enclave.group.secp256k1 import Secp256k1Group
from enclave.protocols.gg20 import reshare
from enclave.protocols.gg20.keyshare import KeyShare
from enclave.sealing import Sealer
from enclave.tee.identity import EnclaveIdentity
from mpc.v1 import enclave_pb2 as pb


def _source_share(sealer: Sealer, name: str, request: pb.SessionStart) -> KeyShare:
    if not request.sealed_blobs:
        raise invalid("a party of source_signers needs its sealed share of the source key")
    record = open_share(sealer, request, name)
    share = key_share(record)
    if record.parties != tuple(request.source_party_ids):
        raise invalid("source_party_ids must be the source key's parties, in the key's order")
    if record.threshold != request.source_threshold:
        raise invalid(f"source_threshold is not the source key's threshold ({record.threshold})")
    given_key, given_code = bytes(request.source_public_key), bytes(request.source_chain_code)
    if (given_key and given_key != share.public_key) or (given_code and given_code != share.chain_code):
        raise invalid("source_public_key / source_chain_code do not match the sealed share's key")
    return share


def _new_party_source(request: pb.SessionStart) -> tuple[bytes, bytes]:
    if request.sealed_blobs:
        raise invalid("only a party of source_signers brings a sealed share (this party deals nothing)")
    public_key, chain_code = bytes(request.source_public_key), bytes(request.source_chain_code)
    if len(public_key) != 33:
        raise invalid("a party new to the key needs source_public_key (33 bytes compressed)")
    try:
        Secp256k1Group().decode(public_key)
    except EnclaveError:
        raise invalid("source_public_key is not a valid key of this protocol") from None
    if len(chain_code) != 32:
        raise invalid("a party new to the key needs source_chain_code (32 bytes)")
    return public_key, chain_code


def prepare_gg20_reshare(
    sealer: Sealer,
    rng: Rng,
    name: str,
    request: pb.SessionStart,
    take_preparams: Callable[[list[SafePrimePair], frozenset[int]], Callable[[float], Awaitable[None]]],
    sealed_key: Callable[[str, tuple[str, ...], KeyShare], pb.SessionResult],
    identity: EnclaveIdentity,
) -> Prepared:
    check_shape(request)
    me, old, new = request.self_party_id, list(request.source_party_ids), tuple(request.party_ids)
    dealers = list(request.source_signers)
    source = _source_share(sealer, name, request) if me in dealers else None
    public_key, chain_code = (source.public_key, source.chain_code) if source else _new_party_source(request)
    parties = session_parties(request)
    keys = listed_keys(request, parties, identity.public_key)
    dealer_ids = {parties.index[d]: old.index(d) + 1 for d in dealers}
    sid, src, threshold = request.session_id, request.key_id, request.threshold
    context = view_context(request, public_key, chain_code)
    receives = me in new

    def finish(value: Any) -> pb.SessionResult:
        public_shares = value.public_shares if isinstance(value, KeyShare) else value
        assert isinstance(public_shares, dict)
        if isinstance(value, KeyShare) and (value.public_key, value.chain_code) != (public_key, chain_code):
            raise LocalError("reshare changed the key")  # the protocol checked the sum; never trust less
        digest = new_shares_digest(public_shares, range(1, len(new) + 1))
        kid = successor_key_id(name, src, sid, threshold, new, public_key, digest)
        if kid == src:
            raise LocalError("a reshare must make a new key id")  # a hash collision, never expected
        if not isinstance(value, KeyShare):
            return pb.SessionResult(key_id=kid, public_key=public_key, chain_code=chain_code, predecessor_key_id=src)
        result = sealed_key(kid, new, value)
        result.predecessor_key_id = src
        return result

    taken: list[SafePrimePair] = []

    def build(deadline: float) -> Plan:
        setup = reshare.ReshareSetup(
            sid.encode("utf-8"),
            parties.self_index,
            len(new),
            dealer_ids,
            threshold,
            request.source_threshold,
            public_key,
            chain_code,
            rng,
            source,
            context,
            new_party_keys=keys,
            sign=identity.sign if me in request.new_party_keys else None,
        )
        return Plan(Phase(reshare.start(setup, taken.pop() if receives else None), 0, finish), 3)

    old_moduli = frozenset(a.n for a in source.aux.values()) if source else frozenset()
    wait = take_preparams(taken, old_moduli) if receives else None
    if source is None:
        return Prepared(parties, build, key_id=src, wait=wait)
    approved = reshare_digest(old, request.source_threshold, dealers, new, threshold, request.new_party_keys)
    return Prepared(
        parties, build, key_id=src, wait=wait, approval_digest=approved, approval_hash=RESHARE_APPROVAL_HASH
    )
