"""JWT verification in-process (the same cases run against the real server in
tests/integration/test_rejections.py)."""

from __future__ import annotations

import time
from pathlib import Path

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from signer.auth.jwt import JwtVerifier, load_signing_key, load_verification_key, mint_token
from signer.errors import Unauthenticated

SPKI = (serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture
def keyfiles(tmp_path: Path) -> dict[str, Path]:
    files = {}
    for name, key in (
        ("es", ec.generate_private_key(ec.SECP256R1())),
        ("ed", ed25519.Ed25519PrivateKey.generate()),
        ("rs", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
    ):
        files[name] = tmp_path / f"{name}.pub"
        files[name].write_bytes(key.public_key().public_bytes(*SPKI))
        files[name + "_priv"] = tmp_path / f"{name}.key"
        files[name + "_priv"].write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    files["hs"] = tmp_path / "hs.hex"
    files["hs"].write_text("ab" * 32)
    return files


def verifier(files: dict[str, Path]) -> JwtVerifier:
    keys = {kid: load_verification_key(files[kid]) for kid in ("es", "ed", "rs", "hs")}
    return JwtVerifier(keys, issuer="iss", audience="aud", leeway_seconds=5, max_lifetime_seconds=600)


def token(files: dict[str, Path], kid: str, **kw: object) -> str:
    alg, key = load_signing_key(files[kid + "_priv"] if kid != "hs" else files["hs"])
    args = dict(kid=kid, issuer="iss", audience="aud", subject="svc", lifetime_seconds=60)
    args.update(kw)
    return mint_token(key, alg, **args)  # type: ignore[arg-type]


def test_algorithm_is_pinned_by_key_type(keyfiles: dict[str, Path]) -> None:
    assert {k: load_verification_key(keyfiles[k]).algorithm for k in ("es", "ed", "rs", "hs")} == {
        "es": "ES256",
        "ed": "EdDSA",
        "rs": "RS256",
        "hs": "HS256",
    }
    v = verifier(keyfiles)
    for kid in ("es", "ed", "rs", "hs"):
        assert v.verify(token(keyfiles, kid)).subject == "svc"


def test_rejections(keyfiles: dict[str, Path]) -> None:
    v = verifier(keyfiles)
    now = int(time.time())
    es_priv = load_signing_key(keyfiles["es_priv"])[1]
    claims = {"iss": "iss", "aud": "aud", "sub": "svc", "iat": now, "exp": now + 60}
    cases = {
        "expired": token(keyfiles, "es", now=now - 120),
        "wrong issuer": token(keyfiles, "es", issuer="x"),
        "wrong audience": token(keyfiles, "es", audience="x"),
        "too long": token(keyfiles, "es", lifetime_seconds=601),
        "unknown kid": mint_token(es_priv, "ES256", kid="zz", issuer="iss", audience="aud", subject="svc"),
        "alg swap": pyjwt.encode(claims, "ab" * 32, algorithm="HS256", headers={"kid": "es"}),
        "no kid": pyjwt.encode(claims, es_priv, algorithm="ES256"),
        "no sub": pyjwt.encode(
            {k: v for k, v in claims.items() if k != "sub"}, es_priv, algorithm="ES256", headers={"kid": "es"}
        ),
        "no exp": pyjwt.encode(
            {k: v for k, v in claims.items() if k != "exp"}, es_priv, algorithm="ES256", headers={"kid": "es"}
        ),
        "future iat": pyjwt.encode(
            {**claims, "iat": now + 120, "exp": now + 150}, es_priv, algorithm="ES256", headers={"kid": "es"}
        ),
        "nbf": pyjwt.encode({**claims, "nbf": now + 120}, es_priv, algorithm="ES256", headers={"kid": "es"}),
        "another key's signature": pyjwt.encode(
            claims, load_signing_key(keyfiles["rs_priv"])[1], algorithm="RS256", headers={"kid": "es"}
        ),
        "garbage": "a.b.c",
    }
    accepted = []
    for name, bad in cases.items():
        try:
            v.verify(bad)
        except Unauthenticated:
            continue
        accepted.append(name)
    assert accepted == []


def test_key_loading_refuses_weak_or_wrong_keys(tmp_path: Path) -> None:
    small = tmp_path / "small.pub"
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - the weak key under test
    small.write_bytes(weak.public_key().public_bytes(*SPKI))
    p384 = tmp_path / "p384.pub"
    p384.write_bytes(ec.generate_private_key(ec.SECP384R1()).public_key().public_bytes(*SPKI))
    short = tmp_path / "short.hex"
    short.write_text("ab" * 16)
    private = tmp_path / "priv.pem"
    private.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    for path, problem in ((small, "2048"), (p384, "P-256"), (short, "32 bytes"), (private, "private key")):
        with pytest.raises(ValueError, match=problem):
            load_verification_key(path)
