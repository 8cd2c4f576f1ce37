"""Shared GG20 fixtures: key generation is the expensive step, so each key is made once per
test session and reused by every test that only needs a key."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import pytest
from coincurve import PublicKey
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from enclave.crypto.primes import FixtureSource
from enclave.crypto.rng import SYSTEM_RNG
from enclave.protocols.gg20 import keygen, presign, sign
from enclave.protocols.gg20.keyshare import KeyShare
from enclave.protocols.gg20.message import MessageHash
from enclave.protocols.gg20.presignature import Presignature
from enclave.protocols.gg20.sign import Signature
from tests.enclave import safe_primes
from tests.harness import Result, run


@pytest.fixture(scope="session")
def prime_source() -> FixtureSource:
    return safe_primes.source()


def run_keygen(source: FixtureSource, parties: Sequence[int], threshold: int, sid: bytes) -> dict[int, KeyShare]:
    drivers = [keygen.start(sid, i, parties, threshold, source(2048), SYSTEM_RNG) for i in parties]
    return run(drivers).outputs()  # type: ignore[return-value]


def run_presign(
    keys: dict[int, KeyShare], signers: Sequence[int], sid: bytes, path: tuple[int, ...] = (), **kw: object
) -> Result:
    drivers = [presign.start(sid, keys[i], signers, SYSTEM_RNG, path=path) for i in signers]
    return run(drivers, **kw)  # type: ignore[arg-type]


class UsedSet:
    """A consume hook with the contract storage must honour: a second use raises."""

    def __init__(self) -> None:
        self.used: set[bytes] = set()

    def __call__(self, presign_id: bytes) -> None:
        if presign_id in self.used:
            raise RuntimeError("presignature already used")
        self.used.add(presign_id)


def run_sign(
    keys: dict[int, KeyShare],
    presigs: dict[int, Presignature],
    digest: bytes,
    sid: bytes,
    path: tuple[int, ...] = (),
    consume: Callable[[bytes], None] | None = None,
    rule: MessageHash = MessageHash.RAW,
    **kw: object,
) -> Result:
    hooks = {i: (consume or UsedSet()) for i in presigs}
    drivers = [sign.start(sid, keys[i], presigs[i], digest, hooks[i], rule=rule, path=path) for i in presigs]
    return run(drivers, **kw)  # type: ignore[arg-type]


def check_signature(sig: Signature, digest: bytes, public_key: bytes) -> None:
    """Independent verification: libsecp256k1 (verify and recover) and OpenSSL."""
    assert sig.public_key == public_key
    raw = sig.to_bytes()
    assert len(raw) == 65 and raw[64] in (0, 1)
    r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:64], "big")
    n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
    assert 0 < r < n and 0 < s <= n // 2  # low-s
    assert PublicKey(public_key).verify(sig.to_der(), digest, hasher=None)
    recovered = PublicKey.from_signature_and_message(raw, digest, hasher=None)
    assert recovered.format(compressed=True) == public_key
    ossl = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), public_key)
    ossl.verify(sig.to_der(), digest, ec.ECDSA(Prehashed(hashes.SHA256())))  # raises if invalid


def digest_of(msg: bytes) -> bytes:
    return hashlib.sha256(msg).digest()


@pytest.fixture(scope="session")
def keys_2of2(prime_source: FixtureSource) -> dict[int, KeyShare]:
    return run_keygen(prime_source, [1, 2], 2, b"fixture-keygen-2of2")


@pytest.fixture(scope="session")
def keys_2of3(prime_source: FixtureSource) -> dict[int, KeyShare]:
    return run_keygen(prime_source, [1, 2, 3], 2, b"fixture-keygen-2of3")


@pytest.fixture(scope="session")
def keys_3of5(prime_source: FixtureSource) -> dict[int, KeyShare]:
    return run_keygen(prime_source, [1, 2, 3, 4, 5], 3, b"fixture-keygen-3of5")
