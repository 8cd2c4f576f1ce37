"""KMS sealing against a KMS stand-in that answers the way AWS KMS does with a Recipient.

The stand-in checks the recipient attestation document with the SDK verifier (test CA chain and
the expected PCR0, as a key policy on kms:RecipientAttestation:PCR0 would), keeps data keys
under its own AES-GCM master key (its CiphertextBlob), and answers CiphertextForRecipient as a
real CMS EnvelopedData built here with asn1crypto: RSAES-OAEP-SHA-256 to the document's public
key, AES-256-CBC content.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import cbor2
import pytest
from asn1crypto import algos, cms, core
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, OAEP, PKCS1v15
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from enclave.sealing import Binding, LocalSealer, MultiSealer, SealedBlobCorrupt, SealerConfigError, blob_kind
from enclave.tee.attestation import Attestation, NoneAttestor
from enclave.tee.kms import (
    RECIPIENT_USER_DATA,
    KmsResponseInvalid,
    KmsSealer,
    ber_to_der,
    open_cms_for_recipient,
)
from signer.client.attestation import verify_attestation
from tests.tee.nitro_docs import PCR0, CaChain, DocSpec, make_chain, make_document

KEY_ARN = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
BINDING = Binding(key_id="k1", protocol="frost-ed25519", party_id=2, purpose="share")
OAEP_SHA256 = OAEP(mgf=MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


# --- CMS EnvelopedData as KMS builds it -----------------------------------------------------


@dataclass
class CmsShape:
    """What to put in the envelope; tests change one field at a time."""

    key_transport: str = "rsaes_oaep"
    oaep_hash: str = "sha256"
    mgf_hash: str = "sha256"
    content_cipher: str = "aes256_cbc"
    cek_len: int = 32
    recipients: int = 1


def build_cms(data_key: bytes, recipient: rsa.RSAPublicKey, shape: CmsShape | None = None) -> bytes:
    shape = shape or CmsShape()
    cek, iv = os.urandom(shape.cek_len), os.urandom(16)
    padder = padding.PKCS7(128).padder()
    encryptor = Cipher(algorithms.AES(cek if len(cek) in (16, 24, 32) else cek[:32]), modes.CBC(iv)).encryptor()
    content = encryptor.update(padder.update(data_key) + padder.finalize()) + encryptor.finalize()
    if shape.key_transport == "rsaes_oaep":
        oaep = OAEP(
            mgf=MGF1(algorithm=getattr(hashes, shape.mgf_hash.upper())()),
            algorithm=getattr(hashes, shape.oaep_hash.upper())(),
            label=None,
        )
        encrypted_key = recipient.encrypt(cek, oaep)
        kea = cms.KeyEncryptionAlgorithm(
            {
                "algorithm": "rsaes_oaep",
                "parameters": algos.RSAESOAEPParams(
                    {
                        "hash_algorithm": {"algorithm": shape.oaep_hash},
                        "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": {"algorithm": shape.mgf_hash}},
                    }
                ),
            }
        )
    else:
        encrypted_key = recipient.encrypt(cek, PKCS1v15())
        kea = cms.KeyEncryptionAlgorithm({"algorithm": "rsaes_pkcs1v15"})
    ktri = cms.RecipientInfo(
        name="ktri",
        value=cms.KeyTransRecipientInfo(
            {
                "version": "v2",
                "rid": cms.RecipientIdentifier(name="subject_key_identifier", value=b"\x01" * 20),
                "key_encryption_algorithm": kea,
                "encrypted_key": encrypted_key,
            }
        ),
    )
    enveloped = cms.EnvelopedData(
        {
            "version": "v2",
            "recipient_infos": [ktri] * shape.recipients,
            "encrypted_content_info": {
                "content_type": "data",
                "content_encryption_algorithm": {"algorithm": shape.content_cipher, "parameters": core.OctetString(iv)},
                "encrypted_content": content,
            },
        }
    )
    return cms.ContentInfo({"content_type": "enveloped_data", "content": enveloped}).dump()


def _der_len(n: int) -> bytes:
    if n < 128:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def to_streamed_ber(der: bytes, chunk: int = 16, content: bytes | None = None) -> bytes:
    """The DER envelope re-encoded the way a streaming CMS encoder (as KMS uses) writes it: every
    constructed element with indefinite length, the [0] encrypted content as a constructed
    string of OCTET STRING chunks."""
    if content is None:
        content = cms.ContentInfo.load(der)["content"]["encrypted_content_info"]["encrypted_content"].native
    out = bytearray()
    pos = 0
    while pos < len(der):
        tag, first = der[pos], der[pos + 1]
        pos += 2
        if first & 0x80:
            count = first & 0x7F
            length = int.from_bytes(der[pos : pos + count], "big")
            pos += count
        else:
            length = first
        value = der[pos : pos + length]
        pos += length
        if tag & 0x20:
            out += bytes([tag, 0x80]) + to_streamed_ber(value, chunk, content) + b"\x00\x00"
        elif tag == 0x80 and value == content:  # [0] IMPLICIT OCTET STRING: the encrypted content
            pieces = [value[i : i + chunk] for i in range(0, len(value), chunk)]
            out += b"\xa0\x80" + b"".join(b"\x04" + _der_len(len(p)) + p for p in pieces) + b"\x00\x00"
        else:
            out += bytes([tag]) + _der_len(len(value)) + value
    return bytes(out)


# --- KMS stand-in -------------------------------------------------------------------------


@dataclass
class FakeKms:
    chain: CaChain
    master: bytes = field(default_factory=lambda: AESGCM.generate_key(256))
    calls: list[str] = field(default_factory=list)
    shape: CmsShape = field(default_factory=CmsShape)
    tamper: Callable[[dict[str, object]], None] | None = None
    streamed: bool = True  # answer in BER with indefinite lengths, as KMS does

    def _recipient_key(self, document: bytes) -> rsa.RSAPublicKey:
        payload = cbor2.loads(cbor2.loads(document).value[2])
        verified = verify_attestation(
            document,
            expected_pcrs={0: PCR0},
            nonce=payload["nonce"],
            now=datetime.fromtimestamp(payload["timestamp"] / 1000, UTC),
            root=self.chain.root,
        )
        assert verified.user_data == RECIPIENT_USER_DATA
        key = serialization.load_der_public_key(verified.public_key or b"")
        assert isinstance(key, rsa.RSAPublicKey) and key.key_size == 2048
        return key

    def _answer(self, data_key: bytes, document: bytes, extra: Mapping[str, object]) -> dict[str, object]:
        answer: dict[str, object] = {
            "KeyId": KEY_ARN,
            "CiphertextForRecipient": self._encode(build_cms(data_key, self._recipient_key(document), self.shape)),
            "Plaintext": None,
            **extra,
        }
        if self.tamper:
            self.tamper(answer)
        return answer

    def _encode(self, der: bytes) -> bytes:
        return to_streamed_ber(der) if self.streamed else der

    def generate_data_key(self, key_id: str, recipient_document: bytes) -> Mapping[str, object]:
        assert key_id == KEY_ARN
        self.calls.append("GenerateDataKey")
        data_key, nonce = os.urandom(32), os.urandom(12)
        blob = nonce + AESGCM(self.master).encrypt(nonce, data_key, key_id.encode())
        return self._answer(data_key, recipient_document, {"CiphertextBlob": blob})

    def decrypt(self, ciphertext_blob: bytes, recipient_document: bytes, key_id: str) -> Mapping[str, object]:
        self.calls.append("Decrypt")
        data_key = AESGCM(self.master).decrypt(ciphertext_blob[:12], ciphertext_blob[12:], key_id.encode())
        return self._answer(data_key, recipient_document, {})


class DocAttestor:
    """Stands in for NitroAttestor: documents from the test CA chain, binding the given key."""

    mode = "nitro"

    def __init__(self, chain: CaChain) -> None:
        self.chain = chain

    def attest(self, *, public_key: bytes, user_data: bytes, nonce: bytes) -> Attestation:
        doc = make_document(
            self.chain,
            DocSpec(
                public_key=public_key,
                user_data=user_data,
                nonce=nonce,
                timestamp=datetime.now(UTC).replace(microsecond=0),
            ),
        )
        return Attestation("nitro", doc, "test")


@pytest.fixture(scope="module")
def chain() -> CaChain:
    from datetime import timedelta

    now = datetime.now(UTC)
    return make_chain(leaf_not_before=now - timedelta(hours=1), leaf_not_after=now + timedelta(hours=3))


@pytest.fixture
def kms(chain: CaChain) -> FakeKms:
    return FakeKms(chain)


def sealer_for(kms: FakeKms) -> KmsSealer:
    return KmsSealer(kms, KEY_ARN, DocAttestor(kms.chain))


# --- tests --------------------------------------------------------------------------------


def test_round_trip_and_restart(kms: FakeKms) -> None:
    sealer = sealer_for(kms)
    blobs = [sealer.seal(f"share {i}".encode(), BINDING) for i in range(3)]
    assert all(blob_kind(b) == "kms" for b in blobs)
    assert [sealer.unseal(b, BINDING) for b in blobs] == [b"share 0", b"share 1", b"share 2"]
    assert kms.calls == ["GenerateDataKey"]  # one data key, cached in enclave memory

    restarted = sealer_for(kms)  # new process: new RSA key, empty cache
    assert [restarted.unseal(b, BINDING) for b in blobs] == [b"share 0", b"share 1", b"share 2"]
    assert kms.calls == ["GenerateDataKey", "Decrypt"]


@pytest.mark.parametrize("streamed", [True, False])
def test_ber_and_der_envelopes(kms: FakeKms, streamed: bool) -> None:
    kms.streamed = streamed
    sealer = sealer_for(kms)
    assert sealer.unseal(sealer.seal(b"share", BINDING), BINDING) == b"share"


def test_streamed_ber_normalises_to_the_der_encoding() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    der = build_cms(os.urandom(32), key.public_key())
    for chunk in (1, 7, 16, 1000):
        ber = to_streamed_ber(der, chunk)
        assert ber != der and ber_to_der(ber) == der
    ber = to_streamed_ber(der)
    for bad in (
        ber[:-2],
        ber[:-1],
        ber + b"\x00",
        b"\x30\x80\x02\x01\x00",
        b"\x1f\x01\x00",
        b"\x30\x85" + b"\x00" * 5,
        b"\x04\x80\x00\x00",
        b"\x30\x03\x04\x05abcde",
    ):
        with pytest.raises(ValueError):
            ber_to_der(bad)
    with pytest.raises(ValueError, match="too deep"):
        ber_to_der(b"\x30\x80" * 40 + b"\x00\x00" * 40)


def test_blob_header_holds_the_ciphertext_blob_not_the_key(kms: FakeKms) -> None:
    sealer = sealer_for(kms)
    blob = sealer.seal(b"secret share", BINDING)
    assert b"secret share" not in blob
    assert sealer._current is not None and sealer._current[0] in blob and sealer._current[1] not in blob


def test_binding_and_tampering(kms: FakeKms) -> None:
    sealer = sealer_for(kms)
    blob = sealer.seal(b"x", BINDING)
    with pytest.raises(SealedBlobCorrupt) as info:
        sealer.unseal(blob, Binding(key_id="k1", protocol="frost-ed25519", party_id=3, purpose="share"))
    assert info.value.reason == "authentication"
    flipped = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(SealedBlobCorrupt):
        sealer.unseal(flipped, BINDING)


def test_wrong_recipient_key_fails(kms: FakeKms) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kms.tamper = lambda answer: answer.update(CiphertextForRecipient=build_cms(os.urandom(32), other.public_key()))
    with pytest.raises(KmsResponseInvalid, match="not encrypted to this enclave"):
        sealer_for(kms).seal(b"x", BINDING)


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        (CmsShape(key_transport="rsaes_pkcs1v15"), "not RSAES-OAEP"),
        (CmsShape(oaep_hash="sha1", mgf_hash="sha1"), "OAEP parameters"),
        (CmsShape(mgf_hash="sha1"), "OAEP parameters"),
        (CmsShape(content_cipher="aes128_cbc", cek_len=16), "not AES-256-CBC"),
        (CmsShape(content_cipher="aes256_ofb"), "not AES-256-CBC"),
        (CmsShape(recipients=2), "exactly one"),
    ],
)
def test_wrong_algorithms_refused(kms: FakeKms, shape: CmsShape, message: str) -> None:
    kms.shape = shape
    with pytest.raises(KmsResponseInvalid, match=message):
        sealer_for(kms).seal(b"x", BINDING)


def test_truncated_and_garbled_cms_refused() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    good = build_cms(b"k" * 32, key.public_key())
    assert open_cms_for_recipient(good, key) == b"k" * 32
    for bad in (good[:-1], good[: len(good) // 2], good + b"\x00", b"\x30\x03\x02\x01", b"", b"junk" * 10):
        with pytest.raises(KmsResponseInvalid):
            open_cms_for_recipient(bad, key)
    # garbled content: one bit in the last ciphertext block breaks the padding or the length
    info = cms.ContentInfo.load(good)
    eci = info["content"]["encrypted_content_info"]
    content = bytearray(eci["encrypted_content"].native)
    content[-17] ^= 0x80
    eci["encrypted_content"] = bytes(content)
    with pytest.raises(KmsResponseInvalid, match="32-byte data key"):
        open_cms_for_recipient(cms.ContentInfo.load(info.dump(force=True)).dump(), key)
    # a data key of the wrong length is refused with the same message
    with pytest.raises(KmsResponseInvalid, match="32-byte data key"):
        open_cms_for_recipient(build_cms(b"k" * 16, key.public_key()), key)


def test_plaintext_in_answer_refused(kms: FakeKms) -> None:
    kms.tamper = lambda answer: answer.update(Plaintext=os.urandom(32))
    with pytest.raises(KmsResponseInvalid, match="plaintext"):
        sealer_for(kms).seal(b"x", BINDING)


def test_answer_for_another_key_refused(kms: FakeKms) -> None:
    kms.tamper = lambda answer: answer.update(KeyId=KEY_ARN.replace("1234abcd", "ffffffff"))
    with pytest.raises(KmsResponseInvalid, match="another key"):
        sealer_for(kms).seal(b"x", BINDING)


def test_needs_nitro_attestation(kms: FakeKms) -> None:
    with pytest.raises(SealerConfigError, match="Nitro attestation"):
        KmsSealer(kms, KEY_ARN, NoneAttestor())


def test_store_with_local_and_kms_blobs(kms: FakeKms) -> None:
    local = LocalSealer(bytes(range(32)))
    kms_sealer = sealer_for(kms)
    store = {
        "old": local.seal(b"sealed before migration", BINDING),
        "new": kms_sealer.seal(b"sealed on nitro", BINDING),
    }
    assert blob_kind(store["old"]) == "local" and blob_kind(store["new"]) == "kms"
    dispatch = MultiSealer(primary=sealer_for(kms), others=[local])
    assert dispatch.unseal(store["old"], BINDING) == b"sealed before migration"
    assert dispatch.unseal(store["new"], BINDING) == b"sealed on nitro"
    assert blob_kind(dispatch.seal(b"fresh", BINDING)) == "kms"
    with pytest.raises(SealedBlobCorrupt, match="not 'local'"):
        local.unseal(store["new"], BINDING)
