"""Build Nitro-shaped attestation documents signed by a test CA chain (root -> intermediate -> leaf).

Everything here is made with `cryptography` and `cbor2` directly, independently of the verifier
under test, so the tests check our parser against structures produced by other code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

EPOCH = datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC)
PCR0 = bytes.fromhex("a1" * 48)
PCR1 = bytes.fromhex("b2" * 48)
PCR2 = bytes.fromhex("c3" * 48)


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test"), x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    )


def make_cert(
    subject_cn: str,
    key: ec.EllipticCurvePrivateKey,
    issuer_cn: str,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
    not_before: datetime,
    not_after: datetime,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject_cn))
        .issuer_name(_name(issuer_cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    return builder.sign(issuer_key, hashes.SHA384())


@dataclass
class CaChain:
    root_key: ec.EllipticCurvePrivateKey
    root: x509.Certificate
    intermediate_key: ec.EllipticCurvePrivateKey
    intermediate: x509.Certificate
    leaf_key: ec.EllipticCurvePrivateKey
    leaf: x509.Certificate


def make_chain(
    *,
    root_cn: str = "test.nitro-root",
    leaf_not_before: datetime = EPOCH - timedelta(hours=1),
    leaf_not_after: datetime = EPOCH + timedelta(hours=3),
) -> CaChain:
    root_key = ec.generate_private_key(ec.SECP384R1())
    inter_key = ec.generate_private_key(ec.SECP384R1())
    leaf_key = ec.generate_private_key(ec.SECP384R1())
    long_before, long_after = EPOCH - timedelta(days=365), EPOCH + timedelta(days=365)
    root = make_cert(root_cn, root_key, root_cn, root_key, ca=True, not_before=long_before, not_after=long_after)
    inter = make_cert(
        "test.intermediate", inter_key, root_cn, root_key, ca=True, not_before=long_before, not_after=long_after
    )
    leaf = make_cert(
        "test.enclave-leaf",
        leaf_key,
        "test.intermediate",
        inter_key,
        ca=False,
        not_before=leaf_not_before,
        not_after=leaf_not_after,
    )
    return CaChain(root_key, root, inter_key, inter, leaf_key, leaf)


@dataclass
class DocSpec:
    """The fields of one document; tests change one and expect exactly one failure."""

    nonce: bytes | None = b"caller-nonce-0001"
    timestamp: datetime = EPOCH
    pcrs: dict[int, bytes] = field(default_factory=lambda: {0: PCR0, 1: PCR1, 2: PCR2, 3: bytes(48)})
    digest: str = "SHA384"
    module_id: str | None = "i-0123456789abcdef0-enc0123456789abcdef"
    public_key: bytes | None = None
    user_data: bytes | None = b"mpc-signer"


def payload_map(chain: CaChain, spec: DocSpec) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "digest": spec.digest,
        "timestamp": int(spec.timestamp.timestamp() * 1000),
        "pcrs": spec.pcrs,
        "certificate": chain.leaf.public_bytes(Encoding.DER),
        "cabundle": [chain.root.public_bytes(Encoding.DER), chain.intermediate.public_bytes(Encoding.DER)],
        "public_key": spec.public_key,
        "user_data": spec.user_data,
        "nonce": spec.nonce,
    }
    if spec.module_id is not None:
        payload["module_id"] = spec.module_id
    return payload


def sign_cose(payload: bytes, key: ec.EllipticCurvePrivateKey, *, tagged: bool = True, alg: int = -35) -> bytes:
    protected = cbor2.dumps({1: alg})
    to_be_signed = cbor2.dumps(["Signature1", protected, b"", payload])
    r, s = decode_dss_signature(key.sign(to_be_signed, ec.ECDSA(hashes.SHA384())))
    signature = r.to_bytes(48, "big") + s.to_bytes(48, "big")
    message = [protected, {}, payload, signature]
    return cbor2.dumps(cbor2.CBORTag(18, message) if tagged else message)


def make_document(chain: CaChain, spec: DocSpec | None = None, *, tagged: bool = True) -> bytes:
    return sign_cose(cbor2.dumps(payload_map(chain, spec or DocSpec())), chain.leaf_key, tagged=tagged)
