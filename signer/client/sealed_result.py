"""The caller's side of HPKE (RFC 9180): opening signatures the enclave sealed for it.

Suite and context strings are the ones mpc.v1.StartSignRequest.result_recipient_key specifies
(base mode, DHKEM(P-256, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, single-shot, empty aad), with
pyca/cryptography's implementation. The enclave's side is enclave/crypto/hpke.py; the two meet only in
that specification (tests/service/test_sealed_results.py runs one against the other).

    key = generate_recipient_key()                       # keep it; send public_bytes(key)
    spec = SessionSpec("sign", ..., result_recipient_key=public_bytes(key))
    signature = open_signature(result.sign, spec.session_id, key)

The operator CLI uses `seal_to` and `open_from` for the unseal shares (signer/ops/unseal.py).
"""

from __future__ import annotations

from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite

from door.encoding import lp32
from mpc.v1 import signer_pb2 as pb

SUITE: Final = Suite(KEM.P256, KDF.HKDF_SHA256, AEAD.AES_128_GCM)
SIGN_RESULT_LABEL: Final = b"mpc-signer/sign-result/v1"


class SealedResultError(Exception):
    """A sealed result that does not open with this key and context (or is not sealed)."""


def context(label: bytes, *parts: bytes) -> bytes:
    return label + b"".join(lp32(p) for p in parts)


def generate_recipient_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_bytes(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> bytes:
    """Uncompressed SEC1 encoding (65 bytes), as result_recipient_key takes it."""
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    return public.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def seal_to(recipient: bytes, plaintext: bytes, info: bytes) -> bytes:
    try:
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), recipient)
    except ValueError:
        raise SealedResultError("the recipient key is not a P-256 point") from None
    return SUITE.encrypt(plaintext, key, info=info)


def open_from(private_key: ec.EllipticCurvePrivateKey, ciphertext: bytes, info: bytes) -> bytes:
    try:
        return SUITE.decrypt(ciphertext, private_key, info=info)
    except (InvalidTag, ValueError):
        raise SealedResultError("the ciphertext does not open with this key and context") from None


def open_signature(result: pb.SignResult, session_id: str, private_key: ec.EllipticCurvePrivateKey) -> bytes:
    """The raw signature (ECDSA r || s || v, Ed25519 R || S) of a sealed SignResult. Verify it as
    usual afterwards (signer.client.verify): the enclave's seal says who it was for, not that the
    signature is good."""
    if not result.sealed_signature:
        raise SealedResultError("this result carries no sealed signature")
    info = context(SIGN_RESULT_LABEL, session_id.encode("utf-8"), result.key_id.encode("ascii"), result.public_key)
    return open_from(private_key, result.sealed_signature, info)
