"""Injectable randomness: production draws from `secrets`; tests pass a deterministic source."""

from __future__ import annotations

import secrets
from typing import Protocol


class Rng(Protocol):
    def random_bytes(self, n: int) -> bytes: ...


class SystemRng:
    """The operating system's CSPRNG through `secrets`."""

    def random_bytes(self, n: int) -> bytes:
        return secrets.token_bytes(n)


SYSTEM_RNG: Rng = SystemRng()


def random_below(rng: Rng, bound: int) -> int:
    """Uniform integer in [0, bound) by rejection sampling (no modulo bias)."""
    if bound <= 0:
        raise ValueError("bound must be positive")
    nbits = bound.bit_length()
    nbytes = (nbits + 7) // 8
    mask = (1 << nbits) - 1
    while True:
        candidate = int.from_bytes(rng.random_bytes(nbytes), "big") & mask
        if candidate < bound:
            return candidate
