"""Preprocessed FROST nonces for the engine: batch presigning and one-round signing.

PRESIGN (FROST, any suite) -> `preprocessed.presign_driver`, one broadcast round of
    SessionStart.presign_count (1..MAX_BATCH) ZF SigningCommitments per signer. Result: that
    many SealedBlobs of kind SEALED_BLOB_KIND_FROST_NONCE, in batch order, each with
    id = its presignature id (`frost_presignature_id`: key id, session id, index in the batch,
    the item's full ordered commitment list; equal at every signer that saw the same list) and
    data = a `PresignatureContent` record (signer set, this boot's sequence number of the FROST
    nonce ledger, and as its payload lp(hiding nonce) lp(binding nonce) lp(commitment list))
    sealed under the per-boot sealer (binding purpose "presignature", item id = that id).
SIGN with presignature_id (FROST) -> `preprocessed.one_round_signing_driver`, one round
    (EnclaveMessage.round 1): the signer set must be the presignature's, no derivation path
    (refused: INVALID_ARGUMENT), a Taproot merkle root is applied as in two-round signing. A
    blob from an earlier boot is refused (ERROR_CODE_SEALED_IN_EARLIER_BOOT); its sequence
    number is consumed in the FROST ledger when the session is built, before the signature
    share exists (so a nonce is spent even if the session then fails); a second use is
    FAILED_PRECONDITION. The same rules as GG20 presignatures (enclave/engine/gg20.py).
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

from door.digests import FROST_APPROVAL_HASH, frost_digest
from door.encoding import lp32, u32
from enclave.crypto.rng import Rng
from enclave.engine import blobs
from enclave.engine.blobs import BlobInvalid, PresignatureContent, ShareRecord
from enclave.engine.common import (
    Prepared,
    blob_invalid,
    invalid,
    only_kinds,
    signer_parties,
)
from enclave.engine.frost_share import open_key, public_key_bytes, sign_inputs
from enclave.engine.live import Parties, Phase, Plan
from enclave.engine.singleuse import SingleUseLedger, check_this_boot
from enclave.errors import InvalidEncoding, LocalError
from enclave.protocols.frost import preprocessed
from enclave.protocols.frost.ciphersuite import Ciphersuite, identifier_from_int
from enclave.protocols.frost.keys import KeyPackage, PublicKeyPackage
from enclave.protocols.frost.taproot import tweaked_public_key
from enclave.sealing import Binding, LocalSealer, Sealer
from mpc.v1 import enclave_pb2 as pb

MAX_BATCH: Final = 100
FROST_PRESIGNATURE_ID_TAG: Final = b"mpc-signer/engine/frost-presignature-id/v1"


def frost_presignature_id(key: str, session_id: str, index: int, commitment_list: bytes) -> str:
    """Equal at every signer of the batch that saw the same commitments; 64 hex characters."""
    h = hashlib.sha256(lp32(FROST_PRESIGNATURE_ID_TAG))
    for part in (key.encode("ascii"), session_id.encode("utf-8"), u32(index), commitment_list):
        h.update(lp32(part))
    return h.hexdigest()


class FrostPresigning:
    """The FROST adapter's presigning and one-round signing (one per suite)."""

    def __init__(
        self, sealer: Sealer, boot: LocalSealer, used: SingleUseLedger, rng: Rng, suite: Ciphersuite, name: str
    ) -> None:
        self._sealer = sealer  # durable: key shares
        self._boot = boot  # this boot only: nonces
        self._used = used
        self._rng = rng
        self.suite = suite
        self._name = name

    def _key(self, request: pb.SessionStart, allowed: set[int]) -> tuple[ShareRecord, KeyPackage, PublicKeyPackage]:
        only_kinds(request, allowed)
        return open_key(self.suite, self._sealer, request, self._name)

    @staticmethod
    def _identifiers(parties: Parties) -> dict[int, int]:
        return {i: identifier_from_int(i) for i in parties.index.values()}

    # -- presigning -----------------------------------------------------------------------------

    def presign(self, request: pb.SessionStart) -> Prepared:
        record, key, _public = self._key(request, {pb.SEALED_BLOB_KIND_KEY_SHARE})
        parties = signer_parties(request, record)
        if request.presignature_id or request.message or request.message_hash or request.taproot_merkle_root:
            raise invalid("presigning takes no presignature_id, message, message_hash or taproot_merkle_root")
        if request.derivation_path:
            raise invalid("FROST presigning takes no derivation_path")
        count = request.presign_count
        if not 1 <= count <= MAX_BATCH:
            raise invalid(f"presign_count must be 1..{MAX_BATCH} for FROST")
        sid, kid, signers, cs = request.session_id, record.key_id, tuple(request.party_ids), self.suite
        g = cs.group

        def finish(value: Any) -> pb.SessionResult:
            batch = value
            assert isinstance(batch, preprocessed.Batch)
            sealed = []
            for k, item in enumerate(batch.items):
                pid = frost_presignature_id(kid, sid, k, item.commitment_list)
                payload = blobs.pack(
                    g.encode_scalar(item.nonces.hiding), g.encode_scalar(item.nonces.binding), item.commitment_list
                )
                rec = PresignatureContent(self._name, kid, pid, signers, self._used.issue(), payload)
                binding = Binding(
                    key_id=kid, protocol=self._name, party_id=record.index, purpose="presignature", item_id=pid
                )
                sealed.append(
                    pb.SealedBlob(
                        kind=pb.SEALED_BLOB_KIND_FROST_NONCE,
                        id=pid,
                        data=blobs.seal(self._boot, rec.encode(), binding),
                        sealer_kind=self._boot.kind,
                    )
                )
            return pb.SessionResult(key_id=kid, public_key=record.public_key, sealed_presignatures=sealed)

        def build(deadline: float) -> Plan:
            setup = preprocessed.PresignSetup(
                cs, sid.encode("utf-8"), parties.self_index, self._identifiers(parties), key, count, self._rng
            )
            return Plan(Phase(preprocessed.presign_driver(setup), 0, finish), 1)

        return Prepared(parties, build, key_id=kid)

    # -- one-round signing ----------------------------------------------------------------------

    def sign(self, request: pb.SessionStart) -> Prepared:
        cs = self.suite
        record, key, public = self._key(request, {pb.SEALED_BLOB_KIND_KEY_SHARE, pb.SEALED_BLOB_KIND_FROST_NONCE})
        parties = signer_parties(request, record)
        if request.derivation_path:
            raise invalid("derivation_path is not supported with a FROST presignature: sign in two rounds")
        merkle_root, message = sign_inputs(cs, request)
        seq, hiding, binding, commitment_list = self._open_nonce(request, record)
        self._used.check(seq)  # refused now, before the policy and the build, if already used
        sid, kid, pid = request.session_id, record.key_id, request.presignature_id
        signing_key = public_key_bytes(
            cs, key.verifying_key if merkle_root is None else tweaked_public_key(key.verifying_key, merkle_root)
        )

        def finish(value: Any) -> pb.SessionResult:
            # preprocessed's round returns only what `signing.aggregate` accepted with the suite's
            # verifier for this message under the (tweaked) key: verified once, there.
            sig = bytes(value)
            if len(sig) != cs.signature_len:
                raise LocalError("aggregated FROST signature has the wrong length")
            return pb.SessionResult(key_id=kid, public_key=signing_key, signature=sig, presignature_id=pid)

        def build(deadline: float) -> Plan:
            # Spent before the share exists: whatever happens next, this nonce never signs again.
            self._used.consume(seq)
            setup = preprocessed.OneRoundSetup(
                cs,
                sid.encode("utf-8"),
                parties.self_index,
                self._identifiers(parties),
                key,
                public,
                message,
                pid,
                commitment_list,
                hiding,
                binding,
                merkle_root=merkle_root,
            )
            return Plan(Phase(preprocessed.one_round_signing_driver(setup), 0, finish), 1)

        return Prepared(
            parties,
            build,
            key_id=kid,
            approval_digest=frost_digest(message, merkle_root or b""),
            approval_hash=FROST_APPROVAL_HASH,
            light=True,
        )

    def _open_nonce(self, request: pb.SessionStart, record: ShareRecord) -> tuple[int, int, int, bytes]:
        """(sequence, hiding nonce, binding nonce, commitment list) of the request's sealed nonce."""
        pid = request.presignature_id
        nonces = [b for b in request.sealed_blobs if b.kind == pb.SEALED_BLOB_KIND_FROST_NONCE]
        if len(nonces) != 1 or nonces[0].id != pid:
            raise invalid("presignature_id must name the one sealed FROST nonce given")
        blob = nonces[0]
        check_this_boot(self._boot, blob.data[3:], f"presignature {pid}")
        g = self.suite.group
        try:
            index, plaintext = blobs.unseal(
                self._boot, blob.data, key_id=record.key_id, protocol=self._name, purpose="presignature", item_id=pid
            )
            rec = PresignatureContent.decode(plaintext)
            d_bytes, e_bytes, commitment_list = blobs.unpack(rec.presignature, 3)
            hiding, binding = g.decode_scalar(d_bytes), g.decode_scalar(e_bytes)
        except (BlobInvalid, InvalidEncoding) as exc:
            raise blob_invalid(f"presignature: {exc}") from None
        if index != record.index or rec.key_id != record.key_id or rec.presignature_id != pid or 0 in (hiding, binding):
            raise blob_invalid("presignature: record does not match its binding")
        if set(rec.signers) != set(request.party_ids):
            raise invalid("the presignature was made for another signer set")
        return rec.sequence, hiding, binding, commitment_list
