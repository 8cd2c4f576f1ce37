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
Chain code: a DKG ends with a 32-byte chain code every party computes from the public
transcript (`enclave.protocols.frost.derive.chain_code`), sealed in the share record and
returned in SessionResult.chain_code. Derivation: SessionStart.derivation_path (non-hardened,
at most 255 levels) derives the key packages by `derive.derive_packages` (the additive rule
documented there) before signing; the result names the derived key, and a policy approval
binds the path (the engine puts request.derivation_path in the approval subject). A key made
before FROST keys had a chain code (record chain code empty) signs only at the root: a path
for it is FAILED_PRECONDITION. Presigning (a batch of preprocessed nonces) and the one-round
signature from one: enclave/engine/frost_presign.py (no derivation path there yet). Taproot signing may name a script
tree's merkle root (SessionStart.taproot_merkle_root, 32 bytes): the (derived) key packages are
tweaked with it (ZF `sign_with_tweak`) and the result names the tweaked x-only key. The approval
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
    HARDENED,
    MAX_PATH_DEPTH,
    Prepared,
    blob_invalid,
    dkg_parties,
    invalid,
    only_kinds,
    signer_parties,
)
from enclave.engine.frost_presign import FrostPresigning
from enclave.engine.frost_refresh import prepare_refresh
from enclave.engine.frost_repair import prepare_repair
from enclave.engine.frost_reshare import prepare_reshare
from enclave.engine.frost_share import open_key, public_key_bytes, sealed_key_result, sign_inputs
from enclave.engine.keyids import key_id
from enclave.engine.limits import MessageLimits, for_session, frost_preprocessed, frost_repair, kind_name
from enclave.engine.live import Parties, Phase, Plan
from enclave.engine.singleuse import SingleUseLedger
from enclave.errors import InvalidParameters, LocalError, RequestRejected
from enclave.protocols.frost import derive
from enclave.protocols.frost.ciphersuite import FROST_ED25519, FROST_SECP256K1, Ciphersuite, identifier_from_int
from enclave.protocols.frost.keys import KeyPackage, PublicKeyPackage
from enclave.protocols.frost.rounds import DkgSetup, SignSetup, dkg_driver, signing_driver
from enclave.protocols.frost.taproot import FROST_SECP256K1_TR, tweaked_public_key
from enclave.sealing import LocalSealer, Sealer
from enclave.tee.identity import EnclaveIdentity
from mpc.v1 import enclave_pb2 as pb

# The FROST protocols and their suites: the engine's adapters and key validation both read it.
SUITES: Final[dict[pb.Protocol, Ciphersuite]] = {
    pb.PROTOCOL_FROST_ED25519: FROST_ED25519,
    pb.PROTOCOL_FROST_SECP256K1: FROST_SECP256K1,
    pb.PROTOCOL_FROST_SECP256K1_TR: FROST_SECP256K1_TR,
}


