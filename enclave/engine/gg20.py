"""GG20 (secp256k1) sessions for the engine: key generation, presigning, signing.

Party ids in the drivers are the DKG party indices (the Shamir evaluation points).

DKG -> `keygen` (3 rounds, with aux info), the Paillier primes taken from the pre-parameter
    pool, waiting for them on the event loop (enclave/engine/preparams_wait.py); a peer modulus
    above `max_modulus_bits` fails the session naming that peer (the message bounds of
    enclave/engine/limits.py follow from it); result: key id, compressed public key, chain code,
    sealed share (`KeyShare.to_bytes()` inside the engine's key-share record).
PRESIGN -> `presign` (4 rounds) over the signer set, for the child key of derivation_path
    (fixed now, before the nonce exists: CVE-2025-66017); result: one sealed presignature
    (SealedBlob kind PRESIGNATURE, id = presignature id, equal at every signer and binding the
    path; binding purpose "presignature", item id = that id) recording the signer set, the path
    and this boot's sequence number for it, sealed under the per-boot sealer
    (enclave/engine/singleuse.py).
REFRESH -> `keygen` with refresh=the sealed share (3 rounds, a new Paillier key from the pool,
    zero-constant sharings): party_ids and threshold must be the key's, in the key's order;
    result: a new key id for the same public key and chain code, predecessor_key_id = the
    source key, the new sealed share. The source share stays valid (the host retires it).
SIGN with a sealed presignature -> the one-round online `sign` (EnclaveMessage.round 1). The
    signer set must be the presignature's, and so must the derivation path (FAILED_PRECONDITION
    otherwise). A bare digest (message_hash RAW or UNSPECIFIED) is refused (FAILED_PRECONDITION)
    unless the adapter was built with allow_presigned_bare_digest: the enclave must see the
    message it signs with a nonce fixed in advance. A blob from an earlier enclave boot is
    refused (ERROR_CODE_SEALED_IN_EARLIER_BOOT); the sequence number is consumed in this boot's
    single-use ledger before the signature share exists; a second use is FAILED_PRECONDITION.
    All these checks run before anything is consumed.
SIGN without one -> presign (rounds 1-4) then the online round (EnclaveMessage.round 5, driver
    session id = session id + "/online") in one session; the presignature never leaves memory
    and its nonce is fixed after the message, so a bare digest is accepted.
The digest is made here from message and message_hash (enclave/protocols/gg20/message.py; RAW:
the message is the 32-byte digest) and returned as SessionResult.digest; the online round
re-randomizes the nonce by it (enclave/protocols/gg20/sign.py). derivation_path is a
non-hardened BIP32 path under the key's chain code; the signature is r || s || v (65 bytes, low
s) under the derived key, which the result carries as public_key (compressed), with
recovery_id = v.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from door.protocols import PROTOCOL_NAMES
from enclave.crypto.paillier import DEFAULT_MODULUS_BITS
from enclave.crypto.primes import SafePrimePair
from enclave.crypto.rng import Rng
from enclave.engine import blobs
from enclave.engine.blobs import BlobInvalid, PresignatureContent, ShareRecord
from enclave.engine.common import (
    HARDENED,
    MAX_PATH_DEPTH,
    Prepared,
    blob_invalid,
    dkg_parties,
    invalid,
    key_result,
    only_kinds,
    open_share,
    signer_parties,
)
from enclave.engine.gg20_reshare import prepare_gg20_reshare
from enclave.engine.gg20_share import key_share, new_shares_digest
from enclave.engine.keyids import key_id, presignature_id, successor_key_id
from enclave.engine.limits import MessageLimits, for_session, kind_name
from enclave.engine.live import Parties, Phase, Plan
from enclave.engine.preparams_wait import PreparamsWaiter
from enclave.engine.singleuse import SingleUseLedger, check_this_boot
from enclave.errors import BadInput, InvalidEncoding, LocalError, ProtocolFault, RequestRejected
from enclave.protocols.gg20 import keygen, presign, sign
from enclave.protocols.gg20.keyshare import KeyShare
from enclave.protocols.gg20.message import MessageHash, digest_of
from enclave.protocols.gg20.presignature import Presignature
from enclave.protocols.gg20.sign import Signature
from enclave.sealing import Binding, LocalSealer, Sealer
from enclave.tee.identity import EnclaveIdentity
from mpc.v1 import enclave_pb2 as pb

PROTOCOL = PROTOCOL_NAMES[pb.PROTOCOL_GG20_SECP256K1]
PRESIGN_ROUNDS = 4
ONLINE_SUFFIX = b"/online"
_AVOID_ATTEMPTS = 8
MESSAGE_HASHES: dict[int, MessageHash] = {
    pb.MESSAGE_HASH_UNSPECIFIED: MessageHash.RAW,
    pb.MESSAGE_HASH_RAW: MessageHash.RAW,
    pb.MESSAGE_HASH_SHA256: MessageHash.SHA256,
    pb.MESSAGE_HASH_KECCAK256: MessageHash.KECCAK256,
    pb.MESSAGE_HASH_DOUBLE_SHA256: MessageHash.DOUBLE_SHA256,
    pb.MESSAGE_HASH_ETH_PERSONAL: MessageHash.ETH_PERSONAL,
}
BARE_DIGEST_REFUSED = (
    "a bare digest (message_hash RAW) is not signed with a presignature: the enclave must see the message it"
    " signs when the nonce was fixed in advance (CVE-2025-66017); send the message with its message_hash, or"
    " sign without a presignature"
)


def derivation_path(request: pb.SessionStart) -> tuple[int, ...]:
    path = tuple(request.derivation_path)
    if len(path) > MAX_PATH_DEPTH or any(i >= HARDENED for i in path):
        raise invalid("derivation_path must be non-hardened indices (< 2^31), at most 255 levels")
    return path


def path_text(path: tuple[int, ...]) -> str:
    return "/".join(["m", *(str(i) for i in path)])


class Gg20Adapter:
    protocol = pb.PROTOCOL_GG20_SECP256K1

    def __init__(
        self,
        sealer: Sealer,
        rng: Rng,
        preparams: PreparamsWaiter,
        boot_sealer: LocalSealer,
        used: SingleUseLedger,
        preparams_wait: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        max_modulus_bits: int = DEFAULT_MODULUS_BITS,
        allow_presigned_bare_digest: bool = False,
        identity: EnclaveIdentity,
    ) -> None:
        self._sealer = sealer  # durable: key shares
        self._boot = boot_sealer  # this boot only: presignatures
        self._rng = rng
        self._preparams = preparams
        self._used = used
        self._wait = preparams_wait
        self._clock = clock
        self._max_modulus_bits = max_modulus_bits
        self._allow_bare = allow_presigned_bare_digest
        self._identity = identity  # signs a reshare's round one when this party is a listed one

    def limits(self, request: pb.SessionStart, parties: int, modulus_bits: int) -> MessageLimits:
        """The size bound of each round's messages of this session, moduli up to `modulus_bits`."""
        return for_session(
            "gg20",
            kind_name(request.kind),
            parties,
            request.threshold,
            modulus_bits,
            with_presignature=bool(request.presignature_id),
        )

    def prepare(self, request: pb.SessionStart) -> Prepared:
        if request.kind == pb.SESSION_KIND_DKG:
            return self._dkg(request)
        if request.kind == pb.SESSION_KIND_PRESIGN:
            return self._presign(request)
        if request.kind == pb.SESSION_KIND_SIGN:
            return self._sign(request)
        if request.kind == pb.SESSION_KIND_REFRESH:
            return self._refresh(request)
        if request.kind == pb.SESSION_KIND_RESHARE:
            return prepare_gg20_reshare(
                self._sealer, self._rng, PROTOCOL, request, self._take_preparams, self._sealed_key, self._identity
            )
        raise invalid("GG20 sessions are DKG, PRESIGN, SIGN, REFRESH or RESHARE")

    # -- key generation -------------------------------------------------------------------------

    def _dkg(self, request: pb.SessionStart) -> Prepared:
        parties = dkg_parties(request)
        if request.sealed_blobs:
            raise invalid("a DKG takes no sealed blobs")
        order = tuple(request.party_ids)
        threshold, sid = request.threshold, request.session_id

        def finish(value: Any) -> pb.SessionResult:
            assert isinstance(value, KeyShare)
            return self._sealed_key(key_id(PROTOCOL, sid, threshold, order, value.public_key), order, value)

        taken: list[SafePrimePair] = []

        def build(deadline: float) -> Plan:
            ids = tuple(parties.index.values())
            driver = keygen.start(sid.encode("utf-8"), parties.self_index, ids, threshold, taken.pop(), self._rng)
            return Plan(Phase(driver, 0, finish), 3)

        return Prepared(parties, build, wait=self._take_preparams(taken))

    def _take_preparams(
        self, taken: list[SafePrimePair], avoid: frozenset[int] = frozenset()
    ) -> Callable[[float], Awaitable[None]]:
        """The wait for one pre-parameter pair; a refresh passes its key's old moduli as
        `avoid` (fresh primes never repeat them; a pool replaying fixed primes can)."""

        async def wait(deadline: float) -> None:
            for _ in range(_AVOID_ATTEMPTS):
                pair = await self._preparams.take(max(0.0, min(self._wait, deadline - self._clock())))
                if pair.p * pair.q not in avoid:
                    taken.append(pair)
                    return
            raise RequestRejected(
                pb.ERROR_CODE_RESOURCE_EXHAUSTED, "the pre-parameter pool only offers the key's old Paillier keys"
            )

        return wait

    def _sealed_key(self, kid: str, order: tuple[str, ...], share: KeyShare) -> pb.SessionResult:
        """A new key's result: `share` (this party's, of key `kid` over `order`) sealed durably."""
        too_big = {j for j, aux in share.aux.items() if aux.n.bit_length() > self._max_modulus_bits}
        if too_big:
            raise ProtocolFault(too_big, f"Paillier modulus above the {self._max_modulus_bits} bits accepted")
        record = ShareRecord(
            PROTOCOL, kid, share.threshold, order, share.index, share.public_key, share.chain_code, share.to_bytes()
        )
        return key_result(self._sealer, record)

    # -- refresh --------------------------------------------------------------------------------

    def _refresh(self, request: pb.SessionStart) -> Prepared:
        """New shares and new aux info for the key's own parties and threshold (keygen's
        refresh); a new key id for the same public key and chain code."""
        if request.message or request.derivation_path or request.presignature_id or request.message_hash:
            raise invalid("a refresh takes no message, message_hash, derivation_path or presignature_id")
        if request.taproot_merkle_root or request.result_recipient_key:
            raise invalid("a refresh takes no taproot_merkle_root or result_recipient_key")
        record, share, _ = self._key(request, {pb.SEALED_BLOB_KIND_KEY_SHARE})
        if tuple(request.party_ids) != record.parties:
            raise invalid("a refresh keeps the key's parties: party_ids must be the key's, in the key's order")
        if request.threshold != record.threshold:
            raise invalid(f"a refresh keeps the key's threshold ({record.threshold})")
        parties = Parties(request.self_party_id, {p: i + 1 for i, p in enumerate(record.parties)})
        sid, source, order = request.session_id, record.key_id, record.parties

        def finish(value: Any) -> pb.SessionResult:
            assert isinstance(value, KeyShare)
            if (value.public_key, value.chain_code) != (record.public_key, record.chain_code):
                raise LocalError("refresh changed the key")  # keygen's refresh keeps both
            shares = new_shares_digest(value.public_shares, value.parties)
            kid = successor_key_id(PROTOCOL, source, sid, record.threshold, order, record.public_key, shares)
            if kid == source:
                raise LocalError("a refresh must make a new key id")  # a hash collision, never expected
            result = self._sealed_key(kid, order, value)
            result.predecessor_key_id = source
            return result

        taken: list[SafePrimePair] = []

        def build(deadline: float) -> Plan:
            ids = tuple(parties.index.values())
            sid_b = sid.encode("utf-8")
            driver = keygen.start(
                sid_b, parties.self_index, ids, record.threshold, taken.pop(), self._rng, refresh=share
            )
            return Plan(Phase(driver, 0, finish), 3)

        old_moduli = frozenset(a.n for a in share.aux.values())
        return Prepared(parties, build, key_id=source, wait=self._take_preparams(taken, old_moduli))

    # -- presigning -----------------------------------------------------------------------------

    def _key(self, request: pb.SessionStart, allowed: set[int]) -> tuple[ShareRecord, KeyShare, Parties]:
        only_kinds(request, allowed)
        record = open_share(self._sealer, request, PROTOCOL)
        parties = signer_parties(request, record)
        return record, key_share(record), parties

    def _presign(self, request: pb.SessionStart) -> Prepared:
        record, share, parties = self._key(request, {pb.SEALED_BLOB_KIND_KEY_SHARE})
        if request.presignature_id or request.message or request.message_hash:
            raise invalid("presigning takes no presignature_id, message or message_hash")
        path = derivation_path(request)
        sid, kid, signers = request.session_id, record.key_id, tuple(request.party_ids)

        def finish(value: Any) -> pb.SessionResult:
            presig = value
            assert isinstance(presig, Presignature)
            pid = presignature_id(kid, sid, presig.r_point, presig.derivation_path)
            rec = PresignatureContent(PROTOCOL, kid, pid, signers, self._used.issue(), presig.to_bytes())
            binding = Binding(key_id=kid, protocol=PROTOCOL, party_id=record.index, purpose="presignature", item_id=pid)
            blob = pb.SealedBlob(
                kind=pb.SEALED_BLOB_KIND_PRESIGNATURE,
                id=pid,
                data=blobs.seal(self._boot, rec.encode(), binding),
                sealer_kind=self._boot.kind,
            )
            return pb.SessionResult(key_id=kid, public_key=record.public_key, sealed_presignatures=[blob])

        def build(deadline: float) -> Plan:
            ids = tuple(parties.index.values())
            driver = presign.start(sid.encode("utf-8"), share, ids, self._rng, path=path)
            return Plan(Phase(driver, 0, finish), PRESIGN_ROUNDS)

        return Prepared(parties, build, key_id=kid)

    # -- signing --------------------------------------------------------------------------------

    def _sign(self, request: pb.SessionStart) -> Prepared:
        rule = MESSAGE_HASHES.get(request.message_hash)
        if rule is None:
            raise invalid("unknown message_hash")
        try:
            digest = digest_of(rule, bytes(request.message))
        except BadInput as exc:
            raise invalid(str(exc)) from None
        path = derivation_path(request)
        record, share, parties = self._key(request, {pb.SEALED_BLOB_KIND_KEY_SHARE, pb.SEALED_BLOB_KIND_PRESIGNATURE})
        sid, kid = request.session_id, record.key_id
        sid_b = sid.encode("utf-8")
        presig_blobs = [b for b in request.sealed_blobs if b.kind == pb.SEALED_BLOB_KIND_PRESIGNATURE]
        pid = request.presignature_id
        if len(presig_blobs) > 1 or bool(presig_blobs) != bool(pid):
            raise invalid("presignature_id must name the one sealed presignature given, or neither is given")

        def finish_signature(value: Any) -> pb.SessionResult:
            sig = value
            assert isinstance(sig, Signature)
            return pb.SessionResult(
                key_id=kid,
                public_key=sig.public_key,
                signature=sig.to_bytes(),
                recovery_id=sig.v,
                presignature_id=pid,
                digest=digest,
            )

        if pid:
            if rule is MessageHash.RAW and not self._allow_bare:
                raise RequestRejected(pb.ERROR_CODE_FAILED_PRECONDITION, BARE_DIGEST_REFUSED)
            seq, presig = self._open_presignature(presig_blobs[0], record, request)
            if presig.derivation_path != path:
                raise RequestRejected(
                    pb.ERROR_CODE_FAILED_PRECONDITION,
                    f"presignature {pid} was made for derivation path {path_text(presig.derivation_path)}, not"
                    f" {path_text(path)}: a presignature is bound at presigning to the one path it signs for",
                )
            self._used.check(seq)

            def consume(_inner_id: bytes) -> None:
                self._used.consume(seq)

            def build_online(deadline: float) -> Plan:
                driver = sign.start(sid_b, share, presig, digest, consume, rule=rule, path=path)
                return Plan(Phase(driver, 0, finish_signature), 1)

            return Prepared(
                parties, build_online, key_id=kid, approval_digest=digest, approval_hash=rule.value, light=True
            )

        def online(value: Any) -> Phase:
            fresh = value
            assert isinstance(fresh, Presignature)
            # Made in this session and dropped with it: nothing to consume beyond memory.
            driver = sign.start(sid_b + ONLINE_SUFFIX, share, fresh, digest, lambda _id: None, rule=rule, path=path)
            return Phase(driver, PRESIGN_ROUNDS, finish_signature)

        def build_full(deadline: float) -> Plan:
            ids = tuple(parties.index.values())
            driver = presign.start(sid_b, share, ids, self._rng, path=path)
            return Plan(Phase(driver, 0, online), PRESIGN_ROUNDS + 1)

        return Prepared(parties, build_full, key_id=kid, approval_digest=digest, approval_hash=rule.value)

    def _open_presignature(
        self, blob: pb.SealedBlob, record: ShareRecord, request: pb.SessionStart
    ) -> tuple[int, Presignature]:
        """(this boot's sequence number, presignature) of the request's sealed presignature."""
        pid = request.presignature_id
        if blob.id != pid:
            raise invalid("presignature_id must name the one sealed presignature given, or neither is given")
        check_this_boot(self._boot, blob.data[3:], f"presignature {pid}")
        try:
            index, plaintext = blobs.unseal(
                self._boot, blob.data, key_id=record.key_id, protocol=PROTOCOL, purpose="presignature", item_id=pid
            )
            rec = PresignatureContent.decode(plaintext)
            presig = Presignature.from_bytes(rec.presignature)
        except (BlobInvalid, InvalidEncoding) as exc:
            raise blob_invalid(f"presignature: {exc}") from None
        if (
            index != record.index
            or presig.index != record.index
            or rec.key_id != record.key_id
            or rec.presignature_id != pid
        ):
            raise blob_invalid("presignature: record does not match its binding")
        if set(rec.signers) != set(request.party_ids):
            raise invalid("the presignature was made for another signer set")
        return rec.sequence, presig
