"""What the engine seals: versioned key-share and presignature records, and the blob around them.

Plaintext records (all integers big-endian, `lp(x)` = u32 length || x):

    key share:    lp("mpc-signer/engine/key-share") u8 version=1
                  lp(protocol) lp(key id) u16 threshold u16 n n*lp(party id) u16 index
                  lp(public key) lp(chain code) lp(protocol share)
    presignature: lp("mpc-signer/engine/presignature") u8 version=2
                  lp(protocol) lp(key id) lp(presignature id) u16 m m*lp(signer party id)
                  u64 sequence lp(protocol presignature)
    pre-parameters: lp("mpc-signer/engine/preparams") u8 version=1 u64 sequence
                  lp(enclave.crypto.primes.encode_pair)

Presignatures and pre-parameters are single use: sealed under the per-boot sealer with the
sequence number this boot assigned them (enclave/engine/singleuse.py). Version 1 presignature
records (sealed by the durable sealer, no sequence) are refused as from an earlier boot.

`parties` is the full ordered DKG party list and `index` this party's 1-based position in it,
so a later signing session can map any signer-set party id to its DKG index. The protocol
share is the protocol's own serialization (FROST: ZF key package and public key package;
GG20: `KeyShare.to_bytes()`, which carries its own version header too).

SealedBlob.data = u8 BLOB_VERSION || u16 party index || sealer envelope (enclave/sealing.py).
The index travels in clear because the enclave needs it to rebuild the binding before it can
open the envelope (a signing request names the signer's party id, not its DKG index); it is
public (a position in the party list) and authenticated all the same, because the binding
(key id, protocol, party index, purpose, item id) is part of the AEAD associated data.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Final

from enclave.errors import InvalidEncoding
from enclave.sealing import Binding, Purpose, Sealer, SealingError

SHARE_MAGIC: Final = b"mpc-signer/engine/key-share"
PRESIGNATURE_MAGIC: Final = b"mpc-signer/engine/presignature"
PREPARAMS_MAGIC: Final = b"mpc-signer/engine/preparams"
RECORD_VERSION: Final = 1
PRESIGNATURE_RECORD_VERSION: Final = 2
PREPARAMS_RECORD_VERSION: Final = 1
BLOB_VERSION: Final = 1
_MAX_FIELD: Final = 1 << 24


class BlobInvalid(Exception):
    """A sealed blob that cannot be used; the message is public (no secret, no plaintext)."""


@dataclass(frozen=True)
class ShareRecord:
    protocol: str
    key_id: str
    threshold: int
    parties: tuple[str, ...]
    index: int  # 1-based position of this party in `parties`
    public_key: bytes
    chain_code: bytes
    share: bytes = field(repr=False)

    @property
    def self_party(self) -> str:
        return self.parties[self.index - 1]

    def encode(self) -> bytes:
        w = _RecordWriter()
        w.lp(SHARE_MAGIC)
        w.u8(RECORD_VERSION)
        w.text(self.protocol)
        w.text(self.key_id)
        w.u16(self.threshold)
        w.u16(len(self.parties))
        for p in self.parties:
            w.text(p)
        w.u16(self.index)
        w.lp(self.public_key)
        w.lp(self.chain_code)
        w.lp(self.share)
        return w.value()

    @classmethod
    def decode(cls, data: bytes) -> ShareRecord:
        r = _RecordReader(data)
        if r.lp() != SHARE_MAGIC:
            raise InvalidEncoding("not a key-share record")
        version = r.u8()
        if version != RECORD_VERSION:
            raise InvalidEncoding(f"key-share record version {version} is not supported")
        protocol, key = r.text(), r.text()
        threshold, n = r.u16(), r.u16()
        parties = tuple(r.text() for _ in range(n))
        index = r.u16()
        rec = cls(protocol, key, threshold, parties, index, r.lp(), r.lp(), r.lp())
        r.end()
        if not 1 <= index <= n or not 1 <= threshold <= n or len(set(parties)) != n:
            raise InvalidEncoding("inconsistent key-share record")
        return rec


@dataclass(frozen=True)
class PresignatureContent:
    """What a sealed presignature blob holds (the host's row for it is signer.storage's StoredPresignature)."""

    protocol: str
    key_id: str
    presignature_id: str
    signers: tuple[str, ...]
    sequence: int  # assigned by this boot's single-use ledger
    presignature: bytes = field(repr=False)

    def encode(self) -> bytes:
        w = _RecordWriter()
        w.lp(PRESIGNATURE_MAGIC)
        w.u8(PRESIGNATURE_RECORD_VERSION)
        w.text(self.protocol)
        w.text(self.key_id)
        w.text(self.presignature_id)
        w.u16(len(self.signers))
        for p in self.signers:
            w.text(p)
        w.u64(self.sequence)
        w.lp(self.presignature)
        return w.value()

    @classmethod
    def decode(cls, data: bytes) -> PresignatureContent:
        r = _RecordReader(data)
        if r.lp() != PRESIGNATURE_MAGIC:
            raise InvalidEncoding("not a presignature record")
        version = r.u8()
        if version != PRESIGNATURE_RECORD_VERSION:
            raise InvalidEncoding(f"presignature record version {version} is not supported")
        protocol, key, pid = r.text(), r.text(), r.text()
        signers = tuple(r.text() for _ in range(r.u16()))
        rec = cls(protocol, key, pid, signers, r.u64(), r.lp())
        r.end()
        return rec


@dataclass(frozen=True)
class PreparamsRecord:
    sequence: int
    pair: bytes = field(repr=False)  # enclave.crypto.primes.encode_pair

    def encode(self) -> bytes:
        w = _RecordWriter()
        w.lp(PREPARAMS_MAGIC)
        w.u8(PREPARAMS_RECORD_VERSION)
        w.u64(self.sequence)
        w.lp(self.pair)
        return w.value()

    @classmethod
    def decode(cls, data: bytes) -> PreparamsRecord:
        r = _RecordReader(data)
        if r.lp() != PREPARAMS_MAGIC:
            raise InvalidEncoding("not a pre-parameter record")
        version = r.u8()
        if version != PREPARAMS_RECORD_VERSION:
            raise InvalidEncoding(f"pre-parameter record version {version} is not supported")
        rec = cls(r.u64(), r.lp())
        r.end()
        return rec


def seal(sealer: Sealer, plaintext: bytes, binding: Binding) -> bytes:
    return bytes([BLOB_VERSION]) + struct.pack(">H", binding.party_id) + sealer.seal(plaintext, binding)


def blob_party_index(data: bytes) -> int:
    """The party index recorded in front of the envelope (not yet authenticated)."""
    if len(data) < 3:
        raise BlobInvalid("sealed blob is truncated")
    if data[0] != BLOB_VERSION:
        raise BlobInvalid(f"sealed blob format {data[0]} is not supported")
    index: int = struct.unpack(">H", data[1:3])[0]
    if index == 0:
        raise BlobInvalid("sealed blob names no party")
    return index


def unseal(
    sealer: Sealer, data: bytes, *, key_id: str, protocol: str, purpose: Purpose, item_id: str = ""
) -> tuple[int, bytes]:
    """(party index, plaintext) of a blob sealed for exactly this key, protocol, purpose and item."""
    index = blob_party_index(data)
    binding = Binding(key_id=key_id, protocol=protocol, party_id=index, purpose=purpose, item_id=item_id)
    try:
        return index, sealer.unseal(data[3:], binding)
    except SealingError as exc:
        # SealedBlobCorrupt messages name the failing part only (see enclave.sealing).
        raise BlobInvalid(str(exc)) from None


class _RecordWriter:
    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def u8(self, v: int) -> None:
        self._parts.append(struct.pack(">B", v))

    def u16(self, v: int) -> None:
        self._parts.append(struct.pack(">H", v))

    def u64(self, v: int) -> None:
        self._parts.append(struct.pack(">Q", v))

    def lp(self, data: bytes) -> None:
        self._parts.append(struct.pack(">I", len(data)) + data)

    def text(self, s: str) -> None:
        self.lp(s.encode("utf-8"))

    def value(self) -> bytes:
        return b"".join(self._parts)


class _RecordReader:
    def __init__(self, data: bytes) -> None:
        self._data = bytes(data)
        self._pos = 0

    def _take(self, n: int) -> bytes:
        if n < 0 or self._pos + n > len(self._data):
            raise InvalidEncoding("truncated record")
        out = self._data[self._pos : self._pos + n]
        self._pos += n
        return out

    def u8(self) -> int:
        return self._take(1)[0]

    def u16(self) -> int:
        v: int = struct.unpack(">H", self._take(2))[0]
        return v

    def u64(self) -> int:
        v: int = struct.unpack(">Q", self._take(8))[0]
        return v

    def lp(self) -> bytes:
        (n,) = struct.unpack(">I", self._take(4))
        if n > _MAX_FIELD:
            raise InvalidEncoding("record field too long")
        return self._take(n)

    def text(self) -> str:
        try:
            return self.lp().decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidEncoding("record text is not UTF-8") from None

    def end(self) -> None:
        if self._pos != len(self._data):
            raise InvalidEncoding("trailing bytes in record")


def pack(*parts: bytes) -> bytes:
    """Length-prefixed concatenation (for protocol shares made of several encodings)."""
    w = _RecordWriter()
    for p in parts:
        w.lp(p)
    return w.value()


def unpack(data: bytes, count: int) -> list[bytes]:
    r = _RecordReader(data)
    parts = [r.lp() for _ in range(count)]
    r.end()
    return parts
