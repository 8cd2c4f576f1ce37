"""FROST signing per RFC 9591 sections 4 and 5, for any suite, as pure functions.

    nonces = commit(cs, key_package.signing_share, rng)          # round one; publish nonces.commitments
    package = SigningPackage({id: commitments, ...}, message)
    z_i = sign(cs, key_package, nonces, package)                  # round two (consumes the nonces)
    sig = aggregate(cs, package, {id: z_i, ...}, public_key_package)

Nonce generation is the RFC's hedged `nonce_generate`: H3(32 random bytes || secret share), so
a broken RNG alone does not repeat nonces across different shares, and tests inject the bytes.
`SigningNonces` are single use: `sign` marks them spent and refuses a second use.

`aggregate` checks the aggregate signature first (`cs.verify_signature`: libsodium for Ed25519,
libsecp256k1's BIP340 verifier for Taproot, the Schnorr equation for FROST(secp256k1)); only if
it fails does it verify each share, and it raises `InvalidSignatureShares(culprits)` naming
every identifier whose share is wrong (RFC 9591 section 5.4). `verify_signature_share` is the
per-share check.

BIP340 (Taproot suite): key packages are passed as stored; `signing_context` records whether
the group key has an odd y (then every signing share and verifying share is used negated) and
whether R has an odd y (then the nonces and commitment shares are), as ZF's hooks do. A
BIP341 tweak is applied by the caller before (`taproot.tweak_key_package` and
`tweak_public_key_package`, ZF's `sign_with_tweak` / `aggregate_with_tweak`).

What is and is not protected: nonces, shares and signing shares are Python ints that cannot
be wiped; they live in enclave memory until garbage collected. The protection is the enclave
boundary and single use (`spent`), not zeroization.

All points in a `SigningPackage` must come from `wire` decoding (strict) or from this module;
the math trusts them. Everything derived from (package, verifying key) -- binding factors,
per-signer commitment shares, group commitment, challenge -- is computed once in a
`SigningContext` and shared by signing, share verification and aggregation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from enclave.crypto.rng import Rng
from enclave.errors import EnclaveError, InvalidEncoding, InvalidParameters, LocalError
from enclave.protocols.frost.ciphersuite import Ciphersuite
from enclave.protocols.frost.keys import KeyPackage, PublicKeyPackage


class InvalidSignatureShares(EnclaveError):
    """Signature shares that fail verification; `culprits` are FROST identifiers."""

    def __init__(self, culprits: Iterable[int]) -> None:
        self.culprits = frozenset(culprits)
        super().__init__(f"invalid signature shares from {len(self.culprits)} signer(s)")


class InvalidCommitment(EnclaveError):
    """A signer's binding nonce commitment is not a valid point; `identifier` names it."""

    def __init__(self, identifier: int) -> None:
        self.identifier = identifier
        super().__init__("invalid binding nonce commitment")


@dataclass(frozen=True)
class SigningCommitments:
    """(D, E) as encodings. From `wire`, D is strictly decoded at once; E is validated by the one
    checked multiplication rho*E in `signing_context` (the group's `decode_mul` applies
    `decode`'s exact checks), which is the only place E is used as a point. Every path to a share
    or a signature goes through `signing_context`, so no unvalidated E reaches the math."""

    hiding: bytes
    binding: bytes


@dataclass(eq=False)
class SigningNonces:
    hiding: int = field(repr=False)
    binding: int = field(repr=False)
    commitments: SigningCommitments
    spent: bool = False


@dataclass(frozen=True)
class SigningPackage:
    commitments: Mapping[int, SigningCommitments]
    message: bytes = field(repr=False)


def nonce_generate(cs: Ciphersuite, secret: int, rng: Rng) -> int:
    return nonce_generate_from_random(cs, secret, rng.random_bytes(32))


