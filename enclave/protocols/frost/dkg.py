"""Pedersen DKG with proof of knowledge, as ZF frost's `keys::dkg` (FROST paper, figure 1).

    secret1, package = part1(cs, identifier, max_signers, min_signers, rng)   # broadcast package
    check_round1_package(cs, secret1, other_id, package)                      # each peer's package
    secret2 = round2_secret(cs, secret1); share_for(cs, secret1, j)           # send f_i(j) to j
    key, public = part3(cs, secret2, {other_id: package, ...}, {other_id: share_for_me, ...})

(ZF's `part2` is the middle line; `enclave.protocols.frost.rounds.DkgRound1` runs it per message.)

As in ZF frost, the round-2 secret keeps only f_i(i) and the commitment: the polynomial's
coefficients are not carried past round one.

Proof of knowledge of a_i0 (ZF frost, byte for byte): k random, R = k*G (even y for BIP340,
whose signature encoding is x-only: `cs.proof_nonce`), c = HDKG(identifier || a_i0*G || R) with
the elements' encodings, z = k + a_i0*c; verified as R == z*G - c*phi_0. The output goes
through `cs.post_dkg` (ZF's hook; the Taproot suite tweaks the key there).
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
where X = x*G are per-session ephemeral keys in the suite's group broadcast in round one next to
the ZF package, and the tag names the suite (`cs.short_name`). Each key encrypts exactly one
message, so a fixed zero nonce is safe; the associated data repeats session id, sender and
recipient. A relay sees only ciphertext, and a ciphertext
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

from enclave.crypto import polynomial
from enclave.crypto.rng import Rng
from enclave.errors import EnclaveError, InvalidEncoding, InvalidParameters
from enclave.protocols.frost.ciphersuite import Ciphersuite
from enclave.protocols.frost.keys import (
    KeyPackage,
    PublicKeyPackage,
    public_key_package_from_commitment,
    sum_commitments,
    validate_num_signers,
)


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


def round2_secret(cs: Ciphersuite, secret: Round1Secret) -> Round2Secret:
    own = polynomial.evaluate(secret.coefficients, secret.identifier, cs.order)
    return Round2Secret(secret.identifier, secret.commitment, own, secret.min_signers, secret.max_signers)


def pok_challenge(cs: Ciphersuite, identifier: int, verifying_key: bytes, r: bytes) -> int:
    return cs.HDKG(cs.encode_identifier(identifier) + verifying_key + r)


def part1(
    cs: Ciphersuite, identifier: int, max_signers: int, min_signers: int, rng: Rng
) -> tuple[Round1Secret, Round1Package]:
    validate_num_signers(min_signers, max_signers)
    g = cs.group
    coeffs = polynomial.random_polynomial(g, g.random_scalar(rng), min_signers, rng)
    commitment = tuple(g.encode(p) for p in polynomial.commit(g, coeffs))
    k, r_point = cs.proof_nonce(rng)
    r = g.encode(r_point)
    z = (k + coeffs[0] * pok_challenge(cs, identifier, commitment[0], r)) % cs.order
    secret = Round1Secret(identifier, coeffs, commitment, min_signers, max_signers)
    return secret, Round1Package(commitment, r, z)


def verify_proof_of_knowledge(cs: Ciphersuite, identifier: int, package: Round1Package) -> bool:
    """R == z*G - c*phi_0. Also validates phi_0 (checked multiplication; raises InvalidEncoding)
    and R (equal to the encoding of a valid point, or the proof fails), see wire.parse_round1_package."""
    g = cs.group
    c = pok_challenge(cs, identifier, package.commitment[0], package.proof_r)
    expected = g.sub(g.base_mul(package.proof_z), g.decode_mul(package.commitment[0], c))
    return not g.is_identity(expected) and g.encode(expected) == package.proof_r


def check_round1_package(cs: Ciphersuite, secret: Round1Secret, sender: int, package: Round1Package) -> None:
    if len(package.commitment) != secret.min_signers:
        raise DkgFault(sender, "commitment length does not match the threshold")
    try:
        ok = verify_proof_of_knowledge(cs, sender, package)
    except InvalidEncoding:
        raise DkgFault(sender, "malformed round-1 package") from None
    if not ok:
        raise DkgFault(sender, "invalid proof of knowledge")


def _check_peers(secret: Round1Secret | Round2Secret, peers: Mapping[int, object]) -> None:
    if len(peers) != secret.max_signers - 1 or secret.identifier in peers:
        raise InvalidParameters("need one package from every other participant")


def share_for(cs: Ciphersuite, secret: Round1Secret, recipient: int) -> int:
    return polynomial.evaluate(secret.coefficients, recipient, cs.order)


def check_round2_share(cs: Ciphersuite, recipient: int, sender: int, commitment: tuple[bytes, ...], share: int) -> None:
    g = cs.group
    if not polynomial.verify_share(g, [cs.point(c) for c in commitment], recipient, share):
        raise DkgFault(sender, "secret share does not match the sender's commitment")


def part3(
    cs: Ciphersuite, secret: Round2Secret, round1: Mapping[int, Round1Package], round2: Mapping[int, int]
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
    group_commitment = sum_commitments(cs, [commitments[j] for j in sorted(commitments)])
    public = public_key_package_from_commitment(cs, sorted(commitments), group_commitment, secret.min_signers)
    total = (secret.secret_share + sum(round2.values())) % cs.order
    verifying_share = cs.group.encode(cs.group.base_mul(total))
    if public.verifying_shares[secret.identifier] != verifying_share:
        for sender in sorted(round2):
            check_round2_share(cs, secret.identifier, sender, round1[sender].commitment, round2[sender])
        raise InvalidParameters("share sum inconsistent although each share verifies")  # unreachable
    key = KeyPackage(secret.identifier, total, verifying_share, public.verifying_key, secret.min_signers)
    return cs.post_dkg(key, public)


# -- encryption of round-2 shares ---------------------------------------------------------------

_NONCE = bytes(12)


def _share_key(
    cs: Ciphersuite,
    session_id: bytes,
    shared: bytes,
    sender_pub: bytes,
    recipient_pub: bytes,
    sender: int,
    recipient: int,
) -> ChaCha20Poly1305:
    tag = b"mpc-signer/" + cs.short_name.encode() + b"/dkg-share-key/v1"
    info = tag + sender_pub + recipient_pub + cs.encode_identifier(sender) + cs.encode_identifier(recipient)
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=hashlib.sha256(session_id).digest(), info=info).derive(shared)
    return ChaCha20Poly1305(key)


def _share_ad(cs: Ciphersuite, session_id: bytes, sender: int, recipient: int) -> bytes:
    return (
        b"mpc-signer/"
        + cs.short_name.encode()
        + b"/dkg-share/v1"
        + len(session_id).to_bytes(4, "big")
        + session_id
        + cs.encode_identifier(sender)
        + cs.encode_identifier(recipient)
    )


def shared_secret(cs: Ciphersuite, my_secret: int, their_pub: bytes) -> bytes:
    """x_me * X_them (its encoding); the same value in both directions, so compute it once per
    pair.

    `their_pub` may be raw peer bytes: the checked multiplication validates it (raises
    InvalidEncoding for anything `decode` would refuse)."""
    g = cs.group
    point = g.decode_mul(their_pub, my_secret)
    if g.is_identity(point):
        raise InvalidEncoding("shared secret is the identity")
    return g.encode(point)


def encrypt_share(
    cs: Ciphersuite,
    session_id: bytes,
    shared: bytes,
    my_pub: bytes,
    their_pub: bytes,
    me: int,
    them: int,
    plaintext: bytes,
) -> bytes:
    aead = _share_key(cs, session_id, shared, my_pub, their_pub, me, them)
    return aead.encrypt(_NONCE, plaintext, _share_ad(cs, session_id, me, them))


def decrypt_share(
    cs: Ciphersuite,
    session_id: bytes,
    shared: bytes,
    my_pub: bytes,
    their_pub: bytes,
    me: int,
    them: int,
    ciphertext: bytes,
) -> bytes:
    """Raises `DkgFault(them)` if the ciphertext does not authenticate."""
    aead = _share_key(cs, session_id, shared, their_pub, my_pub, them, me)
    try:
        return aead.decrypt(_NONCE, ciphertext, _share_ad(cs, session_id, them, me))
    except InvalidTag:
        raise DkgFault(them, "encrypted share does not authenticate") from None
