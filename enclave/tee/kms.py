"""KMS sealing for Nitro: blobs sealed under a data key that only this measured enclave can obtain.

Envelope encryption. The enclave asks AWS KMS `GenerateDataKey` with a `Recipient`: an attestation
document carrying a fresh RSA-2048 public key held only in enclave memory. KMS checks the key
policy against the document (e.g. `kms:RecipientAttestation:ImageSha384`) and answers with
`CiphertextBlob` (the data key under the KMS key, safe to store) and `CiphertextForRecipient`
(the data key in a CMS EnvelopedData for the enclave's RSA key); the plaintext never leaves KMS
otherwise. After a restart, `Decrypt` with a new `Recipient` recovers the data key from the
`CiphertextBlob` kept in each blob's header.

Blob format: the common sealing envelope (enclave/sealing.py) with kind "kms" and parameters
`u16 len || CiphertextBlob || 16-byte salt`; the blob's key is HKDF-SHA256(data key, salt) as in
the local sealer, and the associated data is the header plus the caller's `Binding`.

The one property the enclave cannot check for itself: that the KMS answers are really from KMS.
A host that could substitute `CiphertextForRecipient` could hand the enclave a data key of its
own choosing (the enclave's RSA public key is in the attestation document, which is public). So
the `KmsClient` used in production must terminate TLS to KMS *inside* the enclave (the parent's
vsock-proxy only forwards TCP): see enclave/tee/kms_http.py. A client that relays KMS responses
through the host voids the guarantee.

Not protected: Python cannot wipe memory; the data keys and the RSA private key live in enclave
process memory for its lifetime (the enclave boundary is what protects them).
"""

from __future__ import annotations

import struct
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Final, Protocol

from asn1crypto import cms
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, OAEP
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from enclave.crypto.rng import SYSTEM_RNG, Rng
from enclave.errors import LocalError
from enclave.sealing import (
    NONCE_LEN,
    Binding,
    SealedBlobCorrupt,
    SealerConfigError,
    SealingError,
    encode_header,
    parse_envelope,
)
from enclave.tee.attestation import NITRO_MODE, Attestor

KMS_KIND: Final = "kms"
DATA_KEY_LEN: Final = 32
SALT_LEN: Final = 16
RSA_BITS: Final = 2048
RECIPIENT_USER_DATA: Final = b"mpc-signer/kms-recipient/v1"
# KMS's name for the key-transport algorithm we ask for in `Recipient`.
KEY_ENCRYPTION_ALGORITHM: Final = "RSAES_OAEP_SHA_256"
_DEK_INFO: Final = b"mpc-signer/sealing/v1/kms-dek/aes-256-gcm"
_MAX_CIPHERTEXT_BLOB: Final = 4096
_MAX_CMS: Final = 16 * 1024
_CACHE_SIZE: Final = 64


class KmsUnavailable(LocalError):
    """KMS could not be reached or refused the call; retryable, nothing was unsealed."""


class KmsResponseInvalid(SealingError):
    """A KMS answer that cannot be trusted or opened. The message is the same for every cause
    after the RSA step, so the enclave is no oracle for the content of a tampered envelope."""


class KmsClient(Protocol):
    """The two KMS calls, each with `Recipient` = (attestation document, RSAES_OAEP_SHA_256).

    Both return the decoded JSON answer with binary fields as bytes: `generate_data_key` ->
    {"KeyId", "CiphertextBlob", "CiphertextForRecipient"}; `decrypt` -> {"KeyId",
    "CiphertextForRecipient"}. Errors raise `KmsUnavailable`.
    """

    def generate_data_key(self, key_id: str, recipient_document: bytes) -> Mapping[str, object]: ...

    def decrypt(self, ciphertext_blob: bytes, recipient_document: bytes, key_id: str) -> Mapping[str, object]: ...


