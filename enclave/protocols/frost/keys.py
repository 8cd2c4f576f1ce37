"""FROST key material: secret shares, key packages, public key packages, trusted-dealer keygen.

Shapes follow ZF frost (frost-core `keys`): a `SecretShare` is what a dealer hands one
participant (identifier, signing share, VSS commitment); `KeyPackage` is one participant's
long-lived signing state; `PublicKeyPackage` is the public part everyone (and the aggregator)
holds. Elements are stored as their canonical encodings (bytes: 32 for Ed25519, 33 compressed
for secp256k1), scalars as ints; the suite's group does the arithmetic.

Keys produced by `trusted_dealer_keygen` are for tests and vectors; production keys come from
the DKG (`dkg`), where no single party ever knows the group secret.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from enclave.crypto import polynomial
from enclave.crypto.rng import Rng
from enclave.errors import InvalidParameters

if TYPE_CHECKING:
    from enclave.protocols.frost.ciphersuite import Ciphersuite


@dataclass(frozen=True)
class SecretShare:
    identifier: int
    signing_share: int = field(repr=False)
    commitment: tuple[bytes, ...]  # VSS commitment a_k*G, k = 0..t-1

    def verify(self, cs: Ciphersuite) -> tuple[bytes, bytes]:
        """Feldman-check the share; returns (verifying share, group verifying key)."""
        g = cs.group
        points = [cs.point(c) for c in self.commitment]
        if not polynomial.verify_share(g, points, self.identifier, self.signing_share):
            raise InvalidParameters("secret share does not match its commitment")
        return g.encode(g.base_mul(self.signing_share)), self.commitment[0]


@dataclass(frozen=True)
class KeyPackage:
    identifier: int
    signing_share: int = field(repr=False)
    verifying_share: bytes
    verifying_key: bytes
    min_signers: int


@dataclass(frozen=True)
class PublicKeyPackage:
    verifying_shares: dict[int, bytes]
    verifying_key: bytes
    min_signers: int | None = None


def validate_num_signers(min_signers: int, max_signers: int) -> None:
    if not 2 <= min_signers <= max_signers <= 255:
        raise InvalidParameters("need 2 <= t <= n <= 255")


def key_package_from_secret_share(cs: Ciphersuite, share: SecretShare) -> KeyPackage:
    verifying_share, verifying_key = share.verify(cs)
    return KeyPackage(share.identifier, share.signing_share, verifying_share, verifying_key, len(share.commitment))


def public_key_package_from_commitment(
    cs: Ciphersuite, identifiers: Sequence[int], commitment: Sequence[bytes], min_signers: int | None = None
) -> PublicKeyPackage:
    """Verifying shares of every identifier evaluated from one (summed) VSS commitment."""
    g = cs.group
    at = polynomial.commitments_at(g, [cs.point(c) for c in commitment], identifiers)
    return PublicKeyPackage({i: g.encode(at[i]) for i in sorted(identifiers)}, commitment[0], min_signers)


def sum_commitments(cs: Ciphersuite, commitments: Sequence[Sequence[bytes]]) -> tuple[bytes, ...]:
    """Coefficient-wise sum of DKG participants' VSS commitments (the group's commitment)."""
    t = len(commitments[0])
    if any(len(c) != t for c in commitments):
        raise InvalidParameters("commitments of different lengths")
    g = cs.group
    out = []
    for k in range(t):
        total = g.sum([cs.point(c[k]) for c in commitments])
        if g.is_identity(total):
            raise InvalidParameters("a summed commitment is the identity")
        out.append(g.encode(total))
    return tuple(out)


def trusted_dealer_keygen(
    cs: Ciphersuite, identifiers: Sequence[int], min_signers: int, rng: Rng, secret: int | None = None
) -> tuple[dict[int, SecretShare], PublicKeyPackage]:
    """Split a (random unless given) group secret into t-of-n shares with a VSS commitment.

    As ZF's `generate_with_dealer`, no suite hook runs here (a Taproot key is not tweaked)."""
    validate_num_signers(min_signers, len(identifiers))
    g = cs.group
    s = g.random_scalar(rng) if secret is None else secret % g.order
    if s == 0:
        raise InvalidParameters("group secret must be non-zero")
    coeffs, values = polynomial.split(g, s, min_signers, identifiers, rng)
    commitment = tuple(g.encode(p) for p in polynomial.commit(g, coeffs))
    shares = {i: SecretShare(i, values[i], commitment) for i in sorted(values)}
    pub = PublicKeyPackage({i: g.encode(g.base_mul(values[i])) for i in sorted(values)}, commitment[0], min_signers)
    return shares, pub


def check_public_key_package(pub: PublicKeyPackage, key: KeyPackage) -> None:
    """A public key package must agree with this participant's own key package."""
    if pub.verifying_key != key.verifying_key or pub.verifying_shares.get(key.identifier) != key.verifying_share:
        raise InvalidParameters("public key package does not match the key package")
