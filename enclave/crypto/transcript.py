"""Domain-separated, length-prefixed Fiat–Shamir transcripts.

Every absorbed item is `len(label) || label || len(data) || data` with 8-byte big-endian
lengths, so moving bytes between adjacent fields always changes the hash. A transcript is
created bound to a domain tag, session id, protocol, round and party (the omission behind
tss-lib's CVE-2022-47930); proofs append their statement before drawing challenges.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from door.encoding import lp64

_VERSION = b"mpc-signer/transcript/v1"


class Transcript:
    __slots__ = ("_h",)

    def __init__(
        self,
        domain: str,
        *,
        session_id: bytes,
        protocol: str,
        round: int,
        party: bytes | str | int,
    ) -> None:
        self._h = hashlib.shake_256()
        self._absorb(b"version", _VERSION)
        self._absorb(b"domain", domain.encode())
        self._absorb(b"session", bytes(session_id))
        self._absorb(b"protocol", protocol.encode())
        self._absorb(b"round", round.to_bytes(4, "big"))
        self.append("party", party)

    def _absorb(self, label: bytes, data: bytes) -> None:
        self._h.update(lp64(label) + lp64(data))

    def append(self, label: str, value: bytes | str | int) -> None:
        """Absorb a labelled value. Ints are encoded with a sign byte and minimal length."""
        if isinstance(value, bool):
            raise TypeError("bool is not a transcript value")
        if isinstance(value, int):
            sign = b"-" if value < 0 else b"+"
            mag = abs(value)
            data = sign + mag.to_bytes((mag.bit_length() + 7) // 8, "big")
            self._absorb(b"int:" + label.encode(), data)
        elif isinstance(value, str):
            self._absorb(b"str:" + label.encode(), value.encode())
        else:
            self._absorb(b"bytes:" + label.encode(), bytes(value))

    def append_many(self, label: str, values: Sequence[bytes | int]) -> None:
        self.append(label + "#count", len(values))
        for i, v in enumerate(values):
            self.append(f"{label}[{i}]", v)

    def challenge_bytes(self, label: str, n: int) -> bytes:
        """Draw n challenge bytes; the draw itself is absorbed so later challenges differ."""
        self._absorb(b"challenge", label.encode() + b"/" + n.to_bytes(4, "big"))
        out = self._h.copy().digest(n)
        self._absorb(b"challenge-out", out)
        return out

    def challenge_int(self, label: str, bound: int) -> int:
        """Challenge in [0, bound), with 128 extra bits so the modular bias is negligible."""
        nbytes = (bound.bit_length() + 7) // 8 + 16
        return int.from_bytes(self.challenge_bytes(label, nbytes), "big") % bound

    def challenge_signed(self, label: str, bound: int) -> int:
        """Challenge in [-bound, bound] (CGGMP21's e in ±q)."""
        return self.challenge_int(label, 2 * bound + 1) - bound
