"""Independent signature checks for callers: libsecp256k1 (coincurve) and libsodium (PyNaCl).

These never use the protocol code that produced the signature, so a caller (the demo, the
tests, the benchmark) can trust a result without trusting mpc-signer's own arithmetic.
"""

from __future__ import annotations

import coincurve
import nacl.exceptions
import nacl.signing
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from mpc.v1 import signer_pb2 as pb


def verify_ecdsa(public_key: bytes, digest: bytes, signature: bytes) -> bool:
    """`signature` = r || s || v (65 bytes) over a 32-byte digest: libsecp256k1 verifies (r, s),
    which also requires low s, and recovering with v must give the same public key."""
    if len(signature) != 65 or len(digest) != 32 or signature[64] not in (0, 1):
        return False
    try:
        key = coincurve.PublicKey(public_key)
        r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big")
        if not key.verify(encode_dss_signature(r, s), digest, hasher=None):
            return False
        recovered = coincurve.PublicKey.from_signature_and_message(signature, digest, hasher=None)
    except (ValueError, TypeError):
        return False
    return recovered.format(compressed=True) == key.format(compressed=True)


def verify_ed25519(public_key: bytes, message: bytes, signature: bytes) -> bool:
    try:
        nacl.signing.VerifyKey(public_key).verify(message, signature)
    except (nacl.exceptions.BadSignatureError, ValueError, TypeError):
        return False
    return True


def verify(protocol: int, public_key: bytes, message: bytes, signature: bytes) -> bool:
    """`message`: the 32-byte digest for GG20, the message itself for FROST."""
    if protocol == pb.PROTOCOL_GG20_SECP256K1:
        return verify_ecdsa(public_key, message, signature)
    if protocol == pb.PROTOCOL_FROST_ED25519:
        return verify_ed25519(public_key, message, signature)
    return False
