"""FROST for Taproot: BIP340 signatures and BIP341 key tweaks, as ZF frost's `frost-secp256k1-tr`.

The suite (`FROST_SECP256K1_TR`) is FROST(secp256k1, SHA-256) with ZF's context string
"FROST-secp256k1-SHA256-TR-v1" and these differences, each one of ZF's `Ciphersuite` hooks:

- H2(m) = int(SHA-256(T || T || m)) mod n with T = SHA-256("BIP0340/challenge") (BIP340's
  tagged hash), and the challenge hashes x(R) || x(PK) || msg, x-only (ZF `challenge`).
- Even y for the group key (ZF `pre_sign`/`pre_aggregate`, the `EvenY` trait): a key package
  whose verifying key has an odd y signs with the negated key, -s_i and -Y_i (negation is
  linear, so it commutes with the Shamir sharing). The binding factors and the challenge use
  the even-y key. Key packages are stored as ZF stores them (the odd key as it is).
- Even y for R (ZF `compute_signature_share`/`verify_share`): if the group commitment R has an
  odd y, every signer negates its nonces (d, e) and a verifier negates the commitment shares.
- Signatures are BIP340's 64 bytes x(R) || z (ZF `serialize_signature`), also inside the DKG
  round-1 package, which is why the proof-of-knowledge nonce is chosen with an even R (ZF
  `generate_nonce`). The final check is libsecp256k1's own BIP340 verifier.
- BIP341 tweak (ZF `Tweak`): t = int(hashTapTweak(x(P) || merkle_root)) mod n, then
  P' = even(P) + t*G and s_i' = even(s_i) + t, Y_i' = even(Y_i) + t*G. An empty merkle root is
  BIP341's key-path-only commitment (t = hashTapTweak(x(P))).
- After a DKG the key packages are tweaked with the empty root (ZF `post_dkg`), so a DKG key
  already commits to an unspendable script path and no participant can have hidden a script
  in it. Signing with a script tree's merkle root tweaks that key once more (ZF
  `sign_with_tweak` / `aggregate_with_tweak` with `Some(root)`): the DKG key is then the
  Taproot internal key and the tweaked key the output key.
"""

from __future__ import annotations

import hashlib
from typing import Final

from coincurve import PublicKeyXOnly

from enclave.crypto.rng import Rng
from enclave.errors import InvalidEncoding, InvalidParameters
from enclave.group.base import Element
from enclave.group.secp256k1 import SECP256K1
from enclave.protocols.frost.ciphersuite import Secp256k1Sha256
from enclave.protocols.frost.keys import KeyPackage, PublicKeyPackage

MERKLE_ROOT_LEN: Final = 32


def tagged_hash(tag: str, data: bytes) -> bytes:
    """BIP340 tagged hash: SHA-256(SHA-256(tag) || SHA-256(tag) || data)."""
    t = hashlib.sha256(tag.encode()).digest()
    return hashlib.sha256(t + t + data).digest()


class Secp256k1Sha256Tr(Secp256k1Sha256):
    name = "FROST(secp256k1, SHA-256, Taproot)"
    short_name = "frost-secp256k1-tr"
    context_string = b"FROST-secp256k1-SHA256-TR-v1"
    signature_len = 64
    bip340 = True

    def H2(self, m: bytes) -> int:
        return int.from_bytes(tagged_hash("BIP0340/challenge", m), "big") % self.order

    def challenge(self, r: bytes, verifying_key: bytes, message: bytes) -> int:
        return self.H2(r[1:] + verifying_key[1:] + message)

    def encode_signature(self, r: bytes, z: int) -> bytes:
        return r[1:] + self.group.encode_scalar(z)

    def decode_signature(self, data: bytes) -> tuple[bytes, int]:
        """x-only R is read as the point with an even y (ZF `deserialize_signature`)."""
        if len(data) != 64:
            raise InvalidEncoding("signature must be 64 bytes")
        r = SECP256K1.encode(SECP256K1.lift_x(bytes(data[:32])))
        return r, self.group.decode_scalar(bytes(data[32:]))

    def verify_signature(self, signature: bytes, message: bytes, verifying_key: bytes) -> bool:
        """libsecp256k1's BIP340 verifier, under the x-only key."""
        if len(signature) != 64 or len(verifying_key) != 33:
            return False
        try:
            return bool(PublicKeyXOnly(bytes(verifying_key[1:])).verify(bytes(signature), message))
        except (ValueError, TypeError):
            return False

    def proof_nonce(self, rng: Rng) -> tuple[int, Element]:
        k = self.group.random_scalar(rng)
        r = self.group.base_mul(k)
        if SECP256K1.y_is_odd(r):
            return self.order - k, self.group.neg(r)
        return k, r

    def key_is_negated(self, verifying_key: bytes) -> bool:
        return verifying_key[0] == 3

    def effective_key(self, verifying_key: bytes) -> bytes:
        return b"\x02" + verifying_key[1:]

    def nonces_negated(self, group_commitment: bytes) -> bool:
        return group_commitment[0] == 3

    def post_dkg(self, key: KeyPackage, public: PublicKeyPackage) -> tuple[KeyPackage, PublicKeyPackage]:
        return tweak_key_package(key, b""), tweak_public_key_package(public, b"")

    def signing_keys(
        self, key: KeyPackage, public: PublicKeyPackage, merkle_root: bytes | None
    ) -> tuple[KeyPackage, PublicKeyPackage]:
        if merkle_root is None:
            return key, public
        return tweak_key_package(key, merkle_root), tweak_public_key_package(public, merkle_root)


