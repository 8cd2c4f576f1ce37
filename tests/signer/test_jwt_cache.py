"""The verified-token cache: a token's signature is checked once, its time claims on every use."""

from __future__ import annotations

import time

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from signer.auth import jwt as jwt_module
from signer.auth.jwt import JwtVerifier, VerificationKey, mint_token
from signer.errors import Unauthenticated


@pytest.fixture
def setup() -> tuple[JwtVerifier, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    verifier = JwtVerifier(
        {"k": VerificationKey("ES256", key.public_key())},
        issuer="i",
        audience="a",
        leeway_seconds=5,
        max_lifetime_seconds=600,
    )
    return verifier, key


def mint(key: ec.EllipticCurvePrivateKey, **kw: int) -> str:
    return mint_token(key, "ES256", kid="k", issuer="i", audience="a", subject="s", **kw)  # type: ignore[arg-type]


def test_signature_checked_once_time_claims_every_time(setup, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    verifier, key = setup
    token = mint(key, lifetime_seconds=60)
    first = verifier.verify(token)
    calls = []
    monkeypatch.setattr(jwt_module.jwt, "decode", lambda *a, **k: calls.append(a) or {})
    assert verifier.verify(token) is first and calls == []  # served from the cache
    # Past expiry (plus leeway) the cached entry is dropped and full verification runs (and fails).
    monkeypatch.undo()
    with pytest.raises(Unauthenticated):
        verifier.verify(token, now=time.time() + 120)
    assert token not in verifier._verified


def test_altered_token_is_verified_in_full(setup) -> None:  # type: ignore[no-untyped-def]
    verifier, key = setup
    token = mint(key, lifetime_seconds=60)
    verifier.verify(token)
    header, payload, _signature = token.split(".")
    other = ec.generate_private_key(ec.SECP256R1())
    forged = ".".join([header, payload, mint(other, lifetime_seconds=60).split(".")[2]])
    with pytest.raises(Unauthenticated, match="signature"):
        verifier.verify(forged)


def test_cache_is_bounded(setup, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    verifier, key = setup
    monkeypatch.setattr(jwt_module, "VERIFIED_CACHE_SIZE", 3)
    now = int(time.time())
    tokens = [mint(key, lifetime_seconds=60, now=now - i) for i in range(5)]
    for t in tokens:
        verifier.verify(t)
    assert list(verifier._verified) == tokens[-3:]
