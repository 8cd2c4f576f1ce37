"""FROST(Ed25519, SHA-512) signing per RFC 9591 sections 4 and 5, as pure functions.

    nonces = commit(key_package.signing_share, rng)          # round one; publish nonces.commitments
    package = SigningPackage({id: commitments, ...}, message)
    z_i = sign(key_package, nonces, package)                  # round two (consumes the nonces)
    sig = aggregate(package, {id: z_i, ...}, public_key_package)  # 64-byte RFC 8032 signature

Nonce generation is the RFC's hedged `nonce_generate`: H3(32 random bytes || secret share), so
a broken RNG alone does not repeat nonces across different shares, and tests inject the bytes.
`SigningNonces` are single use: `sign` marks them spent and refuses a second use.

`aggregate` checks the aggregate signature first (libsodium, RFC 8032); only if it fails does it
verify each share, and it raises `InvalidSignatureShares(culprits)` naming every identifier whose
share is wrong (RFC 9591 section 5.4). `verify_signature_share` is the per-share check.

What is and is not protected: nonces, shares and signing shares are Python ints that cannot
be wiped; they live in enclave memory until garbage collected. The protection is the enclave
boundary and single use (`spent`), not zeroization.

All elements in a `SigningPackage` must come from `wire` decoding (strict) or from this
module; the math trusts them. Everything derived from (package, verifying key) -- binding
factors, per-signer commitment shares, group commitment, challenge -- is computed once in a
`SigningContext` and shared by signing, share verification and aggregation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError

from enclave.errors import EnclaveError, InvalidEncoding, InvalidParameters, LocalError
from enclave.protocols.frost.ciphersuite import GROUP, H1, H2, H3, H4, H5, encode_identifier
from enclave.protocols.frost.keys import KeyPackage, PublicKeyPackage
from enclave.rng import Rng

L = GROUP.order


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
    """(D, E). From `wire`, D is strictly decoded at once; E is validated by the one checked
    multiplication rho*E in `signing_context` (libsodium applies `decode`'s exact checks), which
    is the only place E is used as a point. Every path to a share or a signature goes through
    `signing_context`, so no unvalidated E reaches the math."""

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


def nonce_generate(secret: int, rng: Rng) -> int:
    return nonce_generate_from_random(secret, rng.random_bytes(32))


def nonce_generate_from_random(secret: int, random_bytes: bytes) -> int:
    if len(random_bytes) != 32:
        raise InvalidParameters("nonce randomness must be 32 bytes")
    k = H3(random_bytes + GROUP.encode_scalar(secret))
    if k == 0:  # probability 2^-252; a zero nonce would commit to the identity
        raise LocalError("zero nonce")
    return k


def nonces_from_scalars(hiding: int, binding: int) -> SigningNonces:
    return SigningNonces(
        hiding, binding, SigningCommitments(GROUP.base_mul(hiding), GROUP.base_mul(binding))
    )


def commit(signing_share: int, rng: Rng) -> SigningNonces:
    """Round one: fresh hedged nonces and their public commitments."""
    d = nonce_generate(signing_share, rng)
    e = nonce_generate(signing_share, rng)
    return nonces_from_scalars(d, e)


def encode_group_commitment_list(commitments: Mapping[int, SigningCommitments]) -> bytes:
    return b"".join(
        encode_identifier(i) + commitments[i].hiding + commitments[i].binding for i in sorted(commitments)
    )


def binding_factor_prefix(package: SigningPackage, verifying_key: bytes) -> bytes:
    return (
        verifying_key
        + H4(package.message)
        + H5(encode_group_commitment_list(package.commitments))
    )


def compute_binding_factors(package: SigningPackage, verifying_key: bytes) -> dict[int, int]:
    prefix = binding_factor_prefix(package, verifying_key)
    return {i: H1(prefix + encode_identifier(i)) for i in sorted(package.commitments)}


def compute_challenge(group_commitment: bytes, verifying_key: bytes, message: bytes) -> int:
    return H2(group_commitment + verifying_key + message)


def lagrange_coefficient(identifier: int, identifiers: Iterable[int]) -> int:
    num, den = 1, 1
    seen = False
    for j in identifiers:
        if j == identifier:
            seen = True
            continue
        num = num * j % L
        den = den * (j - identifier) % L
    if not seen:
        raise InvalidParameters("identifier not among the signers")
    return num * pow(den, -1, L) % L


@dataclass(frozen=True)
class SigningContext:
    """Everything one signing package determines, computed once."""

    package: SigningPackage
    verifying_key: bytes
    binding_factors: dict[int, int]
    commitment_shares: dict[int, bytes]  # D_i + rho_i * E_i
    group_commitment: bytes
    challenge: int

    def lagrange(self, identifier: int) -> int:
        return lagrange_coefficient(identifier, self.package.commitments)


def signing_context(
    package: SigningPackage,
    verifying_key: bytes,
    own: tuple[int, SigningNonces] | None = None,
) -> SigningContext:
    """Binding factors, commitment shares, group commitment R and challenge c.

    With `own = (identifier, nonces)`, that signer's commitment share is computed from its
    nonces with one fixed-base multiplication instead of a variable-base one. Raises
    `InvalidCommitment(identifier)` if a binding commitment is not a valid point.
    """
    if not package.commitments:
        raise InvalidParameters("empty signing package")
    rho = compute_binding_factors(package, verifying_key)
    shares: dict[int, bytes] = {}
    for i, c in package.commitments.items():
        if own is not None and i == own[0]:
            n = own[1]
            shares[i] = GROUP.base_mul(n.hiding + rho[i] * n.binding)
        else:
            try:
                shares[i] = GROUP.add(c.hiding, GROUP.decode_mul(c.binding, rho[i]))
            except InvalidEncoding:
                raise InvalidCommitment(i) from None
    r = GROUP.sum(list(shares.values()))
    return SigningContext(
        package, verifying_key, rho, shares, r, compute_challenge(r, verifying_key, package.message)
    )


def sign(
    key: KeyPackage, nonces: SigningNonces, package: SigningPackage, ctx: SigningContext | None = None
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
        ctx = signing_context(package, key.verifying_key, own=(key.identifier, nonces))
    lam = ctx.lagrange(key.identifier)
    rho = ctx.binding_factors[key.identifier]
    return (nonces.hiding + nonces.binding * rho + lam * key.signing_share * ctx.challenge) % L


def verify_signature_share(ctx: SigningContext, identifier: int, share: int, verifying_share: bytes) -> bool:
    """z_i * G == D_i + rho_i * E_i + (c * lambda_i) * Y_i (RFC 9591 section 5.4)."""
    if not 0 <= share < L or identifier not in ctx.commitment_shares:
        return False
    lhs = GROUP.base_mul(share)
    rhs = GROUP.add(
        ctx.commitment_shares[identifier],
        GROUP.mul(verifying_share, ctx.challenge * ctx.lagrange(identifier)),
    )
    return lhs == rhs


def verify_signature(signature: bytes, message: bytes, verifying_key: bytes) -> bool:
    """RFC 8032 verification by libsodium (the same check any Ed25519 verifier applies)."""
    try:
        crypto_sign_open(signature + message, verifying_key)
    except (BadSignatureError, ValueError, TypeError):
        return False
    return True


def aggregate(
    package: SigningPackage,
    shares: Mapping[int, int],
    public: PublicKeyPackage,
    ctx: SigningContext | None = None,
) -> bytes:
    """Sum the shares into (R, z); on an invalid result name every signer with a bad share."""
    if set(shares) != set(package.commitments):
        raise InvalidParameters("need exactly one share per committed signer")
    if public.min_signers is not None and len(shares) < public.min_signers:
        raise InvalidParameters("fewer signers than the threshold")
    if ctx is None:
        ctx = signing_context(package, public.verifying_key)
    z = sum(shares.values()) % L
    sig = ctx.group_commitment + GROUP.encode_scalar(z)
    if verify_signature(sig, package.message, public.verifying_key):
        return sig
    culprits = [
        i
        for i in sorted(shares)
        if i not in public.verifying_shares
        or not verify_signature_share(ctx, i, shares[i], public.verifying_shares[i])
    ]
    if not culprits:
        raise LocalError("aggregate invalid although every share verifies: inconsistent key packages")
    raise InvalidSignatureShares(culprits)
