"""Non-hardened derivation of FROST keys, and the chain code a FROST DKG ends with.

One additive rule for every suite. For each index i of a path (0 <= i < 2^31, at most
MAX_DEPTH levels), with c the parent's chain code and K the parent's public key as the API
shows it (Ed25519 32 bytes, secp256k1 33 bytes compressed, Taproot 32 bytes x-only):

    t  = int(SHA-512(lp(DERIVE_TAG) || lp(suite) || lp("tweak") || lp(c) || lp(K) || u32(i))) mod n
    c' = SHA-512(lp(DERIVE_TAG) || lp(suite) || lp("chain-code") || lp(c) || lp(K) || u32(i))[:32]
    P' = P + t*G,   s_j' = s_j + t,   Y_j' = Y_j + t*G   for every participant j

(lp = 4-byte big-endian length prefix, u32 big-endian, the hash read big-endian; suite = the
suite's short name, e.g. "frost-ed25519".) t comes from 64 hash bytes, so reducing it mod n
leaves a bias below 2^-250 even for Ed25519's 253-bit order; t == 0 and P' = identity are
refused (probability about 2^-252) rather than skipped, so a path always names the key it says.

Why every party may add t alone: the group secret is s = sum_j lambda_j * s_j over any signer
set, and the Lagrange coefficients at 0 sum to 1, so sum_j lambda_j * (s_j + t) = s + t. The
derived packages are ordinary key packages of the child key P'; signing with them needs no
change to the FROST rounds.

Taproot (the `bip340` suite): outsiders know the key only x-only, so the parent is first made
even (P := lift_x(x(P)); when P has an odd y every s_j and Y_j is negated, as BIP340 signing
does), then the rule above applies. The parent of the first level is the stored DKG key, which
is already BIP341's key-path output key (ZF's `post_dkg`); a derived key is used as it is
(key path) or as the internal key of a script tree (`taproot_merkle_root` tweaks it once more).
A child may have an odd y; signing normalizes it as it does every key.

So, along a path, child secret = sign * root secret + tweak with sign = +1 (always, but for
Taproot where it flips at each odd-y parent); `derive_public` returns both.

Related keys: anyone with a derived share s_j' and the tweak (computable from the chain code
and the public key) gets s_j = s_j' - t (or its negation); a derived share is as sensitive as
the root share.

Chain code: SHA-256(lp(CHAIN_CODE_TAG) || lp(suite) || lp(K) || u32(count) || for each
participant in increasing identifier order: lp(identifier) || lp(its ZF round-1 package)),
K the DKG's public key as the API shows it. Every party computes it from the DKG's public
transcript (the broadcast echo guarantees they saw the same packages), so nothing new crosses
the wire and ZF frost byte compatibility holds; it cannot be computed from the public key
alone, but anyone who saw the round-1 broadcasts (the relay) can compute it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from door.encoding import lp32, u32
from enclave.errors import InvalidParameters
from enclave.protocols.frost import wire
from enclave.protocols.frost.ciphersuite import Ciphersuite
from enclave.protocols.frost.dkg import Round1Package
from enclave.protocols.frost.keys import KeyPackage, PublicKeyPackage

CHAIN_CODE_TAG: Final = b"mpc-signer/frost/chain-code/v1"
DERIVE_TAG: Final = b"mpc-signer/frost/derive/v1"
CHAIN_CODE_LEN: Final = 32
HARDENED: Final = 1 << 31
MAX_DEPTH: Final = 255


def api_key(cs: Ciphersuite, verifying_key: bytes) -> bytes:
    """The key as the API shows it: BIP340 x-only for Taproot, else the element encoding."""
    return verifying_key[1:] if cs.bip340 else verifying_key


def chain_code(cs: Ciphersuite, verifying_key: bytes, packages: Mapping[int, Round1Package]) -> bytes:
    """The DKG's chain code from its public transcript: every participant's round-1 package
    (this party's own included), keyed by FROST identifier."""
    h = hashlib.sha256(lp32(CHAIN_CODE_TAG) + lp32(cs.short_name.encode()) + lp32(api_key(cs, verifying_key)))
    h.update(u32(len(packages)))
    for ident in sorted(packages):
        h.update(lp32(cs.encode_identifier(ident)))
        h.update(lp32(wire.encode_round1_package(cs, packages[ident])))
    return h.digest()


def check_path(path: Sequence[int]) -> None:
    if len(path) > MAX_DEPTH or any(not 0 <= i < HARDENED for i in path):
        raise InvalidParameters(f"derivation path must be non-hardened indices (< 2^31), at most {MAX_DEPTH} levels")


def derive_step(cs: Ciphersuite, chain: bytes, parent_key: bytes, index: int) -> tuple[int, bytes]:
    """(t, child chain code) for one index; `parent_key` as `api_key` shows it."""
    if len(chain) != CHAIN_CODE_LEN:
        raise InvalidParameters(f"a chain code is {CHAIN_CODE_LEN} bytes")
    if not 0 <= index < HARDENED:
        raise InvalidParameters("derivation index must be non-hardened (< 2^31)")
    head = lp32(DERIVE_TAG) + lp32(cs.short_name.encode())
    tail = lp32(chain) + lp32(parent_key) + u32(index)
    t = int.from_bytes(hashlib.sha512(head + lp32(b"tweak") + tail).digest(), "big") % cs.order
    if t == 0:
        raise InvalidParameters("derivation index yields an invalid key")
    return t, hashlib.sha512(head + lp32(b"chain-code") + tail).digest()[:CHAIN_CODE_LEN]


@dataclass(frozen=True)
class DerivedKey:
    """A child key: its verifying key (element encoding), chain code, and how its secret follows
    from the root's: child = (-root if negated else root) + tweak (mod n)."""

    verifying_key: bytes
    chain_code: bytes
    negated: bool
    tweak: int


def derive_public(cs: Ciphersuite, verifying_key: bytes, chain: bytes, path: Sequence[int]) -> DerivedKey:
    """The child key of `path` from the root verifying key (element encoding) and chain code."""
    check_path(path)
    g = cs.group
    point = cs.point(verifying_key)
    encoding, negated, tweak = verifying_key, False, 0
    for index in path:
        if cs.bip340 and cs.key_is_negated(encoding):
            point, negated, tweak = g.neg(point), not negated, (-tweak) % cs.order
            encoding = g.encode(point)
        t, chain = derive_step(cs, chain, api_key(cs, encoding), index)
        point = g.add(point, g.base_mul(t))
        if g.is_identity(point):
            raise InvalidParameters("derivation index yields an invalid key")
        encoding, tweak = g.encode(point), (tweak + t) % cs.order
    return DerivedKey(encoding, chain, negated, tweak)


def _apply(cs: Ciphersuite, encoding: bytes, derived: DerivedKey) -> bytes:
    g = cs.group
    point = cs.point(encoding)
    if derived.negated:
        point = g.neg(point)
    total = g.add(point, g.base_mul(derived.tweak)) if derived.tweak else point
    if g.is_identity(total):
        raise InvalidParameters("derived verifying share is the identity")
    return g.encode(total)


def derive_packages(
    cs: Ciphersuite, key: KeyPackage, public: PublicKeyPackage, chain: bytes, path: Sequence[int]
) -> tuple[KeyPackage, PublicKeyPackage]:
    """This participant's key packages for the child key of `path` (the packages themselves for
    an empty path)."""
    if not path:
        return key, public
    derived = derive_public(cs, public.verifying_key, chain, path)
    n = cs.order
    share = ((n - key.signing_share if derived.negated else key.signing_share) + derived.tweak) % n
    child_key = KeyPackage(
        key.identifier,
        share,
        _apply(cs, key.verifying_share, derived),
        derived.verifying_key,
        key.min_signers,
    )
    child_public = PublicKeyPackage(
        {i: _apply(cs, y, derived) for i, y in public.verifying_shares.items()},
        derived.verifying_key,
        public.min_signers,
    )
    if child_public.verifying_shares.get(key.identifier) != child_key.verifying_share:
        raise InvalidParameters("public key package does not match the key package")
    return child_key, child_public
