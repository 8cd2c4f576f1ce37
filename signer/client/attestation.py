"""Verify an AWS Nitro Enclaves attestation document before trusting the enclave behind it.

The document is a COSE_Sign1 (RFC 9052) whose payload is a CBOR map written by the Nitro Secure
Module. Verification follows the AWS procedure: the signing certificate chains through `cabundle`
to the pinned AWS Nitro root; every certificate is valid at the document's own timestamp; the
ES384 signature covers the protected header and the payload; then the caller's expectations —
PCR values, the nonce it sent, freshness — are checked. Any failure raises `AttestationError`
with a `Reason`, and nothing of the document is returned unless every check passed.

This runs in the caller's process (client SDK), never on the host it is attesting.
"""

from __future__ import annotations

import enum
import hmac
import io
import itertools
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import cbor2
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding

# AWS Nitro Enclaves Root G1, as published by AWS (AWS_NitroEnclaves_Root-G1.zip). It is public
# data, pinned by value so there is nothing to download or intercept; the module refuses to
# load if it does not match the fingerprint AWS publishes for it.
AWS_NITRO_ROOT_G1_PEM = b"""-----BEGIN CERTIFICATE-----
MIICETCCAZagAwIBAgIRAPkxdWgbkK/hHUbMtOTn+FYwCgYIKoZIzj0EAwMwSTEL
MAkGA1UEBhMCVVMxDzANBgNVBAoMBkFtYXpvbjEMMAoGA1UECwwDQVdTMRswGQYD
VQQDDBJhd3Mubml0cm8tZW5jbGF2ZXMwHhcNMTkxMDI4MTMyODA1WhcNNDkxMDI4
MTQyODA1WjBJMQswCQYDVQQGEwJVUzEPMA0GA1UECgwGQW1hem9uMQwwCgYDVQQL
DANBV1MxGzAZBgNVBAMMEmF3cy5uaXRyby1lbmNsYXZlczB2MBAGByqGSM49AgEG
BSuBBAAiA2IABPwCVOumCMHzaHDimtqQvkY4MpJzbolL//Zy2YlES1BR5TSksfbb
48C8WBoyt7F2Bw7eEtaaP+ohG2bnUs990d0JX28TcPQXCEPZ3BABIeTPYwEoCWZE
h8l5YoQwTcU/9KNCMEAwDwYDVR0TAQH/BAUwAwEB/zAdBgNVHQ4EFgQUkCW1DdkF
R+eWw5b6cp3PmanfS5YwDgYDVR0PAQH/BAQDAgGGMAoGCCqGSM49BAMDA2kAMGYC
MQCjfy+Rocm9Xue4YnwWmNJVA44fA0P5W2OpYow9OYCVRaEevL8uO1XYru5xtMPW
rfMCMQCi85sWBbJwKKXdS6BptQFuZbT73o/gBh1qUxl/nNr12UO8Yfwr6wPLb+6N
IwLz3/Y=
-----END CERTIFICATE-----
"""
# SHA-256 of the root's DER encoding, as published in the AWS Nitro Enclaves user guide.
AWS_NITRO_ROOT_G1_SHA256 = "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b"
AWS_NITRO_ROOT_G1_SUBJECT_CN = "aws.nitro-enclaves"

MAX_DOCUMENT_BYTES = 32 * 1024  # NSM documents are about 4.5 KiB; refuse to parse megabytes
DEFAULT_MAX_AGE = timedelta(minutes=5)
CLOCK_SKEW = timedelta(seconds=30)  # a document "from the future" beyond this is refused
COSE_ALG_ES384 = -35
COSE_HEADER_ALG = 1
COSE_SIGN1_TAG = 18
_PCR_LENGTHS = frozenset({32, 48, 64})
_MAX_NONCE = 512
_MAX_USER_DATA = 512
_MAX_PUBLIC_KEY = 1024


