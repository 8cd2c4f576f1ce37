"""FROST sessions for the engine: DKG and two-round signing, one adapter per ciphersuite.

    FrostAdapter(sealer, rng, FROST_ED25519, pb.PROTOCOL_FROST_ED25519)
    FrostAdapter(sealer, rng, FROST_SECP256K1, pb.PROTOCOL_FROST_SECP256K1)
    FrostAdapter(sealer, rng, FROST_SECP256K1_TR, pb.PROTOCOL_FROST_SECP256K1_TR)

The same code for every suite (enclave.protocols.frost takes the suite as a value); what differs
is the suite and the public encodings:
- public key (DKG result, record, key id, sign result): Ed25519 32 bytes, secp256k1 33 bytes
  compressed, Taproot 32 bytes x-only (the BIP341 output key after ZF's post-DKG tweak);
- signature: Ed25519 R || S (64), secp256k1 compressed R || z (65), Taproot BIP340 (64).

Identifiers: a party's FROST identifier is `identifier_from_int(index)`, its party index (DKG:
1-based position in party_ids; signing: its DKG index from the key share). Sealed protocol
share: lp(ZF KeyPackage) || lp(ZF PublicKeyPackage) inside the engine's key-share record.
No chain code (empty) and no derivation. Presigning (a batch of preprocessed nonces) and the
one-round signature from one: enclave/engine/frost_presign.py. Taproot signing may name a script
tree's merkle root (SessionStart.taproot_merkle_root, 32 bytes): the key packages are tweaked
with it (ZF `sign_with_tweak`) and the result names the tweaked x-only key. The approval
digest then covers the root (`door.digests.frost_digest`). The signature is checked by the
suite's verifier (in `signing.aggregate`, once) before the session reports DONE.
"""

from __future__ import annotations

from typing import Any, Final

from door.digests import FROST_APPROVAL_HASH, frost_digest
from door.protocols import PROTOCOL_NAMES
from enclave.crypto.rng import Rng
from enclave.engine import blobs
from enclave.engine.common import (
    MAX_FROST_MESSAGE,
    Prepared,
    blob_invalid,
    dkg_parties,
    invalid,
    only_kinds,
    open_share,
    signer_parties,
)
from enclave.engine.frost_presign import FrostPresigning
from enclave.engine.keyids import key_id
from enclave.engine.limits import MessageLimits, for_session, frost_preprocessed, kind_name
from enclave.engine.live import Parties, Phase, Plan
from enclave.engine.singleuse import SingleUseLedger
from enclave.errors import EnclaveError, LocalError
from enclave.protocols.frost import wire
from enclave.protocols.frost.ciphersuite import FROST_ED25519, FROST_SECP256K1, Ciphersuite, identifier_from_int
from enclave.protocols.frost.keys import KeyPackage, PublicKeyPackage
from enclave.protocols.frost.rounds import DkgSetup, SignSetup, dkg_driver, signing_driver
from enclave.protocols.frost.taproot import FROST_SECP256K1_TR, MERKLE_ROOT_LEN, tweaked_public_key
from enclave.sealing import Binding, LocalSealer, Sealer
from mpc.v1 import enclave_pb2 as pb

# The FROST protocols and their suites: the engine's adapters and key validation both read it.
SUITES: Final[dict[pb.Protocol, Ciphersuite]] = {
    pb.PROTOCOL_FROST_ED25519: FROST_ED25519,
    pb.PROTOCOL_FROST_SECP256K1: FROST_SECP256K1,
    pb.PROTOCOL_FROST_SECP256K1_TR: FROST_SECP256K1_TR,
}


def public_key_bytes(cs: Ciphersuite, verifying_key: bytes) -> bytes:
    """The key as this project's API shows it: BIP340 x-only for Taproot, else the encoding."""
    return verifying_key[1:] if cs.bip340 else verifying_key


