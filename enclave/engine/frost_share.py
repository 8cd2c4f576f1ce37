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
from enclave.engine.common import MAX_FROST_MESSAGE, blob_invalid, invalid, key_result, open_share
from enclave.errors import EnclaveError
from enclave.protocols.frost import wire
from enclave.protocols.frost.ciphersuite import Ciphersuite, identifier_from_int
from enclave.protocols.frost.keys import KeyPackage, PublicKeyPackage
from enclave.protocols.frost.taproot import MERKLE_ROOT_LEN
from enclave.sealing import Sealer
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
    return key_result(sealer, replace(record, share=share))


def sign_inputs(cs: Ciphersuite, request: pb.SessionStart) -> tuple[bytes | None, bytes]:
    """(Taproot merkle root or None, message) of a FROST SIGN start, after the checks both
    signing paths (two rounds, or one from a preprocessed nonce) make."""
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
    return root or None, message