class Reason(enum.Enum):
    MALFORMED = "document is not a well-formed COSE_Sign1 attestation document"
    UNSUPPORTED_ALGORITHM = "COSE algorithm is not ES384"
    BAD_SIGNATURE = "COSE signature does not verify with the document's certificate"
    WRONG_ROOT = "certificate chain does not start at the pinned root"
    BROKEN_CHAIN = "certificate chain does not link up"
    CERT_NOT_VALID = "a certificate is not valid at the document's timestamp"
    PCR_MISSING = "an expected PCR is absent from the document"
    PCR_MISMATCH = "a PCR differs from the expected value"
    NONCE_MISMATCH = "nonce differs from the one sent"
    STALE = "document timestamp is outside the accepted age"
    WRONG_DIGEST = "document digest is not SHA384"
    MISSING_MODULE_ID = "module_id is missing or empty"
    NOT_ATTESTED = "the node is not in attestation mode nitro: nothing vouches for its code"
    KEY_MISMATCH = "the document does not bind the enclave key the node reports"


class AttestationError(Exception):
    """The document must not be trusted. `reason` says which check failed; `detail` is public."""

    def __init__(self, reason: Reason, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"attestation rejected: {reason.value}" + (f" ({detail})" if detail else ""))


@dataclass(frozen=True)
class AttestationDocument:
    """The verified content of a document. Only `verify_attestation` builds these."""

    module_id: str
    timestamp: datetime
    pcrs: Mapping[int, bytes]
    certificate: x509.Certificate = field(repr=False)
    public_key: bytes | None
    user_data: bytes | None
    nonce: bytes | None


def load_pinned_root() -> x509.Certificate:
    """The pinned AWS Nitro root, after checking it against the published fingerprint."""
    root = x509.load_pem_x509_certificate(AWS_NITRO_ROOT_G1_PEM)
    fingerprint = root.fingerprint(hashes.SHA256()).hex()
    if not hmac.compare_digest(fingerprint, AWS_NITRO_ROOT_G1_SHA256):
        raise RuntimeError("embedded AWS Nitro root does not match its published fingerprint")
    cns = root.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    if [a.value for a in cns] != [AWS_NITRO_ROOT_G1_SUBJECT_CN]:
        raise RuntimeError("embedded AWS Nitro root has an unexpected subject")
    return root


AWS_NITRO_ROOT = load_pinned_root()


def verify_attestation(
    document: bytes,
    *,
    expected_pcrs: Mapping[int, bytes],
    nonce: bytes,
    now: datetime | None = None,
    max_age: timedelta = DEFAULT_MAX_AGE,
    root: x509.Certificate = AWS_NITRO_ROOT,
) -> AttestationDocument:
    """Verify `document` completely, or raise `AttestationError`.

    `expected_pcrs` must name at least one PCR (normally 0, 1, 2 and 8 from `make eif`): a document
    checked against no measurement proves only that *some* enclave answered. `nonce` is the fresh
    value the caller sent with its request. `root` is for tests with their own CA.
    """
    if not expected_pcrs:
        raise ValueError("expected_pcrs must name at least one PCR")
    if not nonce:
        raise ValueError("a fresh, non-empty nonce is required")
    now = now if now is not None else datetime.now(UTC)

    protected, payload_bytes, signature = _parse_cose_sign1(document)
    if _decode_map(protected, "protected header").get(COSE_HEADER_ALG) != COSE_ALG_ES384:
        raise AttestationError(Reason.UNSUPPORTED_ALGORITHM)
    payload = _decode_map(payload_bytes, "payload")

    module_id = payload.get("module_id")
    if not isinstance(module_id, str) or not module_id:
        raise AttestationError(Reason.MISSING_MODULE_ID)
    if payload.get("digest") != "SHA384":
        raise AttestationError(Reason.WRONG_DIGEST)
    timestamp = _timestamp(payload.get("timestamp"))
    pcrs = _pcrs(payload.get("pcrs"))
    leaf, bundle = _certificates(payload.get("certificate"), payload.get("cabundle"))
    public_key = _optional_bytes(payload, "public_key", _MAX_PUBLIC_KEY)
    user_data = _optional_bytes(payload, "user_data", _MAX_USER_DATA)
    doc_nonce = _optional_bytes(payload, "nonce", _MAX_NONCE)

    _verify_chain(leaf, bundle, root, timestamp)
    _verify_signature(leaf, protected, payload_bytes, signature)

    # Only now is the content authentic; the caller's expectations come last.
    for index, expected in sorted(expected_pcrs.items()):
        actual = pcrs.get(index)
        if actual is None:
            raise AttestationError(Reason.PCR_MISSING, f"PCR{index}")
        if not hmac.compare_digest(actual, expected):
            raise AttestationError(Reason.PCR_MISMATCH, f"PCR{index}")
    if doc_nonce is None or not hmac.compare_digest(doc_nonce, nonce):
        raise AttestationError(Reason.NONCE_MISMATCH)
    if timestamp > now + CLOCK_SKEW or now - timestamp > max_age:
        raise AttestationError(Reason.STALE, f"document time {timestamp.isoformat()}, now {now.isoformat()}")

    return AttestationDocument(
        module_id=module_id,
        timestamp=timestamp,
        pcrs=dict(pcrs),
        certificate=leaf,
        public_key=public_key,
        user_data=user_data,
        nonce=doc_nonce,
    )