def open_cms_for_recipient(envelope: bytes, private_key: rsa.RSAPrivateKey) -> bytes:
    """The data key inside KMS's `CiphertextForRecipient`, after checking every algorithm.

    Accepted, and nothing else: ContentInfo(envelopedData) with exactly one KeyTransRecipientInfo
    using RSAES-OAEP (SHA-256, MGF1-SHA-256, empty label), content encrypted with AES-256-CBC.
    """
    if not isinstance(envelope, bytes) or not 0 < len(envelope) <= _MAX_CMS:
        raise KmsResponseInvalid("CiphertextForRecipient missing or too large")
    encrypted_key, iv, ciphertext = _envelope_parts(envelope)
    if not isinstance(iv, bytes) or len(iv) != 16:
        raise KmsResponseInvalid("AES-256-CBC IV must be 16 bytes")
    if not isinstance(ciphertext, bytes) or not ciphertext or len(ciphertext) % 16:
        raise KmsResponseInvalid("encrypted content missing or not whole AES blocks")
    if not isinstance(encrypted_key, bytes) or len(encrypted_key) != private_key.key_size // 8:
        raise KmsResponseInvalid("encrypted key length does not match the recipient key")
    try:
        content_key = private_key.decrypt(
            encrypted_key, OAEP(mgf=MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
        )
    except ValueError:
        raise KmsResponseInvalid("recipient key cannot open the envelope (not encrypted to this enclave)") from None
    # From here one message for every failure: padding and length must not be told apart.
    unusable = "envelope content does not yield a 32-byte data key"
    if len(content_key) != 32:
        raise KmsResponseInvalid(unusable)
    decryptor = Cipher(algorithms.AES(content_key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    try:
        data_key = unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise KmsResponseInvalid(unusable) from None
    if len(data_key) != DATA_KEY_LEN:
        raise KmsResponseInvalid(unusable)
    return data_key


def _envelope_parts(envelope: bytes) -> tuple[object, object, object]:
    """(encrypted key, IV, ciphertext) of a CMS EnvelopedData, its algorithms checked as
    `open_cms_for_recipient` says; their types and sizes are the caller's to check."""
    try:
        info = cms.ContentInfo.load(ber_to_der(envelope), strict=True)
        if info["content_type"].native != "enveloped_data":
            raise KmsResponseInvalid("CiphertextForRecipient is not CMS EnvelopedData")
        enveloped = info["content"]
        recipients = enveloped["recipient_infos"]
        if len(recipients) != 1 or recipients[0].name != "ktri":
            raise KmsResponseInvalid("expected exactly one key-transport recipient")
        ktri = recipients[0].chosen
        kea = ktri["key_encryption_algorithm"]
        if kea["algorithm"].native != "rsaes_oaep":
            raise KmsResponseInvalid(f"key transport {kea['algorithm'].dotted} is not RSAES-OAEP")
        _check_oaep(kea["parameters"])
        encrypted_key = ktri["encrypted_key"].native
        content_info = enveloped["encrypted_content_info"]
        cea = content_info["content_encryption_algorithm"]
        if cea["algorithm"].native != "aes256_cbc":
            raise KmsResponseInvalid(f"content encryption {cea['algorithm'].dotted} is not AES-256-CBC")
        iv = cea["parameters"].native
        ciphertext = content_info["encrypted_content"].native
    except KmsResponseInvalid:
        raise
    except (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError) as exc:
        raise KmsResponseInvalid("CiphertextForRecipient is not well-formed CMS") from exc
    return encrypted_key, iv, ciphertext


def _check_oaep(oaep: Any) -> None:
    """RSAES-OAEP with SHA-256, MGF1-SHA-256 and an empty label, or KmsResponseInvalid."""
    if (
        oaep["hash_algorithm"]["algorithm"].native != "sha256"
        or oaep["mask_gen_algorithm"]["algorithm"].native != "mgf1"
        or oaep["mask_gen_algorithm"]["parameters"]["algorithm"].native != "sha256"
        or oaep["p_source_algorithm"]["algorithm"].native != "p_specified"
        or oaep["p_source_algorithm"]["parameters"].native != b""
    ):
        raise KmsResponseInvalid("RSAES-OAEP parameters are not SHA-256 / MGF1-SHA-256 / empty label")


_MAX_BER_DEPTH: Final = 24
_TAG_OCTET_STRING: Final = 0x04
_TAG_OID: Final = 0x06
_TAG_CONTEXT_0_CONSTRUCTED: Final = 0xA0
_TAG_CONTEXT_0_PRIMITIVE: Final = 0x80


def ber_to_der(data: bytes) -> bytes:
    """Re-encode KMS's BER CMS with definite lengths and merged string chunks.

    KMS streams CiphertextForRecipient: the outer structures use indefinite lengths and the
    encrypted content may come as a constructed [0] of OCTET STRING chunks. asn1crypto reads
    neither, so this turns exactly those two forms into their DER shape; anything else that is
    not plain TLV (high tag numbers, lengths over 4 bytes, truncation, nesting deeper than
    `_MAX_BER_DEPTH`) raises ValueError.
    """
    out, end = _ber_items(data, 0, len(data), 0)
    if end != len(data):
        raise ValueError("trailing bytes after BER content")
    return out


def _ber_items(data: bytes, pos: int, end: int | None, depth: int) -> tuple[bytes, int]:
    """Items from `pos` to `end`, or up to an end-of-contents marker when `end` is None."""
    if depth > _MAX_BER_DEPTH:
        raise ValueError("BER nesting too deep")
    items: list[tuple[int, bytes]] = []
    while True:
        if end is None:
            if data[pos : pos + 2] == b"\x00\x00":
                pos += 2
                break
            if pos >= len(data):
                raise ValueError("missing end-of-contents")
        elif pos >= end:
            break
        tag, content, pos = _ber_item(data, pos, depth, after_oid=bool(items) and items[0][0] == _TAG_OID)
        items.append((tag, content))
    if end is not None and pos != end:
        raise ValueError("BER element overruns its parent")
    return b"".join(bytes([tag]) + _der_length(len(content)) + content for tag, content in items), pos


def _ber_item(data: bytes, pos: int, depth: int, *, after_oid: bool) -> tuple[int, bytes, int]:
    if pos + 2 > len(data):
        raise ValueError("truncated BER header")
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if tag & 0x1F == 0x1F:
        raise ValueError("high tag numbers do not occur in this structure")
    constructed = bool(tag & 0x20)
    if first == 0x80:
        if not constructed:
            raise ValueError("indefinite length on a primitive element")
        content_end = None
    else:
        if first & 0x80:
            count = first & 0x7F
            if not 1 <= count <= 4 or pos + count > len(data):
                raise ValueError("bad BER length")
            length = int.from_bytes(data[pos : pos + count], "big")
            pos += count
        else:
            length = first
        if pos + length > len(data):
            raise ValueError("BER element runs past the data")
        content_end = pos + length
    if not constructed:
        assert content_end is not None
        return tag, data[pos:content_end], content_end
    content, pos = _ber_items(data, pos, content_end, depth + 1)
    # A constructed OCTET STRING, or the [0] IMPLICIT OCTET STRING of an EncryptedContentInfo
    # (a SEQUENCE that starts with an OID) sent in chunks: merge into the primitive form.
    if tag == _TAG_OCTET_STRING | 0x20 or (tag == _TAG_CONTEXT_0_CONSTRUCTED and after_oid):
        chunks = _octet_chunks(content)
        if chunks is not None:
            return (_TAG_OCTET_STRING if tag != _TAG_CONTEXT_0_CONSTRUCTED else _TAG_CONTEXT_0_PRIMITIVE), chunks, pos
    return tag, content, pos


def _octet_chunks(der: bytes) -> bytes | None:
    """The concatenated contents if `der` is one or more primitive OCTET STRINGs, else None."""
    merged = bytearray()
    pos = 0
    while pos < len(der):
        if der[pos] != _TAG_OCTET_STRING:
            return None
        first = der[pos + 1]
        pos += 2
        if first & 0x80:  # our own output: definite, at most 4 length bytes
            count = first & 0x7F
            length = int.from_bytes(der[pos : pos + count], "big")
            pos += count
        else:
            length = first
        merged += der[pos : pos + length]
        pos += length
    return bytes(merged) if pos else None


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


class KmsSealer:
    """`Sealer` of kind "kms". One data key per process, fetched on first seal; data keys of older
    blobs recovered through `Decrypt` on first use and cached (bounded) in enclave memory."""

    def __init__(self, client: KmsClient, key_id: str, attestor: Attestor, rng: Rng = SYSTEM_RNG) -> None:
        if attestor.mode != NITRO_MODE:
            raise SealerConfigError(
                "KMS sealing needs Nitro attestation: KMS releases data keys only to an attested enclave"
            )
        if not key_id:
            raise SealerConfigError("KMS key id must be set")
        self._client = client
        self._key_id = key_id
        self._attestor = attestor
        self._rng = rng
        self._rsa = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
        self._lock = threading.Lock()
        self._current: tuple[bytes, bytes] | None = None  # (CiphertextBlob, data key)
        self._cache: OrderedDict[bytes, bytes] = OrderedDict()

    def __repr__(self) -> str:
        return f"KmsSealer(key_id={self._key_id!r})"

    @property
    def kind(self) -> str:
        return KMS_KIND

    def seal(self, plaintext: bytes, binding: Binding) -> bytes:
        ciphertext_blob, data_key = self._data_key_for_sealing()
        salt = self._rng.random_bytes(SALT_LEN)
        nonce = self._rng.random_bytes(NONCE_LEN)
        header = encode_header(KMS_KIND, struct.pack(">H", len(ciphertext_blob)) + ciphertext_blob + salt)
        return header + nonce + AESGCM(_blob_key(data_key, salt)).encrypt(nonce, plaintext, header + binding.encode())

    def unseal(self, blob: bytes, binding: Binding) -> bytes:
        env = parse_envelope(blob)
        if env.kind != KMS_KIND:
            raise SealedBlobCorrupt("kind", f"blob was sealed by the {env.kind!r} sealer, not {KMS_KIND!r}")
        params = env.params
        if len(params) < 2 + SALT_LEN:
            raise SealedBlobCorrupt("header", "KMS sealer parameters too short")
        (blob_len,) = struct.unpack(">H", params[:2])
        if not 0 < blob_len <= _MAX_CIPHERTEXT_BLOB or len(params) != 2 + blob_len + SALT_LEN:
            raise SealedBlobCorrupt("header", "KMS sealer parameters have the wrong length")
        ciphertext_blob, salt = params[2 : 2 + blob_len], params[2 + blob_len :]
        data_key = self._data_key_for_unsealing(ciphertext_blob)
        try:
            return AESGCM(_blob_key(data_key, salt)).decrypt(env.nonce, env.body, env.header + binding.encode())
        except InvalidTag:
            raise SealedBlobCorrupt(
                "authentication", "tag check failed: the blob was altered or belongs to another key/party/purpose"
            ) from None

    # --- data keys --------------------------------------------------------------------------

    def _recipient_document(self) -> bytes:
        spki = self._rsa.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        # A fresh document per call: KMS refuses stale ones.
        attestation = self._attestor.attest(
            public_key=spki, user_data=RECIPIENT_USER_DATA, nonce=self._rng.random_bytes(32)
        )
        if attestation.mode != NITRO_MODE or not attestation.document:
            raise SealerConfigError("attestor returned no Nitro attestation document")
        return attestation.document

    def _data_key_for_sealing(self) -> tuple[bytes, bytes]:
        with self._lock:
            if self._current is None:
                answer = self._client.generate_data_key(self._key_id, self._recipient_document())
                ciphertext_blob = _answer_bytes(answer, "CiphertextBlob", _MAX_CIPHERTEXT_BLOB)
                data_key = self._open(answer)
                self._current = (ciphertext_blob, data_key)
                self._remember(ciphertext_blob, data_key)
            return self._current

    def _data_key_for_unsealing(self, ciphertext_blob: bytes) -> bytes:
        with self._lock:
            data_key = self._cache.get(ciphertext_blob)
            if data_key is not None:
                self._cache.move_to_end(ciphertext_blob)
                return data_key
            answer = self._client.decrypt(ciphertext_blob, self._recipient_document(), self._key_id)
            data_key = self._open(answer)
            self._remember(ciphertext_blob, data_key)
            return data_key

    def _open(self, answer: Mapping[str, object]) -> bytes:
        if answer.get("Plaintext") not in (None, b""):
            # With a Recipient KMS never returns the plaintext; if it is here, it was exposed.
            raise KmsResponseInvalid("KMS answer carries a plaintext data key; refusing to use an exposed key")
        answered_key = answer.get("KeyId")
        if self._key_id.startswith("arn:") and answered_key != self._key_id:
            raise KmsResponseInvalid("KMS answered for another key than the configured one")
        return open_cms_for_recipient(_answer_bytes(answer, "CiphertextForRecipient", _MAX_CMS), self._rsa)

    def _remember(self, ciphertext_blob: bytes, data_key: bytes) -> None:
        self._cache[ciphertext_blob] = data_key
        self._cache.move_to_end(ciphertext_blob)
        while len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)


def _answer_bytes(answer: Mapping[str, object], name: str, limit: int) -> bytes:
    value = answer.get(name)
    if not isinstance(value, bytes) or not 0 < len(value) <= limit:
        raise KmsResponseInvalid(f"KMS answer lacks a valid {name}")
    return value


def _blob_key(data_key: bytes, salt: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=_DEK_INFO).derive(data_key)
