"""FROST share refresh: new shares of the same key, in the shapes of ZF frost's `keys::refresh`.

Every participant adds to its signing share a share of zero, so the group secret, the group key
and each participant's identifier stay; the old shares and the new ones cannot be combined.

By DKG (ZF's `refresh_dkg_part_1`, `refresh_dkg_part2`, `refresh_dkg_shares`): the Pedersen
DKG of `dkg` with the constant term of every polynomial fixed to zero.
- Round one broadcasts a ZF `round1::Package` whose commitment leaves out the identity
  a_0*G: it holds a_1*G .. a_{t-1}*G, so t-1 elements. Its proof of knowledge is ZF's shape for
  a zero secret (z = k, a commitment to nothing) and ZF does not check it; neither does this
  module. What enforces the zero constant is the Feldman check: a recipient checks its share
  against the sender's commitment with the identity put back in front, so no sender can shift
  the secret.
- Round two sends f_i(j) to each j (encrypted as in the DKG) and each j checks it.
- The result: s_j' = s_j + sum_i f_i(j), and every verifying share Y_k' = Y_k + sum_i f_i(k)*G
  evaluated from the summed commitments; the verifying key is the old one, unchanged.

By a dealer (ZF's `compute_refreshing_shares`, `refresh_share`), for a key imported from a
dealer: the dealer deals a zero sharing with the same commitment convention.

Every round-1 broadcast also carries `source_digest` of the public key package being
refreshed, and each party compares it with its own: a host that hands the parties shares of
different generations of the key (one party's from before an earlier refresh) gets an abort
naming nobody instead of a new key whose shares do not fit together.

A refresh keeps the threshold and the participant set (moving the key to other parties or
another threshold is a reshare). Nothing here runs the suite's post-DKG hook again: it already
ran on the key at its DKG (for Taproot, ZF's tweak), and adding shares of zero keeps the key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from door.encoding import lp32
from enclave.crypto import polynomial
from enclave.crypto.rng import Rng
from enclave.errors import EnclaveError, InvalidParameters
from enclave.group.base import Element
from enclave.protocols.frost import wire
from enclave.protocols.frost.ciphersuite import Ciphersuite
from enclave.protocols.frost.dkg import DkgFault, Round1Package, Round1Secret, Round2Secret
from enclave.protocols.frost.keys import (
    KeyPackage,
    PublicKeyPackage,
    SecretShare,
    check_public_key_package,
    validate_num_signers,
)

SOURCE_TAG = b"mpc-signer/frost/refresh/source/v1"
SOURCE_DIGEST_LEN = 32


def source_digest(cs: Ciphersuite, public: PublicKeyPackage) -> bytes:
    """What every party of a refresh must agree it refreshes: the key's public key package."""
    encoded = wire.encode_public_key_package(cs, public)
    return hashlib.sha256(lp32(SOURCE_TAG) + lp32(cs.short_name.encode()) + lp32(encoded)).digest()


def check_old_key(key: KeyPackage, public: PublicKeyPackage, identifiers: Sequence[int], min_signers: int) -> None:
    """The key being refreshed must be this participant's share of a key over exactly these
    identifiers and this threshold."""
    check_public_key_package(public, key)
    if sorted(public.verifying_shares) != sorted(identifiers):
        raise InvalidParameters("a refresh keeps the key's participants: the identifiers must be the key's")
    if key.min_signers != min_signers or public.min_signers not in (None, min_signers):
        raise InvalidParameters("a refresh keeps the key's threshold")


def part1(
    cs: Ciphersuite, identifier: int, max_signers: int, min_signers: int, rng: Rng
) -> tuple[Round1Secret, Round1Package]:
    """A zero-constant polynomial; the package commits to a_1..a_{t-1} (no identity)."""
    validate_num_signers(min_signers, max_signers)
    g = cs.group
    coeffs = polynomial.random_polynomial(g, 0, min_signers, rng)
    commitment = tuple(g.encode(p) for p in polynomial.commit(g, coeffs[1:]))
    k, r_point = cs.proof_nonce(rng)
    # ZF's proof for a zero secret: z = k + 0*c. It proves nothing and nobody checks it.
    package = Round1Package(commitment, g.encode(r_point), k)
    return Round1Secret(identifier, coeffs, commitment, min_signers, max_signers), package


def check_round1_package(cs: Ciphersuite, secret: Round1Secret, sender: int, package: Round1Package) -> None:
    """Shape only: t-1 commitment elements. The caller decoded every element strictly
    (wire.decode_round1_package): there is no proof check here to validate them."""
    if len(package.commitment) != secret.min_signers - 1:
        raise DkgFault(sender, "refresh commitment length does not match the threshold")


def _with_identity(cs: Ciphersuite, commitment: Sequence[bytes]) -> list[Element]:
    g = cs.group
    return [g.identity(), *(cs.point(c) for c in commitment)]