# Paths up to this depth (BIP44's 5 levels and more) derive in well under a millisecond, so
# such a signature stays on the event loop like any other FROST signature; a deeper one (the
# enclave accepts 255 levels, about 0.2 ms each) runs its steps in a worker thread.
_LIGHT_PATH_DEPTH: Final = 8


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
        identity: EnclaveIdentity,
    ) -> None:
        self._sealer = sealer
        self._rng = rng
        self.suite = suite
        self.protocol = protocol
        self._name = PROTOCOL_NAMES[protocol]
        self._identity = identity  # signs round one of a reshare (a listed party) or a repair (the repaired one)
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
        if request.kind == pb.SESSION_KIND_REPAIR:
            rounds = frost_repair(parties, len(request.party_ids), request.threshold, self.suite.element_len)
            return MessageLimits(tuple(rounds))
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
        if request.kind == pb.SESSION_KIND_REFRESH:
            return prepare_refresh(self._sealer, self._rng, self.suite, self._name, request)
        if request.kind == pb.SESSION_KIND_RESHARE:
            return prepare_reshare(self._sealer, self._rng, self.suite, self._name, request, self._identity)
        if request.kind == pb.SESSION_KIND_REPAIR:
            return prepare_repair(self._sealer, self._rng, self.suite, self._name, request, self._identity)
        raise invalid(
            "FROST sessions are DKG, SIGN, PRESIGN, REFRESH, RESHARE or REPAIR (PRESIGN needs the engine's"
            " single-use ledger)"
        )

    def _signing_key(self, verifying_key: bytes, merkle_root: bytes | None) -> bytes:
        """The public key a signature verifies under, as the API shows it: the (derived) key,
        or for Taproot with a script tree's root the BIP341 output key it is tweaked to."""
        if merkle_root is not None:
            verifying_key = tweaked_public_key(verifying_key, merkle_root)
        return public_key_bytes(self.suite, verifying_key)

    def _derived(
        self, record: blobs.ShareRecord, key: KeyPackage, public: PublicKeyPackage, path: tuple[int, ...]
    ) -> tuple[KeyPackage, PublicKeyPackage]:
        """The key packages of the child key of `path` (derive.derive_packages); the chain code
        was checked in `_sign` (`_check_chain_code`)."""
        try:
            return derive.derive_packages(self.suite, key, public, record.chain_code, path)
        except InvalidParameters as exc:
            raise invalid(str(exc)) from None

    @staticmethod
    def _check_chain_code(record: blobs.ShareRecord) -> None:
        if not record.chain_code:
            # Keys generated before FROST DKGs made a chain code: the request is well formed,
            # the key cannot serve it (as a presignature made for another path cannot).
            raise RequestRejected(
                pb.ERROR_CODE_FAILED_PRECONDITION,
                f"key {record.key_id} has no chain code (generated before FROST keys had one): it signs only"
                " under its own key, with an empty derivation_path",
            )
        if len(record.chain_code) != derive.CHAIN_CODE_LEN:
            raise blob_invalid("key share: FROST chain code has the wrong length")

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
            key, public, chain_code = value
            assert isinstance(key, KeyPackage) and isinstance(public, PublicKeyPackage)
            public_key = public_key_bytes(cs, key.verifying_key)
            kid = key_id(name, sid, threshold, order, public_key)
            record = blobs.ShareRecord(name, kid, threshold, order, parties.self_index, public_key, chain_code, b"")
            return sealed_key_result(self._sealer, cs, record, key, public)

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
        path = tuple(request.derivation_path)
        if len(path) > MAX_PATH_DEPTH or any(i >= HARDENED for i in path):
            raise invalid(f"derivation_path must be non-hardened indices (< 2^31), at most {MAX_PATH_DEPTH} levels")
        merkle_root, message = sign_inputs(cs, request)
        record, key, public = open_key(cs, self._sealer, request, self._name)
        parties = signer_parties(request, record)
        sid, kid = request.session_id, record.key_id
        if path:
            self._check_chain_code(record)

        def build(deadline: float) -> Plan:
            # Derivation runs here, after the policy check, and off the event loop for deep paths.
            signing, signing_public = self._derived(record, key, public, path) if path else (key, public)
            signing_key = self._signing_key(signing.verifying_key, merkle_root)

            def finish(value: Any) -> pb.SessionResult:
                # The signing driver's only output is `signing.aggregate`'s return value, which
                # it returns only after the suite's verifier accepted it for this message under
                # the (tweaked) signing_public.verifying_key, equal to signing.verifying_key
                # (rounds._check_sign_setup): the record's public key (checked above) or the
                # child derived from it. So it is verified once, there; verifying again here
                # would only repeat it.
                sig = bytes(value)
                if len(sig) != cs.signature_len:
                    raise LocalError("aggregated FROST signature has the wrong length")
                return pb.SessionResult(key_id=kid, public_key=signing_key, signature=sig)

            setup = SignSetup(
                cs,
                sid.encode("utf-8"),
                parties.self_index,
                self._identifiers(parties),
                signing,
                signing_public,
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
            light=len(path) <= _LIGHT_PATH_DEPTH,
        )
