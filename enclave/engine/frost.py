"""FROST(Ed25519, SHA-512) sessions for the engine: DKG and two-round signing.

Identifiers: a party's FROST identifier is `identifier_from_int(index)`, its party index (DKG:
1-based position in party_ids; signing: its DKG index from the key share). Sealed protocol
share: lp(ZF KeyPackage) || lp(ZF PublicKeyPackage) inside the engine's key-share record.
No chain code (empty) and no derivation; no presigning. The signature (R || S, 64 bytes) is
checked by libsodium (in `signing.aggregate`, once) before the session reports DONE.
"""

from __future__ import annotations

from typing import Any

from enclave.engine import blobs
from enclave.engine.approval import FROST_APPROVAL_HASH, frost_digest
from enclave.engine.common import (
    MAX_FROST_MESSAGE,
    PROTOCOL_NAMES,
    Prepared,
    blob_invalid,
    dkg_parties,
    invalid,
    only_kinds,
    open_share,
    signer_parties,
)
from enclave.engine.keyids import key_id
from enclave.engine.session import Parties, Phase, Plan
from enclave.errors import EnclaveError, LocalError
from enclave.protocols.frost import wire
from enclave.protocols.frost.ciphersuite import identifier_from_int
from enclave.protocols.frost.keys import KeyPackage, PublicKeyPackage
from enclave.protocols.frost.sessions import DkgSetup, SignSetup, dkg_driver, signing_driver
from enclave.rng import Rng
from enclave.sealing import Binding, Sealer
from mpc.v1 import enclave_pb2 as pb

PROTOCOL = PROTOCOL_NAMES[pb.PROTOCOL_FROST_ED25519]


class FrostAdapter:
    protocol = pb.PROTOCOL_FROST_ED25519

    def __init__(self, sealer: Sealer, rng: Rng) -> None:
        self._sealer = sealer
        self._rng = rng

    def prepare(self, request: pb.SessionStart) -> Prepared:
        if request.kind == pb.SESSION_KIND_DKG:
            return self._dkg(request)
        if request.kind == pb.SESSION_KIND_SIGN:
            return self._sign(request)
        raise invalid("FROST sessions are DKG or SIGN (no presigning)")

    def _identifiers(self, parties: Parties) -> dict[int, int]:
        return {i: identifier_from_int(i) for i in parties.index.values()}

    def _dkg(self, request: pb.SessionStart) -> Prepared:
        parties = dkg_parties(request)
        if request.sealed_blobs:
            raise invalid("a DKG takes no sealed blobs")
        order = tuple(request.party_ids)
        threshold, sid = request.threshold, request.session_id

        def finish(value: Any) -> pb.SessionResult:
            key, public = value
            assert isinstance(key, KeyPackage) and isinstance(public, PublicKeyPackage)
            kid = key_id(PROTOCOL, sid, threshold, order, key.verifying_key)
            share = blobs.pack(wire.encode_key_package(key), wire.encode_public_key_package(public))
            record = blobs.ShareRecord(
                PROTOCOL, kid, threshold, order, parties.self_index, key.verifying_key, b"", share
            )
            binding = Binding(key_id=kid, protocol=PROTOCOL, party_id=parties.self_index, purpose="share")
            sealed = blobs.seal(self._sealer, record.encode(), binding)
            return pb.SessionResult(
                key_id=kid,
                public_key=key.verifying_key,
                sealed_share=pb.SealedBlob(kind=pb.SEALED_BLOB_KIND_KEY_SHARE, id=kid, data=sealed),
            )

        def build(deadline: float) -> Plan:
            setup = DkgSetup(sid.encode("utf-8"), parties.self_index, self._identifiers(parties), threshold, self._rng)
            return Plan(Phase(dkg_driver(setup), 0, finish), 2)

        return Prepared(parties, build)

    def _sign(self, request: pb.SessionStart) -> Prepared:
        only_kinds(request, {pb.SEALED_BLOB_KIND_KEY_SHARE})
        if request.presignature_id:
            raise invalid("FROST signing takes no presignature")
        if request.derivation_path:
            raise invalid("FROST keys have no derivation paths")
        if request.message_hash != pb.MESSAGE_HASH_UNSPECIFIED:
            raise invalid("message_hash is for GG20: FROST signs the message itself")
        message = bytes(request.message)
        if len(message) > MAX_FROST_MESSAGE:
            raise invalid(f"message must be at most {MAX_FROST_MESSAGE} bytes")
        record = open_share(self._sealer, request, PROTOCOL)
        parties = signer_parties(request, record)
        try:
            key_bytes, public_bytes = blobs.unpack(record.share, 2)
            # Authenticated plaintext (open_share checked the sealing AEAD and its binding) that
            # our own DKG produced with validated points: decode it structurally, without
            # repeating the subgroup checks (see wire._SealedReader). Peer points are never
            # decoded this way; they go through the strict wire decoders in the rounds.
            key = wire.decode_sealed_key_package(key_bytes)
            public = wire.decode_sealed_public_key_package(public_bytes)
        except EnclaveError:
            raise blob_invalid("key share: unreadable FROST key package") from None
        if key.identifier != identifier_from_int(record.index) or key.verifying_key != record.public_key:
            raise blob_invalid("key share: FROST key package does not match its record")
        sid, kid = request.session_id, record.key_id

        def finish(value: Any) -> pb.SessionResult:
            # The signing driver's only output is `signing.aggregate`'s return value, which it
            # returns only after libsodium verified it (RFC 8032) for this message under
            # public.verifying_key, equal to key.verifying_key (sessions._check_sign_setup),
            # itself equal to the record's public key (checked above). So it is verified once,
            # there; verifying again here would only repeat the same check.
            sig = bytes(value)
            if len(sig) != 64:
                raise LocalError("aggregated FROST signature has the wrong length")
            return pb.SessionResult(key_id=kid, public_key=key.verifying_key, signature=sig)

        def build(deadline: float) -> Plan:
            setup = SignSetup(
                sid.encode("utf-8"), parties.self_index, self._identifiers(parties), key, public, message, self._rng
            )
            return Plan(Phase(signing_driver(setup), 0, finish), 2)

        return Prepared(parties, build, key_id=kid, approval_digest=frost_digest(message),
                        approval_hash=FROST_APPROVAL_HASH, light=True)