def check_share(cs: Ciphersuite, recipient: int, sender: int, commitment: Sequence[bytes], share: int) -> None:
    """Feldman check of f_sender(recipient) against a_0*G = identity and the sender's commitment."""
    if not polynomial.verify_share(cs.group, _with_identity(cs, commitment), recipient, share):
        raise DkgFault(sender, "refresh share does not match the sender's commitment")


def _zero_commitment(cs: Ciphersuite, commitments: Sequence[Sequence[bytes]]) -> list[Element]:
    """Coefficient-wise sum of zero-constant commitments, identity in front."""
    g = cs.group
    width = len(commitments[0])
    if any(len(c) != width for c in commitments):
        raise InvalidParameters("refresh commitments of different lengths")
    summed = [g.sum([cs.point(c[k]) for c in commitments]) for k in range(width)]
    return [g.identity(), *summed]


def _refreshed_public(cs: Ciphersuite, public: PublicKeyPackage, zero: Sequence[Element]) -> PublicKeyPackage:
    g = cs.group
    at = polynomial.commitments_at(g, zero, public.verifying_shares)
    shares = {j: g.encode(g.add(cs.point(y), at[j])) for j, y in sorted(public.verifying_shares.items())}
    return PublicKeyPackage(shares, public.verifying_key, public.min_signers)


def part3(
    cs: Ciphersuite,
    secret: Round2Secret,
    round1: Mapping[int, Round1Package],
    round2: Mapping[int, int],
    key: KeyPackage,
    public: PublicKeyPackage,
) -> tuple[KeyPackage, PublicKeyPackage]:
    """The refreshed key package and public key package (same verifying key).

    As `dkg.part3`, the Feldman checks are batched on the sum; on a mismatch every share is
    checked alone and the first bad sender named."""
    if len(round1) != secret.max_signers - 1 or secret.identifier in round1 or set(round2) != set(round1):
        raise InvalidParameters("need one package and one share from every other participant")
    if secret.identifier != key.identifier:
        raise InvalidParameters("the refresh is for another participant's key")
    check_old_key(key, public, [secret.identifier, *round1], secret.min_signers)
    commitments = {secret.identifier: secret.commitment} | {j: p.commitment for j, p in round1.items()}
    zero = _zero_commitment(cs, [commitments[j] for j in sorted(commitments)])
    refreshed = _refreshed_public(cs, public, zero)
    g = cs.group
    delta = (secret.secret_share + sum(round2.values())) % cs.order
    if not g.eq(g.base_mul(delta), polynomial.commitment_at(g, zero, secret.identifier)):
        for sender in sorted(round2):
            check_share(cs, secret.identifier, sender, round1[sender].commitment, round2[sender])
        raise InvalidParameters("share sum inconsistent although each share verifies")  # unreachable
    signing_share = (key.signing_share + delta) % cs.order
    verifying_share = g.encode(g.base_mul(signing_share))
    if verifying_share != refreshed.verifying_shares[key.identifier]:
        raise InvalidParameters("refreshed share inconsistent with the refreshed public key package")  # unreachable
    return KeyPackage(key.identifier, signing_share, verifying_share, key.verifying_key, key.min_signers), refreshed


# -- by a dealer ----------------------------------------------------------------------------------


def refreshing_shares(
    cs: Ciphersuite, public: PublicKeyPackage, identifiers: Sequence[int], min_signers: int, rng: Rng
) -> tuple[dict[int, SecretShare], PublicKeyPackage]:
    """A dealer's zero sharing (commitments without the identity) and the refreshed public key
    package, for every identifier of the key (ZF's `compute_refreshing_shares`)."""
    validate_num_signers(min_signers, len(identifiers))
    if sorted(identifiers) != sorted(public.verifying_shares):
        raise InvalidParameters("a refresh keeps the key's participants: the identifiers must be the key's")
    g = cs.group
    coeffs, values = polynomial.split(g, 0, min_signers, identifiers, rng)
    commitment = tuple(g.encode(p) for p in polynomial.commit(g, coeffs[1:]))
    shares = {i: SecretShare(i, values[i], commitment) for i in sorted(values)}
    return shares, _refreshed_public(cs, public, _zero_commitment(cs, [commitment]))


def refresh_share(cs: Ciphersuite, zero_share: SecretShare, key: KeyPackage) -> KeyPackage:
    """This participant's refreshed key package from the dealer's zero share (ZF's `refresh_share`)."""
    if zero_share.identifier != key.identifier:
        raise InvalidParameters("the refreshing share is for another participant")
    if len(zero_share.commitment) != key.min_signers - 1:
        raise InvalidParameters("a refresh keeps the key's threshold")
    try:
        check_share(cs, key.identifier, 0, zero_share.commitment, zero_share.signing_share)
    except DkgFault:
        raise InvalidParameters("refreshing share does not match the dealer's commitment") from None
    except EnclaveError:
        raise InvalidParameters("refreshing share: malformed commitment") from None
    g = cs.group
    signing_share = (key.signing_share + zero_share.signing_share) % cs.order
    return KeyPackage(
        key.identifier, signing_share, g.encode(g.base_mul(signing_share)), key.verifying_key, key.min_signers
    )
