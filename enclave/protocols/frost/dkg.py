"""Pedersen DKG with proof of knowledge, as ZF frost's `keys::dkg` (FROST paper, figure 1).

    secret1, package = part1(identifier, max_signers, min_signers, rng)       # broadcast package
    secret2, shares_out = part2(secret1, {other_id: package, ...})            # send shares_out[j] to j
    key, public = part3(secret2, {other_id: package, ...}, {other_id: share_for_me, ...})

As in ZF frost, the round-2 secret keeps only f_i(i) and the commitment: the polynomial's
coefficients are not carried past round one.

Proof of knowledge of a_i0 (ZF frost, byte for byte): k random, R = k*G,
c = HDKG(identifier || a_i0*G || R), z = k + a_i0*c; verified as R == z*G - c*phi_0.
Faults raise `DkgFault(culprit, reason)` with the culprit's identifier: wrong commitment
length, bad proof of knowledge, share that fails the Feldman check against its sender's
commitment. As in ZF frost, a recipient's claim that a share is bad is not publicly provable
(no complaint round): the abort names the sender the recipient accuses. The challenge carries
no session id because it must equal ZF frost's for interoperability; it binds the identifier
and the commitment, every session uses fresh polynomials, and the transport authenticates who
sent a package, so a proof cannot be replayed under another identifier.

Round-2 shares are secret and addressed to one participant, so they travel encrypted:
`share_cipher(...)` derives a ChaCha20-Poly1305 key per (session, sender, recipient) as
HKDF-SHA256(ikm = x_s * X_r, salt = SHA-256(session id), info = tag || X_s || X_r || id_s || id_r)
where X = x*G are per-session ephemeral Ed25519-group keys broadcast in round one next to the
ZF package. Each key encrypts exactly one message, so a fixed zero nonce is safe; the associated
data repeats session id, sender and recipient. A relay sees only ciphertext, and a ciphertext
cannot be moved to another session, sender or recipient.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from enclave import polynomial
from enclave.errors import EnclaveError, InvalidEncoding, InvalidParameters
from enclave.protocols.frost.ciphersuite import GROUP, HDKG, encode_identifier
from enclave.protocols.frost.keys import (
    KeyPackage,
    PublicKeyPackage,
    public_key_package_from_commitment,
    sum_commitments,
    validate_num_signers,
)
from enclave.rng import Rng

L = GROUP.order


class DkgFault(EnclaveError):
    """A DKG participant misbehaved; `culprit` is its FROST identifier."""

    def __init__(self, culprit: int, reason: str) -> None:
        self.culprit = culprit
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class Round1Package:
    commitment: tuple[bytes, ...]
    proof_r: bytes
    proof_z: int


@dataclass(frozen=True)
class Round1Secret:
    identifier: int
    coefficients: tuple[int, ...] = field(repr=False)
    commitment: tuple[bytes, ...]
    min_signers: int
    max_signers: int


@dataclass(frozen=True)
class Round2Secret:
    identifier: int
    commitment: tuple[bytes, ...]
    secret_share: int = field(repr=False)  # f_i(i)
    min_signers: int
    max_signers: int


def round2_secret(secret: Round1Secret) -> Round2Secret:
    own = polynomial.evaluate(secret.coefficients, secret.identifier, L)
    return Round2Secret(secret.identifier, secret.commitment, own, secret.min_signers, secret.max_signers)


def pok_challenge(identifier: int, verifying_key: bytes, r: bytes) -> int:
    return HDKG(encode_identifier(identifier) + verifying_key + r)


def part1(identifier: int, max_signers: int, min_signers: int, rng: Rng) -> tuple[Round1Secret, Round1Package]:
    validate_num_signers(min_signers, max_signers)
    coeffs = polynomial.random_polynomial(GROUP, GROUP.random_scalar(rng), min_signers, rng)
    commitment = polynomial.commit(GROUP, coeffs)
    k = GROUP.random_scalar(rng)
    r = GROUP.base_mul(k)
    z = (k + coeffs[0] * pok_challenge(identifier, commitment[0], r)) % L
    secret = Round1Secret(identifier, coeffs, commitment, min_signers, max_signers)
    return secret, Round1Package(commitment, r, z)


def verify_proof_of_knowledge(identifier: int, package: Round1Package) -> bool:
    """R == z*G - c*phi_0. Also validates phi_0 (checked multiplication; raises InvalidEncoding)
    and R (equal to a canonical prime-order point, or the proof fails), see wire.parse_round1_package."""
    c = pok_challenge(identifier, package.commitment[0], package.proof_r)
    expected = GROUP.sub(GROUP.base_mul(package.proof_z), GROUP.decode_mul(package.commitment[0], c))
    return expected == package.proof_r and not GROUP.is_identity(expected)


def check_round1_package(secret: Round1Secret, sender: int, package: Round1Package) -> None:
    if len(package.commitment) != secret.min_signers:
        raise DkgFault(sender, "commitment length does not match the threshold")
    try:
        ok = verify_proof_of_knowledge(sender, package)
    except InvalidEncoding:
        raise DkgFault(sender, "malformed round-1 package") from None
    if not ok:
        raise DkgFault(sender, "invalid proof of knowledge")


def _check_peers(secret: Round1Secret | Round2Secret, peers: Mapping[int, object]) -> None:
    if len(peers) != secret.max_signers - 1 or secret.identifier in peers:
        raise InvalidParameters("need one package from every other participant")


def part2(secret: Round1Secret, round1: Mapping[int, Round1Package]) -> tuple[Round2Secret, dict[int, int]]:
    """Verify every round-1 package and compute the share f_i(j) for each other participant."""
    _check_peers(secret, round1)
    for sender in sorted(round1):
        check_round1_package(secret, sender, round1[sender])
    return round2_secret(secret), {j: share_for(secret, j) for j in sorted(round1)}


def share_for(secret: Round1Secret, recipient: int) -> int:
    return polynomial.evaluate(secret.coefficients, recipient, L)


def check_round2_share(recipient: int, sender: int, commitment: tuple[bytes, ...], share: int) -> None:
    if not polynomial.verify_share(GROUP, commitment, recipient, share):
        raise DkgFault(sender, "secret share does not match the sender's commitment")


def part3(
    secret: Round2Secret, round1: Mapping[int, Round1Package], round2: Mapping[int, int]
) -> tuple[KeyPackage, PublicKeyPackage]:
    """Verify the received shares and assemble this participant's key packages.

    The Feldman checks are batched: sum_j f_j(i)*G against this participant's verifying share
    evaluated from the summed commitment, which the public key package needs anyway (only the
    sum of the shares is ever used, so the batch check protects exactly what matters). If it
    fails, every share is checked alone and the first bad sender is named.
    """
    _check_peers(secret, round1)
    if set(round2) != set(round1):
        raise InvalidParameters("round-2 shares must come from the round-1 senders")
    commitments = {secret.identifier: secret.commitment} | {j: p.commitment for j, p in round1.items()}
    group_commitment = sum_commitments([commitments[j] for j in sorted(commitments)])
    public = public_key_package_from_commitment(sorted(commitments), group_commitment, secret.min_signers)
    total = (secret.secret_share + sum(round2.values())) % L
    verifying_share = GROUP.base_mul(total)
    if public.verifying_shares[secret.identifier] != verifying_share:
        for sender in sorted(round2):
            check_round2_share(secret.identifier, sender, round1[sender].commitment, round2[sender])
        raise InvalidParameters("share sum inconsistent although each share verifies")  # unreachable
    key = KeyPackage(secret.identifier, total, verifying_share, public.verifying_key, secret.min_signers)
    return key, public


# -- encryption of round-2 shares ---------------------------------------------------------------

_KDF_TAG = b"mpc-signer/frost-ed25519/dkg-share-key/v1"
_AD_TAG = b"mpc-signer/frost-ed25519/dkg-share/v1"
_NONCE = bytes(12)


def _share_key(
    session_id: bytes, shared: bytes, sender_pub: bytes, recipient_pub: bytes, sender: int, recipient: int
) -> ChaCha20Poly1305:
    info = _KDF_TAG + sender_pub + recipient_pub + encode_identifier(sender) + encode_identifier(recipient)
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=hashlib.sha256(session_id).digest(), info=info
    ).derive(shared)
    return ChaCha20Poly1305(key)


def _share_ad(session_id: bytes, sender: int, recipient: int) -> bytes:
    return (
        _AD_TAG
        + len(session_id).to_bytes(4, "big")
        + session_id
        + encode_identifier(sender)
        + encode_identifier(recipient)
    )


def shared_secret(my_secret: int, their_pub: bytes) -> bytes:
    """x_me * X_them; the same value in both directions, so compute it once per pair.

    `their_pub` may be raw peer bytes: the checked multiplication validates it (raises
    InvalidEncoding for anything `decode` would refuse)."""
    return GROUP.decode_mul(their_pub, my_secret)


def encrypt_share(
    session_id: bytes, shared: bytes, my_pub: bytes, their_pub: bytes, me: int, them: int, plaintext: bytes
) -> bytes:
    aead = _share_key(session_id, shared, my_pub, their_pub, me, them)
    return aead.encrypt(_NONCE, plaintext, _share_ad(session_id, me, them))


def decrypt_share(
    session_id: bytes, shared: bytes, my_pub: bytes, their_pub: bytes, me: int, them: int, ciphertext: bytes
) -> bytes:
    """Raises `DkgFault(them)` if the ciphertext does not authenticate."""
    aead = _share_key(session_id, shared, their_pub, my_pub, them, me)
    try:
        return aead.decrypt(_NONCE, ciphertext, _share_ad(session_id, them, me))
    except InvalidTag:
        raise DkgFault(them, "encrypted share does not authenticate") from None
