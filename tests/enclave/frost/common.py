"""Shared helpers for the FROST tests: suites, key setup, running sessions, independent verification.

`SUITES` are the three ciphersuites; the `suite` fixture (conftest.py) runs a test once per
suite. `verify_independently(cs, key, message, signature)` checks a signature with a library
that shares no code with enclave.protocols.frost: libsodium (Ed25519), libsecp256k1's BIP340
verifier (Taproot), ZcashFoundation frost through frost_rs (FROST(secp256k1, SHA-256), which no
other library verifies), and raises AssertionError if it fails.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import nacl.signing
from coincurve import PublicKeyXOnly
from frost_rs import utility_secp256k1

from enclave.crypto.rng import SYSTEM_RNG, Rng
from enclave.protocols.driver import Driver
from enclave.protocols.frost import dkg, keys, rounds, signing, wire
from enclave.protocols.frost.ciphersuite import FROST_ED25519, FROST_SECP256K1, Ciphersuite
from enclave.protocols.frost.keys import KeyPackage, PublicKeyPackage
from enclave.protocols.frost.taproot import FROST_SECP256K1_TR
from tests import harness

VECTORS = Path(__file__).resolve().parents[2] / "vectors"
SUITES: tuple[Ciphersuite, ...] = (FROST_ED25519, FROST_SECP256K1, FROST_SECP256K1_TR)


def load_vector(name: str) -> dict[str, Any]:
    return json.loads((VECTORS / name).read_text())


class FixedRng:
    """Deterministic byte stream (SHA-512 counter mode) for reproducible tests."""

    def __init__(self, seed: bytes) -> None:
        self.seed, self.counter = seed, 0

    def random_bytes(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            out += hashlib.sha512(self.seed + self.counter.to_bytes(8, "big")).digest()
            self.counter += 1
        return out[:n]


def vector_setup(
    cs: Ciphersuite, v: dict[str, Any]
) -> tuple[dict[int, KeyPackage], PublicKeyPackage, dict[int, signing.SigningNonces], bytes]:
    """Key packages, public key package, nonces (from the vector's randomness) and message of an
    RFC 9591 appendix E style vector (ZF's name the group key "verifying_key_key")."""
    g, inp = cs.group, v["inputs"]
    vk = bytes.fromhex(inp.get("group_public_key") or inp["verifying_key_key"])
    t = int(v["config"]["MIN_PARTICIPANTS"])
    shares = {
        s["identifier"]: g.decode_scalar(bytes.fromhex(s["participant_share"])) for s in inp["participant_shares"]
    }
    kps = {i: KeyPackage(i, s, g.encode(g.base_mul(s)), vk, t) for i, s in shares.items()}
    public = PublicKeyPackage({i: kp.verifying_share for i, kp in kps.items()}, vk, t)
    nonces = {}
    for o in v["round_one_outputs"]["outputs"]:
        i = o["identifier"]
        d = signing.nonce_generate_from_random(cs, shares[i], bytes.fromhex(o["hiding_nonce_randomness"]))
        e = signing.nonce_generate_from_random(cs, shares[i], bytes.fromhex(o["binding_nonce_randomness"]))
        nonces[i] = signing.nonces_from_scalars(cs, d, e)
    return kps, public, nonces, bytes.fromhex(inp["message"])


def libsodium_verify(public_key: bytes, message: bytes, signature: bytes) -> None:
    """The independent RFC 8032 verifier; raises nacl.exceptions.BadSignatureError."""
    nacl.signing.VerifyKey(public_key).verify(message, signature)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()


def verify_independently(cs: Ciphersuite, verifying_key: bytes, message: bytes, signature: bytes) -> None:
    """`verifying_key` is the key as the key packages hold it (Taproot: the tweaked one)."""
    if cs is FROST_ED25519:
        libsodium_verify(verifying_key, message, signature)
    elif cs is FROST_SECP256K1_TR:
        assert len(signature) == 64
        assert PublicKeyXOnly(verifying_key[1:]).verify(signature, message), "BIP340 verification failed"
    else:
        assert cs is FROST_SECP256K1 and len(signature) == 65
        # ZF's verifier wants a public key package; the group key alone is enough for `verify`.
        package = _b64(wire.encode_public_key_package(cs, PublicKeyPackage({}, verifying_key, None)))
        assert utility_secp256k1.verify(message, package, _b64(signature)), "ZF frost verification failed"


def dealer(cs: Ciphersuite, n: int, t: int, rng: Rng = SYSTEM_RNG) -> tuple[dict[int, KeyPackage], PublicKeyPackage]:
    shares, public = keys.trusted_dealer_keygen(cs, list(range(1, n + 1)), t, rng)
    return {i: keys.key_package_from_secret_share(cs, s) for i, s in shares.items()}, public


def sign_drivers(
    cs: Ciphersuite,
    kps: dict[int, KeyPackage],
    public: PublicKeyPackage,
    signers: Sequence[int],
    message: bytes,
    session: bytes = b"sign-session",
    used: dict[int, set[bytes]] | None = None,
    merkle_root: bytes | None = None,
) -> list[Driver]:
    ids = {p: kps[p].identifier for p in signers}
    return [
        rounds.signing_driver(
            rounds.SignSetup(
                cs,
                session,
                p,
                ids,
                kps[p],
                public,
                message,
                SYSTEM_RNG,
                None if used is None else used[p],
                merkle_root,
            )
        )
        for p in signers
    ]


def dkg_part2(
    cs: Ciphersuite, secret: dkg.Round1Secret, round1: Mapping[int, dkg.Round1Package]
) -> tuple[dkg.Round2Secret, dict[int, int]]:
    """ZF frost's `dkg::part2` from the pieces `DkgRound1` uses: check every round-1 package,
    then the round-2 secret and the share f_i(j) for each other participant."""
    assert len(round1) == secret.max_signers - 1 and secret.identifier not in round1
    for sender in sorted(round1):
        dkg.check_round1_package(cs, secret, sender, round1[sender])
    return dkg.round2_secret(cs, secret), {j: dkg.share_for(cs, secret, j) for j in sorted(round1)}


def dkg_drivers(
    cs: Ciphersuite, n: int, t: int, session: bytes = b"dkg-session", ids: dict[int, int] | None = None
) -> list[Driver]:
    ids = ids or {p: p for p in range(1, n + 1)}
    return [rounds.dkg_driver(rounds.DkgSetup(cs, session, p, ids, t, SYSTEM_RNG)) for p in ids]


def run_dkg(cs: Ciphersuite, n: int, t: int, **kw: Any) -> tuple[dict[int, KeyPackage], PublicKeyPackage]:
    res = harness.run(dkg_drivers(cs, n, t, **kw))
    outs = res.outputs()
    publics = {_freeze(o[1]) for o in outs.values()}
    assert len(publics) == 1, "parties disagree on the public key package"
    first = next(iter(outs.values()))
    return {p: o[0] for p, o in outs.items()}, first[1]


def _freeze(p: PublicKeyPackage) -> tuple[Any, ...]:
    return (tuple(sorted(p.verifying_shares.items())), p.verifying_key, p.min_signers)