class _Pingable(Protocol):
    async def ping(self, attestation_nonce: bytes = b"") -> Any: ...


async def attest_node(
    node: _Pingable,
    *,
    expected_pcrs: Mapping[int, bytes],
    max_age: timedelta = DEFAULT_MAX_AGE,
    root: x509.Certificate = AWS_NITRO_ROOT,
) -> AttestationDocument:
    """Ping a signer node (`SignerClient`) with a fresh nonce and verify its enclave completely.

    Beyond `verify_attestation`: the node must be in mode "nitro", and the document must bind the
    identity key the node reports (`PingResponse.enclave_public_key`). The returned document's
    `public_key` is that key; pin it for as long as you talk to this enclave (a restart makes a
    new one, which calls for attesting again)."""
    nonce = secrets.token_bytes(32)
    reply = await node.ping(nonce)
    if reply.attestation_mode != "nitro" or not reply.attestation_document:
        raise AttestationError(Reason.NOT_ATTESTED, f"mode {reply.attestation_mode or 'unknown'!r}")
    doc = verify_attestation(
        reply.attestation_document, expected_pcrs=expected_pcrs, nonce=nonce, max_age=max_age, root=root
    )
    if not doc.public_key or not hmac.compare_digest(doc.public_key, reply.enclave_public_key):
        raise AttestationError(Reason.KEY_MISMATCH)
    return doc


def _decode(data: bytes, what: str) -> Any:
    """Decode exactly one CBOR item: trailing bytes, duplicate keys or odd depth are malformed."""
    stream = io.BytesIO(data)
    try:
        decoder = cbor2.CBORDecoder(stream, read_size=1, max_depth=16, allow_duplicate_keys=False)
        item = decoder.decode()
    except (cbor2.CBORError, ValueError, TypeError, OverflowError, RecursionError, EOFError) as exc:
        raise AttestationError(Reason.MALFORMED, f"{what} is not valid CBOR") from exc
    if stream.tell() != len(data):
        raise AttestationError(Reason.MALFORMED, f"trailing bytes after the {what}")
    return item


def _decode_map(data: bytes, what: str) -> Mapping[Any, Any]:
    item = _decode(data, what)
    if not isinstance(item, Mapping):
        raise AttestationError(Reason.MALFORMED, f"{what} is not a map")
    return item


def _parse_cose_sign1(document: bytes) -> tuple[bytes, bytes, bytes]:
    if not isinstance(document, bytes | bytearray) or len(document) > MAX_DOCUMENT_BYTES:
        raise AttestationError(Reason.MALFORMED, "document missing or too large")
    item = _decode(bytes(document), "document")
    if isinstance(item, cbor2.CBORTag):
        if item.tag != COSE_SIGN1_TAG:
            raise AttestationError(Reason.MALFORMED, f"unexpected CBOR tag {item.tag}")
        item = item.value
    if not isinstance(item, list | tuple) or len(item) != 4:
        raise AttestationError(Reason.MALFORMED, "COSE_Sign1 is not a 4-element array")
    protected, unprotected, payload, signature = item
    if not (isinstance(protected, bytes) and isinstance(payload, bytes) and isinstance(signature, bytes)):
        raise AttestationError(Reason.MALFORMED, "COSE_Sign1 fields have the wrong types")
    if not isinstance(unprotected, Mapping):
        raise AttestationError(Reason.MALFORMED, "COSE unprotected header is not a map")
    return protected, payload, signature