class FrostAdapter:
    def __init__(
        self,
        sealer: Sealer,
        rng: Rng,
        suite: Ciphersuite,
        protocol: pb.Protocol,
        *,
        boot_sealer: LocalSealer | None = None,
        used_nonces: SingleUseLedger | None = None,
    ) -> None:
        self._sealer = sealer
        self._rng = rng
        self.suite = suite
        self.protocol = protocol
        self._name = PROTOCOL_NAMES[protocol]
        # Preprocessed nonces (enclave/engine/frost_presign.py): only with a per-boot sealer and
        # a single-use ledger, which the engine owns.
        self._presigning = (
            None
            if boot_sealer is None or used_nonces is None
            else FrostPresigning(sealer, boot_sealer, used_nonces, rng, suite, self._name)
        )

    def limits(self, request: pb.SessionStart, parties: int, modulus_bits: int) -> MessageLimits:
        """The size bound of each round's messages of this session, for this suite's encodings."""
        if request.kind == pb.SESSION_KIND_PRESIGN:
            return frost_preprocessed(parties, self.suite.element_len, request.presign_count)
        if request.presignature_id:
            return frost_preprocessed(parties, self.suite.element_len, None)
        return for_session(
            "frost",
            kind_name(request.kind),
            parties,
            request.threshold,
            modulus_bits,
            element_len=self.suite.element_len,
            signature_len=self.suite.signature_len,
        )

    def prepare(self, request: pb.SessionStart) -> Prepared:
        if request.kind == pb.SESSION_KIND_DKG:
            return self._dkg(request)
        if self._presigning is not None:
            if request.kind == pb.SESSION_KIND_PRESIGN:
                return self._presigning.presign(request)
            if request.kind == pb.SESSION_KIND_SIGN and request.presignature_id:
                return self._presigning.sign(request)
        if request.kind == pb.SESSION_KIND_SIGN:
            return self._sign(request)
        raise invalid("FROST sessions are DKG, SIGN or PRESIGN (PRESIGN needs the engine's single-use ledger)")

    def _identifiers(self, parties: Parties) -> dict[int, int]:
        return {i: identifier_from_int(i) for i in parties.index.values()}

    def _dkg(self, request: pb.SessionStart) -> Prepared:
        parties = dkg_parties(request)
        if request.sealed_blobs:
            raise invalid("a DKG takes no sealed blobs")
        if request.taproot_merkle_root:
            raise invalid("a DKG takes no taproot_merkle_root")
        order = tuple(request.party_ids)
        threshold, sid, cs, name = request.threshold, request.session_id, self.suite, self._name

        def finish(value: Any) -> pb.SessionResult:
            key, public = value
            assert isinstance(key, KeyPackage) and isinstance(public, PublicKeyPackage)
            public_key = public_key_bytes(cs, key.verifying_key)
            kid = key_id(name, sid, threshold, order, public_key)
            share = blobs.pack(wire.encode_key_package(cs, key), wire.encode_public_key_package(cs, public))
            record = blobs.ShareRecord(name, kid, threshold, order, parties.self_index, public_key, b"", share)
            binding = Binding(key_id=kid, protocol=name, party_id=parties.self_index, purpose="share")
            sealed = blobs.seal(self._sealer, record.encode(), binding)
            return pb.SessionResult(
                key_id=kid,
                public_key=public_key,
                sealed_share=pb.SealedBlob(
                    kind=pb.SEALED_BLOB_KIND_KEY_SHARE, id=kid, data=sealed, sealer_kind=self._sealer.kind
                ),
            )

        def build(deadline: float) -> Plan:
            setup = DkgSetup(
                cs, sid.encode("utf-8"), parties.self_index, self._identifiers(parties), threshold, self._rng
            )
            return Plan(Phase(dkg_driver(setup), 0, finish), 2)

        return Prepared(parties, build)

    def _sign(self, request: pb.SessionStart) -> Prepared:
        only_kinds(request, {pb.SEALED_BLOB_KIND_KEY_SHARE})
        cs = self.suite
        if request.presignature_id:
            raise invalid("FROST signing takes no presignature")
        if request.derivation_path:
            raise invalid("FROST keys have no derivation paths")
        root = bytes(request.taproot_merkle_root)
        if root and not cs.bip340:
            raise invalid("taproot_merkle_root is for PROTOCOL_FROST_SECP256K1_TR only")
        if root and len(root) != MERKLE_ROOT_LEN:
            raise invalid(f"taproot_merkle_root must be {MERKLE_ROOT_LEN} bytes")
        if request.message_hash != pb.MESSAGE_HASH_UNSPECIFIED:
            raise invalid("message_hash is for GG20: FROST signs the message itself")
        message = bytes(request.message)
        if len(message) > MAX_FROST_MESSAGE:
            raise invalid(f"message must be at most {MAX_FROST_MESSAGE} bytes")
        record = open_share(self._sealer, request, self._name)
        parties = signer_parties(request, record)
        try:
            key_bytes, public_bytes = blobs.unpack(record.share, 2)
            # Authenticated plaintext (open_share checked the sealing AEAD and its binding) that
            # our own DKG produced with validated points: decode it structurally, without
            # repeating the subgroup checks (see wire._SealedReader). Peer points are never
            # decoded this way; they go through the strict wire decoders in the rounds.
            key = wire.decode_sealed_key_package(cs, key_bytes)
            public = wire.decode_sealed_public_key_package(cs, public_bytes)
        except EnclaveError:
            raise blob_invalid("key share: unreadable FROST key package") from None
        if (
            key.identifier != identifier_from_int(record.index)
            or public_key_bytes(cs, key.verifying_key) != record.public_key
        ):
            raise blob_invalid("key share: FROST key package does not match its record")
        sid, kid = request.session_id, record.key_id
        merkle_root = root or None
        signing_key = public_key_bytes(
            cs, key.verifying_key if merkle_root is None else tweaked_public_key(key.verifying_key, merkle_root)
        )

        def finish(value: Any) -> pb.SessionResult:
            # The signing driver's only output is `signing.aggregate`'s return value, which it
            # returns only after the suite's verifier accepted it for this message under the
            # (tweaked) public.verifying_key, equal to key.verifying_key
            # (rounds._check_sign_setup), itself equal to the record's public key (checked
            # above). So it is verified once, there; verifying again here would only repeat it.
            sig = bytes(value)
            if len(sig) != cs.signature_len:
                raise LocalError("aggregated FROST signature has the wrong length")
            return pb.SessionResult(key_id=kid, public_key=signing_key, signature=sig)

        def build(deadline: float) -> Plan:
            setup = SignSetup(
                cs,
                sid.encode("utf-8"),
                parties.self_index,
                self._identifiers(parties),
                key,
                public,
                message,
                self._rng,
                merkle_root=merkle_root,
            )
            return Plan(Phase(signing_driver(setup), 0, finish), 2)

        return Prepared(
            parties,
            build,
            key_id=kid,
            approval_digest=frost_digest(message, merkle_root or b""),
            approval_hash=FROST_APPROVAL_HASH,
            light=True,
        )
