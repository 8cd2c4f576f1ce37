"""Attested delivery of the channel's pre-shared key, inside the handshake (`--psk-provisioning attested`).

A Nitro enclave takes no arguments and its image file sits on the parent, readable by local users,
so a PSK baked into the image would protect nothing against them. Instead the enclave starts
without a key and the host that holds it delivers it at first contact, encrypted to the enclave's
attested identity key:

    host -> enclave    MAGIC || host_nonce (32)                        (the ordinary PSK hello)
    enclave -> host    PROVISION_MAGIC || u32 len || ChannelKeyOffer   (no key yet)
                       the offer's attestation document binds the identity public key, user data
                       USER_DATA and host_nonce to the image's measurements
    host               verifies the document (PCRs, chain, freshness, nonce, key) with its own
                       verifier; refuses to deliver otherwise
    host -> enclave    u32 len || ChannelKeyDelivery                   (PSK encrypted to that key)
    enclave            decrypts; the first key delivered is kept for the life of the process
    enclave -> host    MAGIC || server_nonce || proof(kept key), then the ordinary handshake

so a host only ever hands its key to an enclave whose measurements it checked, and a wrong or
stolen offer (another process listening, a replayed document) gets nothing. Trust on first use:
whoever delivers first owns the channel until the enclave restarts. The legitimate host learns of
a claim by someone else at once, and fails closed: the enclave's proof is then made with the other
key and does not verify, so the host refuses to use that enclave (logged as a claimed channel).

Encryption: ephemeral P-256 ECDH with the identity key, HKDF-SHA256 over a transcript of both
public keys and the host nonce (`_context`, the layout of the enclave's Fiat–Shamir
transcripts, written out here so the door needs neither wing), ChaCha20-Poly1305 with that transcript as
associated data. The ephemeral key is single use, so the AEAD nonce is fixed.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from google.protobuf.message import DecodeError

from door.encoding import lp64, u32
from door.errors import HandshakeError
from mpc.v1 import enclave_pb2 as pb

PROVISION_MAGIC = b"MPCEPRV1"
USER_DATA = b"mpc-signer/enclave-channel-key/v1"
MAX_MESSAGE_BYTES = 64 * 1024
POINT_BYTES = 65
_DOMAIN = "mpc-signer/enclave-channel-key/v1"
_AEAD_NONCE = bytes(12)
_TRANSCRIPT_VERSION = b"mpc-signer/transcript/v1"
# P-256 group order, for drawing the ephemeral scalar from the injected randomness.
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def encode_message(message: pb.ChannelKeyOffer | pb.ChannelKeyDelivery) -> bytes:
    body = message.SerializeToString()
    return u32(len(body)) + body


def decode_length(header: bytes) -> int:
    length = int.from_bytes(header, "big")
    if length > MAX_MESSAGE_BYTES:
        raise HandshakeError(f"provisioning message of {length} bytes exceeds {MAX_MESSAGE_BYTES}")
    return length


def parse_offer(body: bytes) -> pb.ChannelKeyOffer:
    try:
        offer = pb.ChannelKeyOffer.FromString(body)
    except DecodeError:
        raise HandshakeError("the enclave's channel-key offer is not a valid ChannelKeyOffer") from None
    _point(offer.enclave_public_key, "offered enclave key")
    return offer


def parse_delivery(body: bytes) -> pb.ChannelKeyDelivery:
    try:
        return pb.ChannelKeyDelivery.FromString(body)
    except DecodeError:
        raise HandshakeError("the channel-key delivery is not a valid ChannelKeyDelivery") from None


def _point(data: bytes, what: str) -> ec.EllipticCurvePublicKey:
    if len(data) != POINT_BYTES or data[0] != 4:
        raise HandshakeError(f"{what} is not an uncompressed P-256 point")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), data)
    except ValueError:
        raise HandshakeError(f"{what} is not a point on P-256") from None


def _public_bytes(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def _context(host_nonce: bytes, enclave_public: bytes, ephemeral_public: bytes) -> bytes:
    """SHAKE-256 over labelled items, each `lp64(label) || lp64(data)`: the bytes a transcript
    bound to (_DOMAIN, host nonce, "channel-key", round 0, party "host") absorbs for the two
    public keys, then a 32-byte challenge "context" (version 1 of that layout)."""
    items = (
        (b"version", _TRANSCRIPT_VERSION),
        (b"domain", _DOMAIN.encode()),
        (b"session", host_nonce),
        (b"protocol", b"channel-key"),
        (b"round", u32(0)),
        (b"str:party", b"host"),
        (b"bytes:enclave-public-key", enclave_public),
        (b"bytes:ephemeral-public-key", ephemeral_public),
        (b"challenge", b"context/" + u32(32)),
    )
    h = hashlib.shake_256()
    for label, data in items:
        h.update(lp64(label) + lp64(data))
    return h.digest(32)


def _aead(shared: bytes, context: bytes) -> ChaCha20Poly1305:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=context).derive(shared)
    return ChaCha20Poly1305(key)


def wrap_psk(
    psk: bytes,
    enclave_public: bytes,
    host_nonce: bytes,
    token_bytes: Callable[[int], bytes] = secrets.token_bytes,
) -> pb.ChannelKeyDelivery:
    """Encrypt `psk` to the (verified) enclave identity key. Host side."""
    peer = _point(enclave_public, "offered enclave key")
    scalar = int.from_bytes(token_bytes(48), "big") % (_P256_ORDER - 1) + 1
    ephemeral = ec.derive_private_key(scalar, ec.SECP256R1())
    ephemeral_public = _public_bytes(ephemeral)
    context = _context(host_nonce, enclave_public, ephemeral_public)
    shared = ephemeral.exchange(ec.ECDH(), peer)
    ciphertext = _aead(shared, context).encrypt(_AEAD_NONCE, psk, context)
    return pb.ChannelKeyDelivery(ephemeral_public_key=ephemeral_public, ciphertext=ciphertext)


def unwrap_psk(identity: ec.EllipticCurvePrivateKey, delivery: pb.ChannelKeyDelivery, host_nonce: bytes) -> bytes:
    """Decrypt a delivery made to `identity`. Enclave side; HandshakeError for anything wrong."""
    peer = _point(delivery.ephemeral_public_key, "ephemeral key")
    context = _context(host_nonce, _public_bytes(identity), delivery.ephemeral_public_key)
    shared = identity.exchange(ec.ECDH(), peer)
    try:
        return _aead(shared, context).decrypt(_AEAD_NONCE, delivery.ciphertext, context)
    except InvalidTag:
        raise HandshakeError("the channel-key delivery failed authentication") from None