def nonce_generate_from_random(cs: Ciphersuite, secret: int, random_bytes: bytes) -> int:
    if len(random_bytes) != 32:
        raise InvalidParameters("nonce randomness must be 32 bytes")
    k = cs.H3(random_bytes + cs.group.encode_scalar(secret))
    if k == 0:  # probability about 2^-252; a zero nonce would commit to the identity
        raise LocalError("zero nonce")
    return k


def nonces_from_scalars(cs: Ciphersuite, hiding: int, binding: int) -> SigningNonces:
    g = cs.group
    return SigningNonces(
        hiding, binding, SigningCommitments(g.encode(g.base_mul(hiding)), g.encode(g.base_mul(binding)))
    )


def commit(cs: Ciphersuite, signing_share: int, rng: Rng) -> SigningNonces:
    """Round one: fresh hedged nonces and their public commitments."""
    d = nonce_generate(cs, signing_share, rng)
    e = nonce_generate(cs, signing_share, rng)
    return nonces_from_scalars(cs, d, e)


def encode_group_commitment_list(cs: Ciphersuite, commitments: Mapping[int, SigningCommitments]) -> bytes:
    return b"".join(
        cs.encode_identifier(i) + commitments[i].hiding + commitments[i].binding for i in sorted(commitments)
    )


def binding_factor_prefix(cs: Ciphersuite, package: SigningPackage, verifying_key: bytes) -> bytes:
    """`verifying_key` is the key the signature verifies under (even y for BIP340)."""
    return verifying_key + cs.H4(package.message) + cs.H5(encode_group_commitment_list(cs, package.commitments))


def compute_binding_factors(cs: Ciphersuite, package: SigningPackage, verifying_key: bytes) -> dict[int, int]:
    prefix = binding_factor_prefix(cs, package, verifying_key)
    return {i: cs.H1(prefix + cs.encode_identifier(i)) for i in sorted(package.commitments)}


def lagrange_coefficient(order: int, identifier: int, identifiers: Iterable[int]) -> int:
    num, den = 1, 1
    seen = False
    for j in identifiers:
        if j == identifier:
            seen = True
            continue
        num = num * j % order
        den = den * (j - identifier) % order
    if not seen:
        raise InvalidParameters("identifier not among the signers")
    return num * pow(den, -1, order) % order


@dataclass(frozen=True)
class SigningContext:
    """Everything one signing package determines, computed once.

    `verifying_key` is the effective key (even y for BIP340); `key_negated` says the stored key
    packages are used negated, `nonces_negated` that the nonces and commitment shares are."""

    suite: Ciphersuite
    package: SigningPackage
    verifying_key: bytes
    binding_factors: dict[int, int]
    # The points whose sum is signer i's commitment share D_i + rho_i * E_i (one point, the
    # share itself, for this signer's own); summed only when a share is verified.
    commitment_parts: dict[int, tuple[Any, ...]]
    group_commitment: bytes  # encoding of R
    challenge: int
    key_negated: bool = False
    nonces_negated: bool = False

    def lagrange(self, identifier: int) -> int:
        return lagrange_coefficient(self.suite.order, identifier, self.package.commitments)

    def commitment_share(self, identifier: int) -> Any:
        return self.suite.group.sum(list(self.commitment_parts[identifier]))


def signing_context(
    cs: Ciphersuite,
    package: SigningPackage,
    verifying_key: bytes,
    own: tuple[int, SigningNonces] | None = None,
) -> SigningContext:
    """Binding factors, commitment shares, group commitment R and challenge c.

    `verifying_key` is the group key as stored in the key packages. With `own = (identifier,
    nonces)`, that signer's commitment share is computed from its nonces with one fixed-base
    multiplication instead of a variable-base one. Raises `InvalidCommitment(identifier)` if a
    binding commitment is not a valid point.
    """
    if not package.commitments:
        raise InvalidParameters("empty signing package")
    g = cs.group
    vk = cs.effective_key(verifying_key)
    rho = compute_binding_factors(cs, package, vk)
    parts: dict[int, tuple[Any, ...]] = {}
    for i, c in package.commitments.items():
        if own is not None and i == own[0]:
            n = own[1]
            parts[i] = (g.base_mul(n.hiding + rho[i] * n.binding),)
        else:
            try:
                parts[i] = (cs.point(c.hiding), g.decode_mul(c.binding, rho[i]))
            except InvalidEncoding:
                raise InvalidCommitment(i) from None
    # R in one sum (one libsecp256k1 call); per-signer shares only if a share is checked.
    r_point = g.sum([p for ps in parts.values() for p in ps])
    if g.is_identity(r_point):  # only a dishonest signer set gets here; nothing to sign
        raise InvalidParameters("the group commitment is the identity")
    r = g.encode(r_point)
    return SigningContext(
        cs,
        package,
        vk,
        rho,
        parts,
        r,
        cs.challenge(r, vk, package.message),
        cs.key_is_negated(verifying_key),
        cs.nonces_negated(r),
    )


