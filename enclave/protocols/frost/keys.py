"""FROST key material: secret shares, key packages, public key packages, trusted-dealer keygen.

Shapes follow ZF frost (frost-core `keys`): a `SecretShare` is what a dealer hands one
participant (identifier, signing share, VSS commitment); `KeyPackage` is one participant's
long-lived signing state; `PublicKeyPackage` is the public part everyone (and the aggregator)
holds. Elements are stored as canonical 32-byte encodings, scalars as ints.

Keys produced by `trusted_dealer_keygen` are for tests and vectors; production keys come from
the DKG (`dkg`), where no single party ever knows the group secret.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from enclave import polynomial
from enclave.errors import InvalidParameters
from enclave.protocols.frost.ciphersuite import GROUP
from enclave.rng import Rng


@dataclass(frozen=True)
class SecretShare:
    identifier: int
    signing_share: int = field(repr=False)
    commitment: tuple[bytes, ...]  # VSS commitment a_k*G, k = 0..t-1

    def verify(self) -> tuple[bytes, bytes]:
        """Feldman-check the share; returns (verifying share, group verifying key)."""
        if not polynomial.verify_share(GROUP, self.commitment, self.identifier, self.signing_share):
            raise InvalidParameters("secret share does not match its commitment")
        return GROUP.base_mul(self.signing_share), self.commitment[0]


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


def key_package_from_secret_share(share: SecretShare) -> KeyPackage:
    verifying_share, verifying_key = share.verify()
    return KeyPackage(
        share.identifier, share.signing_share, verifying_share, verifying_key, len(share.commitment)
    )


def public_key_package_from_commitment(
    identifiers: Sequence[int], commitment: Sequence[bytes], min_signers: int | None = None
) -> PublicKeyPackage:
    """Verifying shares of every identifier evaluated from one (summed) VSS commitment."""
    at = polynomial.commitments_at(GROUP, commitment, identifiers)
    return PublicKeyPackage({i: at[i] for i in sorted(identifiers)}, commitment[0], min_signers)


def sum_commitments(commitments: Sequence[Sequence[bytes]]) -> tuple[bytes, ...]:
    """Coefficient-wise sum of DKG participants' VSS commitments (the group's commitment)."""
    t = len(commitments[0])
    if any(len(c) != t for c in commitments):
        raise InvalidParameters("commitments of different lengths")
    return tuple(GROUP.sum([c[k] for c in commitments]) for k in range(t))


def trusted_dealer_keygen(
    identifiers: Sequence[int], min_signers: int, rng: Rng, secret: int | None = None
) -> tuple[dict[int, SecretShare], PublicKeyPackage]:
    """Split a (random unless given) group secret into t-of-n shares with a VSS commitment."""
    validate_num_signers(min_signers, len(identifiers))
    s = GROUP.random_scalar(rng) if secret is None else secret % GROUP.order
    if s == 0:
        raise InvalidParameters("group secret must be non-zero")
    coeffs, values = polynomial.split(GROUP, s, min_signers, identifiers, rng)
    commitment = polynomial.commit(GROUP, coeffs)
    shares = {i: SecretShare(i, values[i], commitment) for i in sorted(values)}
    pub = PublicKeyPackage(
        {i: GROUP.base_mul(values[i]) for i in sorted(values)}, commitment[0], min_signers
    )
    return shares, pub


def check_public_key_package(pub: PublicKeyPackage, key: KeyPackage) -> None:
    """A public key package must agree with this participant's own key package."""
    if pub.verifying_key != key.verifying_key or pub.verifying_shares.get(key.identifier) != key.verifying_share:
        raise InvalidParameters("public key package does not match the key package")
