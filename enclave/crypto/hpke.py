"""HPKE (RFC 9180) base mode, DHKEM(P-256, HKDF-SHA256) / HKDF-SHA256 / AES-128-GCM, single-shot.

The primitive is pyca/cryptography's (`cryptography.hazmat.primitives.hpke`, checked against the
RFC's published vectors for this suite in tests/enclave/test_hpke.py). This module fixes the
suite, validates recipient keys, and builds the `info` strings that bind each use to its context
(RFC 9180 §8.1: single-shot callers put their context in `info`). A ciphertext is
`enc (65 bytes) || AEAD ciphertext`, the suite's single-shot output. The same strings are
specified in the .proto files for the other side (the SDK, the operator CLI):

    sign result          "mpc-signer/sign-result/v1" || lp(session id) || lp(key id) || lp(public key)
    operator share in    "mpc-signer/operator-share/v1" || lp(use) || lp(recipient public key)
    new operator share   "mpc-signer/new-operator-share/v1" || lp(set id) || lp(u8 index)

with lp(x) = u32be(len(x)) || x.
"""

from __future__ import annotations

from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite

from door.encoding import lp32
from enclave.errors import BadInput

SUITE: Final = Suite(KEM.P256, KDF.HKDF_SHA256, AEAD.AES_128_GCM)
ENC_LEN: Final = 65
TAG_LEN: Final = 16

SIGN_RESULT_LABEL: Final = b"mpc-signer/sign-result/v1"
OPERATOR_SHARE_LABEL: Final = b"mpc-signer/operator-share/v1"
NEW_SHARE_LABEL: Final = b"mpc-signer/new-operator-share/v1"


class HpkeError(BadInput):
    """A recipient key or ciphertext that cannot be used; the message says which (no secrets)."""


def info(label: bytes, *parts: bytes) -> bytes:
    return label + b"".join(lp32(p) for p in parts)


def sign_result_info(session_id: str, key_id: str, public_key: bytes) -> bytes:
    return info(SIGN_RESULT_LABEL, session_id.encode("utf-8"), key_id.encode("ascii"), public_key)


def operator_share_info(use: str, recipient_public_key: bytes = b"") -> bytes:
    return info(OPERATOR_SHARE_LABEL, use.encode("ascii"), recipient_public_key)


def new_share_info(set_id: str, index: int) -> bytes:
    return info(NEW_SHARE_LABEL, set_id.encode("ascii"), bytes([index]))


def load_public_key(data: bytes, what: str = "recipient key") -> ec.EllipticCurvePublicKey:
    """A P-256 point in SEC1 encoding (65 bytes uncompressed or 33 compressed), checked to be
    on the curve (cryptography refuses anything else; the identity has no SEC1 encoding here)."""
    if len(data) not in (33, 65):
        raise HpkeError(f"{what} must be a P-256 public key in SEC1 encoding (33 or 65 bytes)")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), bytes(data))
    except ValueError:
        raise HpkeError(f"{what} is not a point on P-256") from None


def seal(recipient: ec.EllipticCurvePublicKey | bytes, plaintext: bytes, context: bytes) -> bytes:
    """Encrypt to `recipient` under a fresh ephemeral key (cryptography draws it from the OS)."""
    key = load_public_key(recipient) if isinstance(recipient, bytes) else recipient
    return SUITE.encrypt(plaintext, key, info=context)


def open_sealed(private_key: ec.EllipticCurvePrivateKey, ciphertext: bytes, context: bytes, what: str) -> bytes:
    """Decrypt; HpkeError naming `what` if the ciphertext is malformed or not for this key and
    context (the two are indistinguishable by design)."""
    if len(ciphertext) < ENC_LEN + TAG_LEN:
        raise HpkeError(f"{what} is too short to be an HPKE ciphertext")
    try:
        return SUITE.decrypt(bytes(ciphertext), private_key, info=context)
    except (InvalidTag, ValueError):
        raise HpkeError(
            f"{what} does not decrypt: not encrypted to this enclave's current key (it changes at every "
            "start), or for another purpose"
        ) from None