def _timestamp(value: Any) -> datetime:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise AttestationError(Reason.MALFORMED, "timestamp missing or not a positive integer")
    try:
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise AttestationError(Reason.MALFORMED, "timestamp out of range") from exc


def _pcrs(value: Any) -> dict[int, bytes]:
    if not isinstance(value, Mapping) or not 1 <= len(value) <= 32:
        raise AttestationError(Reason.MALFORMED, "pcrs missing or of the wrong size")
    pcrs: dict[int, bytes] = {}
    for index, digest in value.items():
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < 32:
            raise AttestationError(Reason.MALFORMED, "PCR index out of range")
        if not isinstance(digest, bytes) or len(digest) not in _PCR_LENGTHS:
            raise AttestationError(Reason.MALFORMED, f"PCR{index} has the wrong length")
        pcrs[index] = digest
    return pcrs


def _certificates(leaf_der: Any, bundle_der: Any) -> tuple[x509.Certificate, list[x509.Certificate]]:
    if not isinstance(leaf_der, bytes):
        raise AttestationError(Reason.MALFORMED, "certificate missing")
    if not isinstance(bundle_der, Sequence) or isinstance(bundle_der, bytes | str) or not bundle_der:
        raise AttestationError(Reason.MALFORMED, "cabundle missing or empty")
    try:
        leaf = x509.load_der_x509_certificate(leaf_der)
        bundle = [x509.load_der_x509_certificate(_require_bytes(c)) for c in bundle_der]
    except ValueError as exc:
        raise AttestationError(Reason.MALFORMED, "a certificate does not parse") from exc
    return leaf, bundle


def _require_bytes(value: Any) -> bytes:
    if not isinstance(value, bytes):
        raise ValueError("not a byte string")
    return value


def _optional_bytes(payload: Mapping[Any, Any], name: str, limit: int) -> bytes | None:
    value = payload.get(name)
    if value is None:
        return None
    if not isinstance(value, bytes) or len(value) > limit:
        raise AttestationError(Reason.MALFORMED, f"{name} is not a byte string of at most {limit} bytes")
    return value


def _verify_chain(leaf: x509.Certificate, bundle: list[x509.Certificate], root: x509.Certificate, at: datetime) -> None:
    """cabundle is [root, intermediate..., issuer of leaf]; the root must be ours byte for byte."""
    if bundle[0].public_bytes(Encoding.DER) != root.public_bytes(Encoding.DER):
        raise AttestationError(Reason.WRONG_ROOT)
    chain = [*bundle, leaf]
    for position, cert in enumerate(chain):
        if not cert.not_valid_before_utc <= at <= cert.not_valid_after_utc:
            raise AttestationError(Reason.CERT_NOT_VALID, f"certificate {position} ({cert.subject.rfc4514_string()})")
        if not isinstance(cert.public_key(), ec.EllipticCurvePublicKey):
            raise AttestationError(Reason.BROKEN_CHAIN, f"certificate {position} has a non-EC key")
    for position, (issuer, subject) in enumerate(itertools.pairwise(chain)):
        if not _is_ca(issuer):
            raise AttestationError(Reason.BROKEN_CHAIN, f"certificate {position} is not a CA")
        try:
            subject.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature) as exc:
            raise AttestationError(Reason.BROKEN_CHAIN, f"certificate {position + 1} not issued by {position}") from exc


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    return constraints.ca


def _verify_signature(leaf: x509.Certificate, protected: bytes, payload: bytes, signature: bytes) -> None:
    key = leaf.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP384R1):
        raise AttestationError(Reason.BROKEN_CHAIN, "leaf key is not P-384")
    if len(signature) != 96:
        raise AttestationError(Reason.BAD_SIGNATURE, "ES384 signature is not 96 bytes")
    # COSE carries r||s; cryptography verifies DER.
    der = encode_dss_signature(int.from_bytes(signature[:48], "big"), int.from_bytes(signature[48:], "big"))
    to_be_signed = cbor2.dumps(["Signature1", protected, b"", payload])
    try:
        key.verify(der, to_be_signed, ec.ECDSA(hashes.SHA384()))
    except InvalidSignature as exc:
        raise AttestationError(Reason.BAD_SIGNATURE) from exc
