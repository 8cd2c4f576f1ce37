"""Independent signature checks for callers: libsecp256k1 (coincurve) and libsodium (PyNaCl).

These never use the protocol code that produced the signature, so a caller (the demo, the
tests, the benchmark) can trust a result without trusting mpc-signer's own arithmetic.

- GG20: ECDSA by libsecp256k1, and the recovery id by recovering the key.
- FROST Ed25519: RFC 8032 by libsodium.
- FROST Taproot: BIP340 by libsecp256k1 (`secp256k1_schnorrsig_verify`) under the x-only key.
- FROST(secp256k1, SHA-256): no library verifies RFC 9591 secp256k1 signatures, so this module
  checks the Schnorr equation z*G == R + c*PK with libsecp256k1's point arithmetic and its own
  RFC 9380 hash_to_field for c = H2(R || PK || msg) (written apart from the enclave's).
"""

from __future__ import annotations

import hashlib

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


def verify_bip340(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """`public_key`: 32-byte x-only key; `signature`: 64-byte BIP340 signature."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    try:
        return bool(coincurve.PublicKeyXOnly(public_key).verify(signature, message))
    except (ValueError, TypeError):
        return False


_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_FROST_SECP256K1_CHALLENGE_DST = b"FROST-secp256k1-SHA256-v1chal"


def _frost_secp256k1_challenge(data: bytes) -> int:
    """RFC 9591 section 6.5 H2: hash_to_field (RFC 9380 5.2, expand_message_xmd SHA-256, L=48)."""
    dst = _FROST_SECP256K1_CHALLENGE_DST + bytes([len(_FROST_SECP256K1_CHALLENGE_DST)])
    b0 = hashlib.sha256(b"\x00" * 64 + data + (48).to_bytes(2, "big") + b"\x00" + dst).digest()
    b1 = hashlib.sha256(b0 + b"\x01" + dst).digest()
    b2 = hashlib.sha256(bytes(x ^ y for x, y in zip(b0, b1, strict=True)) + b"\x02" + dst).digest()
    return int.from_bytes((b1 + b2)[:48], "big") % _N


def verify_frost_secp256k1(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """`public_key`: 33-byte compressed key; `signature`: compressed R (33) || z (32)."""
    if len(public_key) != 33 or len(signature) != 65:
        return False
    z = int.from_bytes(signature[33:], "big")
    if not 0 < z < _N:
        return False
    try:
        key = coincurve.PublicKey(public_key)
        r = coincurve.PublicKey(signature[:33])
        c = _frost_secp256k1_challenge(signature[:33] + public_key + message)
        lhs = coincurve.PublicKey.from_valid_secret(z.to_bytes(32, "big"))
        rhs = r if c == 0 else coincurve.PublicKey.combine_keys([r, key.multiply(c.to_bytes(32, "big"))])
    except (ValueError, TypeError):  # off-curve points, or R + c*PK at infinity
        return False
    return lhs.format(compressed=True) == rhs.format(compressed=True)


def verify(protocol: int, public_key: bytes, message: bytes, signature: bytes) -> bool:
    """`message`: the 32-byte digest for GG20, the message itself for FROST."""
    if protocol == pb.PROTOCOL_GG20_SECP256K1:
        return verify_ecdsa(public_key, message, signature)
    if protocol == pb.PROTOCOL_FROST_ED25519:
        return verify_ed25519(public_key, message, signature)
    if protocol == pb.PROTOCOL_FROST_SECP256K1:
        return verify_frost_secp256k1(public_key, message, signature)
    if protocol == pb.PROTOCOL_FROST_SECP256K1_TR:
        return verify_bip340(public_key, message, signature)
    return False