FROST_SECP256K1_TR: Final = Secp256k1Sha256Tr()


def check_merkle_root(merkle_root: bytes) -> None:
    if len(merkle_root) not in (0, MERKLE_ROOT_LEN):
        raise InvalidParameters("a Taproot merkle root is 32 bytes (empty: key path only)")


def taproot_tweak(verifying_key: bytes, merkle_root: bytes) -> int:
    """BIP341's t = int(hashTapTweak(x(P) || merkle_root)) (`verifying_key` a 33-byte encoding).

    BIP341 makes t >= n an invalid tweak (probability about 2^-128); ZF reduces it mod n. Both
    agree on every key anyone will meet; this refuses such a tweak, as BIP341 says."""
    check_merkle_root(merkle_root)
    t = int.from_bytes(tagged_hash("TapTweak", bytes(verifying_key[1:]) + merkle_root), "big")
    if t >= SECP256K1.order:
        raise InvalidParameters("Taproot tweak out of range")
    return t


def _even(encoding: bytes, negate: bool) -> bytes:
    return SECP256K1.negate_encoding(encoding) if negate else encoding


def _plus_tweak(encoding: bytes, tweak_point: Element) -> bytes:
    g = SECP256K1
    total = g.add(g.decode(encoding), tweak_point)
    if g.is_identity(total):
        raise InvalidParameters("tweaked key is the identity")
    return g.encode(total)


def tweaked_public_key(verifying_key: bytes, merkle_root: bytes) -> bytes:
    """BIP341 output key Q = even(P) + t*G, as a 33-byte encoding (x-only: its last 32 bytes)."""
    t = taproot_tweak(verifying_key, merkle_root)
    return _plus_tweak(_even(verifying_key, verifying_key[0] == 3), SECP256K1.base_mul(t))


def tweak_key_package(key: KeyPackage, merkle_root: bytes) -> KeyPackage:
    """ZF `KeyPackage::tweak`: even-y normalization, then + t (share) and + t*G (points)."""
    t = taproot_tweak(key.verifying_key, merkle_root)
    negate = key.verifying_key[0] == 3
    tp = SECP256K1.base_mul(t)
    share = (SECP256K1.order - key.signing_share if negate else key.signing_share) + t
    return KeyPackage(
        key.identifier,
        share % SECP256K1.order,
        _plus_tweak(_even(key.verifying_share, negate), tp),
        _plus_tweak(_even(key.verifying_key, negate), tp),
        key.min_signers,
    )


def tweak_public_key_package(public: PublicKeyPackage, merkle_root: bytes) -> PublicKeyPackage:
    """ZF `PublicKeyPackage::tweak`: the same on every verifying share and the group key."""
    t = taproot_tweak(public.verifying_key, merkle_root)
    negate = public.verifying_key[0] == 3
    tp = SECP256K1.base_mul(t)
    return PublicKeyPackage(
        {i: _plus_tweak(_even(y, negate), tp) for i, y in public.verifying_shares.items()},
        _plus_tweak(_even(public.verifying_key, negate), tp),
        public.min_signers,
    )