def sign(
    cs: Ciphersuite,
    key: KeyPackage,
    nonces: SigningNonces,
    package: SigningPackage,
    ctx: SigningContext | None = None,
) -> int:
    """Round two: this participant's signature share z_i (RFC 9591 section 5.2)."""
    if nonces.spent:
        raise InvalidParameters("signing nonces already used")
    if len(package.commitments) < key.min_signers:
        raise InvalidParameters("fewer signers than the threshold")
    mine = package.commitments.get(key.identifier)
    if mine is None or mine != nonces.commitments:
        raise InvalidParameters("signing package does not carry this signer's commitments")
    nonces.spent = True
    if ctx is None:
        ctx = signing_context(cs, package, key.verifying_key, own=(key.identifier, nonces))
    n = cs.order
    lam = ctx.lagrange(key.identifier)
    rho = ctx.binding_factors[key.identifier]
    nonce = nonces.hiding + nonces.binding * rho
    share = key.signing_share
    if ctx.nonces_negated:
        nonce = -nonce
    if ctx.key_negated:
        share = -share
    return (nonce + lam * share * ctx.challenge) % n


def verify_signature_share(ctx: SigningContext, identifier: int, share: int, verifying_share: bytes) -> bool:
    """z_i * G == D_i + rho_i * E_i + (c * lambda_i) * Y_i (RFC 9591 section 5.4), with the
    commitment share and Y_i negated as `ctx` says (BIP340). `verifying_share` as stored."""
    cs = ctx.suite
    g = cs.group
    if not 0 <= share < cs.order or identifier not in ctx.commitment_parts:
        return False
    commitment_share = ctx.commitment_share(identifier)
    if ctx.nonces_negated:
        commitment_share = g.neg(commitment_share)
    weight = ctx.challenge * ctx.lagrange(identifier)
    if ctx.key_negated:
        weight = -weight
    rhs = g.add(commitment_share, g.mul(cs.point(verifying_share), weight))
    return g.eq(g.base_mul(share), rhs)


def aggregate(
    cs: Ciphersuite,
    package: SigningPackage,
    shares: Mapping[int, int],
    public: PublicKeyPackage,
    ctx: SigningContext | None = None,
) -> bytes:
    """Sum the shares into the suite's signature; on an invalid result name every bad signer."""
    if set(shares) != set(package.commitments):
        raise InvalidParameters("need exactly one share per committed signer")
    if public.min_signers is not None and len(shares) < public.min_signers:
        raise InvalidParameters("fewer signers than the threshold")
    if ctx is None:
        ctx = signing_context(cs, package, public.verifying_key)
    z = sum(shares.values()) % cs.order
    sig = cs.encode_signature(ctx.group_commitment, z)
    if cs.verify_signature(sig, package.message, ctx.verifying_key):
        return sig
    culprits = [
        i
        for i in sorted(shares)
        if i not in public.verifying_shares or not verify_signature_share(ctx, i, shares[i], public.verifying_shares[i])
    ]
    if not culprits:
        raise LocalError("aggregate invalid although every share verifies: inconsistent key packages")
    raise InvalidSignatureShares(culprits)
