"""The client SDK's Nitro attestation verifier against documents built with a test CA chain."""

from __future__ import annotations

from datetime import timedelta

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from signer.client.attestation import (
    AWS_NITRO_ROOT,
    AWS_NITRO_ROOT_G1_SHA256,
    AttestationError,
    Reason,
    verify_attestation,
)
from tests.tee.nitro_docs import (
    EPOCH,
    PCR0,
    PCR1,
    PCR2,
    CaChain,
    DocSpec,
    make_chain,
    make_document,
    payload_map,
    sign_cose,
)

NONCE = DocSpec().nonce
EXPECTED = {0: PCR0, 1: PCR1, 2: PCR2}


@pytest.fixture(scope="module")
def chain() -> CaChain:
    return make_chain()


def verify(doc: bytes, chain: CaChain, **overrides: object) -> object:
    kwargs: dict[str, object] = {"expected_pcrs": EXPECTED, "nonce": NONCE, "now": EPOCH, "root": chain.root}
    kwargs.update(overrides)
    return verify_attestation(doc, **kwargs)  # type: ignore[arg-type]


def rejected(doc: bytes, chain: CaChain, reason: Reason, **overrides: object) -> AttestationError:
    with pytest.raises(AttestationError) as info:
        verify(doc, chain, **overrides)
    assert info.value.reason is reason, str(info.value)
    assert reason.value in str(info.value)
    return info.value


def test_pinned_root_is_the_published_aws_nitro_root() -> None:
    assert AWS_NITRO_ROOT.fingerprint(hashes.SHA256()).hex() == AWS_NITRO_ROOT_G1_SHA256
    assert AWS_NITRO_ROOT.subject.rfc4514_string() == "CN=aws.nitro-enclaves,OU=AWS,O=Amazon,C=US"
    key = AWS_NITRO_ROOT.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp384r1"
    AWS_NITRO_ROOT.verify_directly_issued_by(AWS_NITRO_ROOT)  # self-signed, signature checks


@pytest.mark.parametrize("tagged", [True, False])
def test_valid_document_passes(chain: CaChain, tagged: bool) -> None:
    pub = b"\x30" + b"k" * 90
    doc = make_document(chain, DocSpec(public_key=pub), tagged=tagged)
    result = verify(doc, chain, now=EPOCH + timedelta(seconds=20))
    assert result.public_key == pub  # type: ignore[attr-defined]
    assert result.nonce == NONCE  # type: ignore[attr-defined]
    assert result.user_data == b"mpc-signer"  # type: ignore[attr-defined]
    assert result.pcrs[0] == PCR0  # type: ignore[attr-defined]
    assert result.timestamp == EPOCH  # type: ignore[attr-defined]


def test_default_root_is_aws_so_a_test_chain_fails(chain: CaChain) -> None:
    with pytest.raises(AttestationError) as info:
        verify_attestation(make_document(chain), expected_pcrs=EXPECTED, nonce=NONCE, now=EPOCH)
    assert info.value.reason is Reason.WRONG_ROOT


def test_bad_signature(chain: CaChain) -> None:
    doc = cbor2.loads(make_document(chain))
    protected, unprotected, payload, signature = doc.value
    flipped = signature[:-1] + bytes([signature[-1] ^ 1])
    rejected(cbor2.dumps(cbor2.CBORTag(18, [protected, unprotected, payload, flipped])), chain, Reason.BAD_SIGNATURE)


def test_payload_changed_after_signing(chain: CaChain) -> None:
    protected, unprotected, payload, signature = cbor2.loads(make_document(chain)).value
    fields = cbor2.loads(payload)
    fields["pcrs"][0] = PCR1
    forged = cbor2.dumps(cbor2.CBORTag(18, [protected, unprotected, cbor2.dumps(fields), signature]))
    rejected(forged, chain, Reason.BAD_SIGNATURE, expected_pcrs={0: PCR1})


def test_signed_by_a_key_other_than_the_certificate(chain: CaChain) -> None:
    intruder = ec.generate_private_key(ec.SECP384R1())
    doc = sign_cose(cbor2.dumps(payload_map(chain, DocSpec())), intruder)
    rejected(doc, chain, Reason.BAD_SIGNATURE)


def test_broken_chain(chain: CaChain) -> None:
    # A leaf from another chain presented with our root and intermediate: the link to its issuer fails.
    other = make_chain()
    mixed = CaChain(chain.root_key, chain.root, chain.intermediate_key, chain.intermediate, other.leaf_key, other.leaf)
    err = rejected(make_document(mixed), chain, Reason.BROKEN_CHAIN)
    assert "not issued by" in err.detail


def test_intermediate_not_a_ca(chain: CaChain) -> None:
    from tests.tee.nitro_docs import make_cert

    inter = make_cert(
        "test.intermediate",
        chain.intermediate_key,
        "test.nitro-root",
        chain.root_key,
        ca=False,
        not_before=EPOCH - timedelta(days=1),
        not_after=EPOCH + timedelta(days=1),
    )
    weak = CaChain(chain.root_key, chain.root, chain.intermediate_key, inter, chain.leaf_key, chain.leaf)
    rejected(make_document(weak), chain, Reason.BROKEN_CHAIN)


