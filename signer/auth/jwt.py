"""Service JWTs: verification (host) and minting (CLI `token`, client SDK).

Algorithm confusion is impossible by construction: each `kid` maps to exactly one key object and
the one algorithm its type allows (P-256 public key -> ES256, Ed25519 -> EdDSA, RSA >= 2048 bits
-> RS256, a secret of >= 32 bytes -> HS256). The token's header must name a configured kid and
exactly that algorithm, and PyJWT is called with that single algorithm and that key object. A
PEM file is always loaded as a public key, never as an HMAC secret, so an HS256 token "signed"
with a public key cannot verify. `alg: none` is never accepted.

Required claims: iss, aud, sub, iat, exp (nbf honoured when present), with a small leeway, and
exp - iat may not exceed the configured maximum lifetime.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from signer.errors import Unauthenticated

MIN_HS256_SECRET_BYTES = 32
MIN_RSA_BITS = 2048
_REQUIRED_CLAIMS = ["iss", "aud", "sub", "iat", "exp"]
VERIFIED_CACHE_SIZE = 4096


@dataclass(frozen=True)
class VerificationKey:
    algorithm: str
    key: Any = field(repr=False)  # public key object, or HS256 secret bytes


@dataclass(frozen=True)
class Claims:
    subject: str
    issuer: str
    issued_at: int
    expires_at: int


def read_hex_secret(path: Path, min_bytes: int = 32) -> bytes:
    """A secret stored as hex text (e.g. `openssl rand -hex 32`)."""
    text = path.read_text(encoding="ascii").strip()
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        raise ValueError("expected hex text") from None
    if len(secret) < min_bytes:
        raise ValueError(f"secret must be at least {min_bytes} bytes, got {len(secret)}")
    return secret


def load_verification_key(path: Path) -> VerificationKey:
    """Load a kid's key file and pin its algorithm from the key type. ValueError/OSError otherwise."""
    data = path.read_bytes()
    if data.lstrip().startswith(b"-----BEGIN"):
        if b"PRIVATE KEY" in data:
            raise ValueError("expected a public key, found a private key")
        key = serialization.load_pem_public_key(data)
        if isinstance(key, ec.EllipticCurvePublicKey):
            if not isinstance(key.curve, ec.SECP256R1):
                raise ValueError(f"EC keys must be P-256 (ES256), found {key.curve.name}")
            return VerificationKey("ES256", key)
        if isinstance(key, ed25519.Ed25519PublicKey):
            return VerificationKey("EdDSA", key)
        if isinstance(key, rsa.RSAPublicKey):
            if key.key_size < MIN_RSA_BITS:
                raise ValueError(f"RSA keys must have at least {MIN_RSA_BITS} bits, found {key.key_size}")
            return VerificationKey("RS256", key)
        raise ValueError(f"unsupported public key type {type(key).__name__}")
    return VerificationKey("HS256", read_hex_secret(path, MIN_HS256_SECRET_BYTES))


class JwtVerifier:
    def __init__(
        self,
        keys: Mapping[str, VerificationKey],
        *,
        issuer: str,
        audience: str,
        leeway_seconds: float,
        max_lifetime_seconds: float,
    ) -> None:
        self._keys = dict(keys)
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway_seconds
        self._max_lifetime = max_lifetime_seconds
        # Verified tokens -> claims. A caller sends the same token on every call until it
        # expires; checking its signature once (about half a millisecond for ES256) instead of on
        # every RPC is most of the host's per-call cost. A hit still re-checks the time claims.
        self._verified: OrderedDict[str, Claims] = OrderedDict()

    def verify(self, token: str, now: float | None = None) -> Claims:
        current = time.time() if now is None else now
        cached = self._verified.get(token)
        if cached is not None:
            if cached.issued_at <= current + self._leeway and current < cached.expires_at + self._leeway:
                return cached
            del self._verified[token]
        claims = self._verify(token, current)
        self._verified[token] = claims
        if len(self._verified) > VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        return claims

    def _key_for(self, token: str) -> VerificationKey:
        """The pinned key the token's header names (kid known, alg the one pinned for it)."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated("malformed token") from None
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthenticated("token has no key id (kid)")
        key = self._keys.get(kid)
        if key is None:
            raise Unauthenticated("token key id (kid) is not known")
        if header.get("alg") != key.algorithm:
            raise Unauthenticated("token algorithm is not the one pinned for its key id")
        return key

    def _decode(self, token: str, key: VerificationKey) -> dict[str, Any]:
        """The token's claims, signature, audience, issuer, times and required claims checked."""
        try:
            return jwt.decode(
                token,
                key.key,
                algorithms=[key.algorithm],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": _REQUIRED_CLAIMS, "verify_signature": True},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("token has expired") from None
        except jwt.ImmatureSignatureError:
            raise Unauthenticated("token is not yet valid") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated("token audience is wrong") from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated("token issuer is wrong") from None
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthenticated(f"token lacks the {exc.claim!r} claim") from None
        except jwt.InvalidSignatureError:
            raise Unauthenticated("token signature is invalid") from None
        except jwt.PyJWTError:
            raise Unauthenticated("invalid token") from None

    def _verify(self, token: str, current: float) -> Claims:
        claims = self._decode(token, self._key_for(token))
        iat, exp, sub = claims["iat"], claims["exp"], claims["sub"]
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (iat, exp)):
            raise Unauthenticated("token times must be integers")
        if not isinstance(sub, str) or not sub:
            raise Unauthenticated("token subject is empty")
        if iat > current + self._leeway:
            raise Unauthenticated("token is not yet valid")
        if exp <= current - self._leeway:  # PyJWT checked against the wall clock; `now` may be injected
            raise Unauthenticated("token has expired")
        if exp - iat > self._max_lifetime:
            raise Unauthenticated("token lifetime exceeds the allowed maximum")
        return Claims(subject=sub, issuer=claims["iss"], issued_at=iat, expires_at=exp)


def load_signing_key(path: Path) -> tuple[str, Any]:
    """A private key (PEM) or hex secret for minting, with its algorithm."""
    data = path.read_bytes()
    if data.lstrip().startswith(b"-----BEGIN"):
        key = serialization.load_pem_private_key(data, password=None)
        if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
            return "ES256", key
        if isinstance(key, ed25519.Ed25519PrivateKey):
            return "EdDSA", key
        if isinstance(key, rsa.RSAPrivateKey) and key.key_size >= MIN_RSA_BITS:
            return "RS256", key
        raise ValueError(f"unsupported signing key type {type(key).__name__}")
    return "HS256", read_hex_secret(path, MIN_HS256_SECRET_BYTES)


def mint_token(
    signing_key: Any,
    algorithm: str,
    *,
    kid: str,
    issuer: str,
    audience: str,
    subject: str,
    lifetime_seconds: int = 300,
    now: int | None = None,
) -> str:
    issued = int(time.time()) if now is None else now
    claims = {
        "iss": issuer,
        "aud": audience,
        "sub": subject,
        "iat": issued,
        "nbf": issued,
        "exp": issued + lifetime_seconds,
    }
    return jwt.encode(claims, signing_key, algorithm=algorithm, headers={"kid": kid})
