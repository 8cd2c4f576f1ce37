"""Pre-shared-key handshake for the loopback TCP channel: mutual HMAC challenge-response.

    client -> server   MAGIC || client_nonce (32)
    server -> client   MAGIC || server_nonce (32) || HMAC(psk, "server" context)
    client -> server   HMAC(psk, "client" context)

where context = label || client_nonce || server_nonce. Each side proves knowledge of the key over
a nonce the other side chose, the role label keeps one side's proof from being reflected as the
other's, and comparisons are constant-time. A failure closes the connection without saying why
to the peer (the reason goes to the local log).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from pathlib import Path
from typing import Protocol

from enclave.rng import SYSTEM_RNG, Rng
from enclave.transport.errors import HandshakeError

MAGIC = b"MPCEPSK1"
NONCE_BYTES = 32
MAC_BYTES = 32
MIN_PSK_BYTES = 32
_LABEL_SERVER = b"mpc-signer/enclave-channel/v1/server-proof"
_LABEL_CLIENT = b"mpc-signer/enclave-channel/v1/client-proof"


class Reader(Protocol):
    """What the handshake reads through (an asyncio.StreamReader, or a connection in raw mode)."""

    async def readexactly(self, n: int) -> bytes: ...


class Writer(Protocol):
    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...


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


async def _read(reader: Reader, n: int, what: str) -> bytes:
    try:
        return await reader.readexactly(n)
    except asyncio.IncompleteReadError:
        raise HandshakeError(f"peer closed the connection during the handshake ({what})") from None


async def client_handshake(
    reader: Reader,
    writer: Writer,
    psk: bytes,
    timeout: float,
    rng: Rng = SYSTEM_RNG,
) -> None:
    async def run() -> None:
        client_nonce = rng.random_bytes(NONCE_BYTES)
        writer.write(MAGIC + client_nonce)
        await writer.drain()
        reply = await _read(reader, len(MAGIC) + NONCE_BYTES + MAC_BYTES, "server proof")
        if reply[: len(MAGIC)] != MAGIC:
            raise HandshakeError("peer does not speak the enclave channel handshake")
        server_nonce = reply[len(MAGIC) : len(MAGIC) + NONCE_BYTES]
        server_mac = reply[len(MAGIC) + NONCE_BYTES :]
        expected = _proof(psk, _LABEL_SERVER, client_nonce, server_nonce)
        if not hmac.compare_digest(server_mac, expected):
            raise HandshakeError("the enclave did not prove knowledge of the pre-shared key")
        writer.write(_proof(psk, _LABEL_CLIENT, client_nonce, server_nonce))
        await writer.drain()

    try:
        await asyncio.wait_for(run(), timeout)
    except TimeoutError:
        raise HandshakeError(f"handshake not completed within {timeout:g}s") from None


async def server_handshake(
    reader: Reader,
    writer: Writer,
    psk: bytes,
    timeout: float,
    rng: Rng = SYSTEM_RNG,
) -> None:
    async def run() -> None:
        hello = await _read(reader, len(MAGIC) + NONCE_BYTES, "client hello")
        if hello[: len(MAGIC)] != MAGIC:
            raise HandshakeError("peer does not speak the enclave channel handshake")
        client_nonce = hello[len(MAGIC) :]
        server_nonce = rng.random_bytes(NONCE_BYTES)
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
