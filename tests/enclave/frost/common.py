"""Shared helpers for the FROST tests: key setup, running sessions, independent verification."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nacl.signing

from enclave.protocols.frost import keys, sessions
from enclave.protocols.frost.keys import KeyPackage, PublicKeyPackage
from enclave.protocols.rounds import Driver
from enclave.rng import SYSTEM_RNG, Rng
from tests import harness

VECTORS = Path(__file__).resolve().parents[2] / "vectors"


def load_vector(name: str) -> dict[str, Any]:
    return json.loads((VECTORS / name).read_text())


class FixedRng:
    """Deterministic byte stream (SHA-512 counter mode) for reproducible tests."""

    def __init__(self, seed: bytes) -> None:
        self.seed, self.counter = seed, 0

    def random_bytes(self, n: int) -> bytes:
        import hashlib

        out = b""
        while len(out) < n:
            out += hashlib.sha512(self.seed + self.counter.to_bytes(8, "big")).digest()
            self.counter += 1
        return out[:n]


def libsodium_verify(public_key: bytes, message: bytes, signature: bytes) -> None:
    """The independent RFC 8032 verifier; raises nacl.exceptions.BadSignatureError."""
    nacl.signing.VerifyKey(public_key).verify(message, signature)


def dealer(n: int, t: int, rng: Rng = SYSTEM_RNG) -> tuple[dict[int, KeyPackage], PublicKeyPackage]:
    shares, public = keys.trusted_dealer_keygen(list(range(1, n + 1)), t, rng)
    return {i: keys.key_package_from_secret_share(s) for i, s in shares.items()}, public


def sign_drivers(
    kps: dict[int, KeyPackage],
    public: PublicKeyPackage,
    signers: Sequence[int],
    message: bytes,
    session: bytes = b"sign-session",
    used: dict[int, set[bytes]] | None = None,
) -> list[Driver]:
    ids = {p: kps[p].identifier for p in signers}
    return [
        sessions.signing_driver(
            sessions.SignSetup(
                session, p, ids, kps[p], public, message, SYSTEM_RNG, None if used is None else used[p]
            )
        )
        for p in signers
    ]


def dkg_drivers(n: int, t: int, session: bytes = b"dkg-session", ids: dict[int, int] | None = None) -> list[Driver]:
    ids = ids or {p: p for p in range(1, n + 1)}
    return [sessions.dkg_driver(sessions.DkgSetup(session, p, ids, t, SYSTEM_RNG)) for p in ids]


def run_dkg(n: int, t: int, **kw: Any) -> tuple[dict[int, KeyPackage], PublicKeyPackage]:
    res = harness.run(dkg_drivers(n, t, **kw))
    outs = res.outputs()
    publics = {o[1] for o in [(k, _freeze(p)) for k, p in outs.values()]}
    assert len(publics) == 1, "parties disagree on the public key package"
    first = next(iter(outs.values()))
    return {p: o[0] for p, o in outs.items()}, first[1]


def _freeze(p: PublicKeyPackage) -> tuple[Any, ...]:
    return (tuple(sorted(p.verifying_shares.items())), p.verifying_key, p.min_signers)