def test_wrong_root(chain: CaChain) -> None:
    other = make_chain()
    rejected(make_document(other), chain, Reason.WRONG_ROOT)
    # Same subject name as ours but a different key is still the wrong root.
    impostor = make_chain(root_cn="test.nitro-root")
    rejected(make_document(impostor), chain, Reason.WRONG_ROOT)


def test_expired_certificate(chain: CaChain) -> None:
    expired = make_chain(leaf_not_before=EPOCH - timedelta(hours=4), leaf_not_after=EPOCH - timedelta(hours=1))
    rejected(make_document(expired), expired, Reason.CERT_NOT_VALID)


def test_certificate_not_yet_valid(chain: CaChain) -> None:
    early = make_chain(leaf_not_before=EPOCH + timedelta(minutes=1), leaf_not_after=EPOCH + timedelta(hours=3))
    rejected(make_document(early), early, Reason.CERT_NOT_VALID)


def test_wrong_pcr(chain: CaChain) -> None:
    err = rejected(make_document(chain), chain, Reason.PCR_MISMATCH, expected_pcrs={0: PCR0, 2: PCR1})
    assert err.detail == "PCR2"


def test_missing_pcr(chain: CaChain) -> None:
    doc = make_document(chain, DocSpec(pcrs={0: PCR0, 1: PCR1}))
    err = rejected(doc, chain, Reason.PCR_MISSING)
    assert err.detail == "PCR2"


def test_no_expected_pcrs_is_a_usage_error(chain: CaChain) -> None:
    with pytest.raises(ValueError):
        verify(make_document(chain), chain, expected_pcrs={})


def test_stale_timestamp(chain: CaChain) -> None:
    doc = make_document(chain)
    rejected(doc, chain, Reason.STALE, now=EPOCH + timedelta(minutes=6))
    rejected(doc, chain, Reason.STALE, now=EPOCH + timedelta(minutes=2), max_age=timedelta(minutes=1))
    verify(doc, chain, now=EPOCH + timedelta(minutes=4))


def test_timestamp_from_the_future(chain: CaChain) -> None:
    rejected(make_document(chain), chain, Reason.STALE, now=EPOCH - timedelta(minutes=2))


def test_wrong_nonce(chain: CaChain) -> None:
    rejected(make_document(chain), chain, Reason.NONCE_MISMATCH, nonce=b"another-nonce")
    rejected(make_document(chain, DocSpec(nonce=None)), chain, Reason.NONCE_MISMATCH)


def test_wrong_digest(chain: CaChain) -> None:
    rejected(make_document(chain, DocSpec(digest="SHA256")), chain, Reason.WRONG_DIGEST)


def test_missing_module_id(chain: CaChain) -> None:
    rejected(make_document(chain, DocSpec(module_id=None)), chain, Reason.MISSING_MODULE_ID)
    rejected(make_document(chain, DocSpec(module_id="")), chain, Reason.MISSING_MODULE_ID)


def test_unsupported_algorithm(chain: CaChain) -> None:
    doc = sign_cose(cbor2.dumps(payload_map(chain, DocSpec())), chain.leaf_key, alg=-7)
    rejected(doc, chain, Reason.UNSUPPORTED_ALGORITHM)


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"\xff\x00garbage",
        cbor2.dumps([1, 2, 3]),
        cbor2.dumps(cbor2.CBORTag(17, [b"", {}, b"", b""])),
        cbor2.dumps(["a", {}, b"", b""]),
        b"\x9f" * 64,  # deep indefinite arrays
    ],
)
def test_malformed_cbor(chain: CaChain, blob: bytes) -> None:
    rejected(blob, chain, Reason.MALFORMED)


def test_truncated_and_trailing_bytes(chain: CaChain) -> None:
    doc = make_document(chain)
    rejected(doc[: len(doc) // 2], chain, Reason.MALFORMED)
    rejected(doc + b"\x00", chain, Reason.MALFORMED)


def test_malformed_payload_fields(chain: CaChain) -> None:
    base = payload_map(chain, DocSpec())
    for change in (
        {"timestamp": "yesterday"},
        {"pcrs": {0: b"short"}},
        {"pcrs": {}},
        {"cabundle": []},
        {"certificate": b"not a certificate"},
        {"nonce": b"n" * 513},
    ):
        doc = sign_cose(cbor2.dumps({**base, **change}), chain.leaf_key)
        rejected(doc, chain, Reason.MALFORMED)


def test_certificate_fields_are_real_x509(chain: CaChain) -> None:
    # Sanity of the fixture itself: the chain verifies with cryptography's own checks.
    chain.intermediate.verify_directly_issued_by(chain.root)
    chain.leaf.verify_directly_issued_by(chain.intermediate)
    assert chain.leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
