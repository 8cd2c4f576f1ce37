"""A FROST key share as the engine seals it: lp(ZF KeyPackage) || lp(ZF PublicKeyPackage) inside
the engine's key-share record (enclave.engine.blobs.ShareRecord).

`open_key` is the only way from a sealed share to key packages: the sealing AEAD and binding
are checked first (common.open_share), and only then is the plaintext decoded with wire's
sealed (structural) decoders. `sealed_key_result` seals a new share and makes the session
result that carries it.
"""

from __future__ import annotations

from dataclasses import replace

from enclave.engine import blobs
from enclave.engine.common import blob_invalid, open_share
from enclave.errors import EnclaveError
from enclave.protocols.frost import wire
from enclave.protocols.frost.ciphersuite import Ciphersuite, identifier_from_int
from enclave.protocols.frost.keys import KeyPackage, PublicKeyPackage
from enclave.sealing import Binding, Sealer
from mpc.v1 import enclave_pb2 as pb


def public_key_bytes(cs: Ciphersuite, verifying_key: bytes) -> bytes:
    """The key as this project's API shows it: BIP340 x-only for Taproot, else the encoding."""
    return verifying_key[1:] if cs.bip340 else verifying_key


def open_key(
    cs: Ciphersuite, sealer: Sealer, request: pb.SessionStart, name: str
) -> tuple[blobs.ShareRecord, KeyPackage, PublicKeyPackage]:
    """The request's sealed FROST share: its record and its ZF key packages, checked to agree."""
    record = open_share(sealer, request, name)
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
    return record, key, public


def sealed_key_result(
    sealer: Sealer, cs: Ciphersuite, record: blobs.ShareRecord, key: KeyPackage, public: PublicKeyPackage
) -> pb.SessionResult:
    """A key's result: `record` (naming the key; its `share` is replaced) with `key`/`public` as
    its share, sealed under the durable sealer."""
    share = blobs.pack(wire.encode_key_package(cs, key), wire.encode_public_key_package(cs, public))
    sealed_record = replace(record, share=share)
    kid = record.key_id
    binding = Binding(key_id=kid, protocol=record.protocol, party_id=record.index, purpose="share")
    return pb.SessionResult(
        key_id=kid,
        public_key=record.public_key,
        chain_code=record.chain_code,
        sealed_share=pb.SealedBlob(
            kind=pb.SEALED_BLOB_KIND_KEY_SHARE,
            id=kid,
            data=blobs.seal(sealer, sealed_record.encode(), binding),
            sealer_kind=sealer.kind,
        ),
    )
