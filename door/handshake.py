"""Pre-shared-key handshake for the loopback TCP channel: mutual HMAC challenge-response.

    client -> server   MAGIC || client_nonce (32)
    server -> client   MAGIC || server_nonce (32) || HMAC(psk, "server" context)
    client -> server   HMAC(psk, "client" context)

where context = label || client_nonce || server_nonce. Each side proves knowledge of the key over
a nonce the other side chose, the role label keeps one side's proof from being reflected as the
other's, and comparisons are constant-time. A failure closes the connection without saying why
to the peer (the reason goes to the local log).

The server's key is a `ChannelKey`: fixed at start (`--psk-file`), or, with a `KeyReceiver`,
delivered once by an attested host inside the first handshake (door/provisioning.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from door import provisioning
from door.errors import HandshakeError
from mpc.v1 import enclave_pb2 as pb

log = logging.getLogger(__name__)

MAGIC = b"MPCEPSK1"
NONCE_BYTES = 32
MAC_BYTES = 32
MIN_PSK_BYTES = 32
_LABEL_SERVER = b"mpc-signer/enclave-channel/v1/server-proof"
_LABEL_CLIENT = b"mpc-signer/enclave-channel/v1/client-proof"


class ByteReader(Protocol):
    """What the handshake reads through (an asyncio.StreamReader, or a connection in raw mode)."""

    async def readexactly(self, n: int) -> bytes: ...


class ByteWriter(Protocol):
    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...


class KeyReceiver(Protocol):
    """The enclave's half of attested provisioning (built in the enclave's composition root)."""

    def offer(self, host_nonce: bytes) -> pb.ChannelKeyOffer: ...

    def unwrap(self, delivery: pb.ChannelKeyDelivery, host_nonce: bytes) -> bytes: ...


# Randomness is a parameter (`secrets.token_bytes` unless a test passes its own): n -> n bytes.
TokenBytes = Callable[[int], bytes]

# Host side: raises HandshakeError unless the offer's document is one the host trusts.
OfferVerifier = Callable[[pb.ChannelKeyOffer, bytes], None]


class ChannelKey:
    """The key a server proves: fixed, or empty until the first attested delivery (then fixed for
    the life of the process: trust on first use, see provisioning.py)."""

    def __init__(self, psk: bytes | None = None, receiver: KeyReceiver | None = None) -> None:
        if psk is None and receiver is None:
            raise ValueError("a channel key needs a pre-shared key or a receiver for one")
        self._psk = psk
        self.receiver = receiver

    @property
    def value(self) -> bytes | None:
        return self._psk

    def claim(self, psk: bytes) -> bytes:
        """Keep `psk` if no key is set yet; the key in force either way."""
        if self._psk is None:
            self._psk = psk
        return self._psk

    def __repr__(self) -> str:
        return f"ChannelKey(set={self._psk is not None}, provisioning={self.receiver is not None})"


def load_psk(path: str | Path) -> bytes:
    """A pre-shared key file: hex text of at least 32 bytes (e.g. `openssl rand -hex 32`)."""
    text = Path(path).read_text(encoding="ascii").strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise ValueError(f"{path}: pre-shared key file must contain hex text") from None
    if len(key) < MIN_PSK_BYTES:
        raise ValueError(f"{path}: pre-shared key must be at least {MIN_PSK_BYTES} bytes, got {len(key)}")
    return key


def _proof(psk: bytes, label: bytes, client_nonce: bytes, server_nonce: bytes) -> bytes:
    return hmac.new(psk, label + client_nonce + server_nonce, hashlib.sha256).digest()


async def _read(reader: ByteReader, n: int, what: str) -> bytes:
    try:
        return await reader.readexactly(n)
    except asyncio.IncompleteReadError:
        raise HandshakeError(f"peer closed the connection during the handshake ({what})") from None


async def client_handshake(
    reader: ByteReader,
    writer: ByteWriter,
    psk: bytes,
    timeout: float,
    token_bytes: TokenBytes = secrets.token_bytes,
    verify_offer: OfferVerifier | None = None,
) -> None:
    """The host's side. With `verify_offer`, an enclave that has no key yet is given `psk` once
    the verifier accepted its attested offer; without it such an enclave is refused."""

    async def run() -> None:
        client_nonce = token_bytes(NONCE_BYTES)
        writer.write(MAGIC + client_nonce)
        await writer.drain()
        magic = await _read(reader, len(MAGIC), "server hello")
        if magic == provisioning.PROVISION_MAGIC:
            if verify_offer is None:
                raise HandshakeError(
                    "the enclave has no channel key yet and this host does not provision one "
                    '(enclave.psk_provisioning = "attested")'
                )
            length = provisioning.decode_length(await _read(reader, 4, "channel-key offer"))
            offer = provisioning.parse_offer(await _read(reader, length, "channel-key offer"))
            verify_offer(offer, client_nonce)
            delivery = provisioning.wrap_psk(psk, offer.enclave_public_key, client_nonce, token_bytes)
            writer.write(provisioning.encode_message(delivery))
            await writer.drain()
            magic = await _read(reader, len(MAGIC), "server hello after provisioning")
        if magic != MAGIC:
            raise HandshakeError("peer does not speak the enclave channel handshake")
        reply = await _read(reader, NONCE_BYTES + MAC_BYTES, "server proof")
        server_nonce = reply[:NONCE_BYTES]
        server_mac = reply[NONCE_BYTES:]
        expected = _proof(psk, _LABEL_SERVER, client_nonce, server_nonce)
        if not hmac.compare_digest(server_mac, expected):
            raise HandshakeError(
                "the enclave did not prove knowledge of the pre-shared key (an enclave that takes its key "
                "at first contact holds another one: someone else claimed its channel; restart it)"
            )
        writer.write(_proof(psk, _LABEL_CLIENT, client_nonce, server_nonce))
        await writer.drain()

    try:
        await asyncio.wait_for(run(), timeout)
    except TimeoutError:
        raise HandshakeError(f"handshake not completed within {timeout:g}s") from None


async def server_handshake(
    reader: ByteReader,
    writer: ByteWriter,
    key: ChannelKey,
    timeout: float,
    token_bytes: TokenBytes = secrets.token_bytes,
    peer: object = "local peer",
) -> None:
    async def run() -> None:
        hello = await _read(reader, len(MAGIC) + NONCE_BYTES, "client hello")
        if hello[: len(MAGIC)] != MAGIC:
            raise HandshakeError("peer does not speak the enclave channel handshake")
        client_nonce = hello[len(MAGIC) :]
        psk = key.value
        if psk is None:
            psk = await _provision(reader, writer, key, client_nonce, peer)
        server_nonce = token_bytes(NONCE_BYTES)
        writer.write(MAGIC + server_nonce + _proof(psk, _LABEL_SERVER, client_nonce, server_nonce))
        await writer.drain()
        client_mac = await _read(reader, MAC_BYTES, "client proof")
        expected = _proof(psk, _LABEL_CLIENT, client_nonce, server_nonce)
        if not hmac.compare_digest(client_mac, expected):
            raise HandshakeError("the host did not prove knowledge of the pre-shared key")

    try:
        await asyncio.wait_for(run(), timeout)
    except TimeoutError:
        raise HandshakeError(f"handshake not completed within {timeout:g}s") from None


async def _provision(
    reader: ByteReader, writer: ByteWriter, key: ChannelKey, client_nonce: bytes, peer: object
) -> bytes:
    receiver = key.receiver
    assert receiver is not None  # a ChannelKey without a key has a receiver
    writer.write(provisioning.PROVISION_MAGIC + provisioning.encode_message(receiver.offer(client_nonce)))
    await writer.drain()
    length = provisioning.decode_length(await _read(reader, 4, "channel-key delivery"))
    delivery = provisioning.parse_delivery(await _read(reader, length, "channel-key delivery"))
    delivered = receiver.unwrap(delivery, client_nonce)
    if len(delivered) < MIN_PSK_BYTES:
        raise HandshakeError(f"delivered channel key is shorter than {MIN_PSK_BYTES} bytes")
    kept = key.claim(delivered)
    if kept is delivered:
        log.warning("channel key delivered by %s at first contact; it authenticates every connection from now on", peer)
    else:
        log.warning("a second channel-key delivery from %s was ignored: the key was already delivered", peer)
    return kept
