"""FROST reshare: the key of a t-of-n party set moved to a new party set and/or threshold.

Dealers D (at least the source threshold of the key's parties, each with its share s_i under its
old identifier i) and receivers R (the new party set, new identifiers 1..|R|; may overlap D, may
hold nothing of the key before). The secret x = sum_{i in D} lambda_i * s_i, lambda_i the
Lagrange coefficient at 0 over the dealers' old identifiers. Each dealer deals its weighted share:

- dealer i picks g_i of degree t_new - 1 with g_i(0) = lambda_i * s_i and commits C_i = g_i*G
  (coefficient-wise, t_new elements);
- every dealer checks C_i[0] == lambda_i * Y_i against the old verifying share Y_i it holds
  (a mismatch names i: "wrong Lagrange contribution"); every party checks sum_i C_i[0] == Y,
  the source verifying key (for a party new to the key its only check of that);
- receiver j gets g_i(j) from each dealer, checks it against C_i (Feldman; names i) and keeps
  s'_j = sum_i g_i(j); the new public key package is sum_i C_i evaluated at every new
  identifier, its verifying key sum_i C_i[0] = Y: the key, unchanged.

No proof of knowledge is needed: every constant term is pinned (by the dealers to lambda_i*Y_i,
by everyone to the key), so no dealer can choose its contribution after seeing the others'.

Nothing runs the suite's post-DKG hook: the key already took it (Taproot's tweak) at its DKG,
and a reshare keeps the key. `view_digest` is what every party must agree the session is about;
the engine adds its own context (party names, the source key id, the chain code).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from door.encoding import lp32, u32
from enclave.crypto import polynomial
from enclave.crypto.rng import Rng
from enclave.errors import InvalidParameters
from enclave.group.base import Element
from enclave.protocols.frost.ciphersuite import Ciphersuite
from enclave.protocols.frost.dkg import DkgFault
from enclave.protocols.frost.keys import KeyPackage, PublicKeyPackage, validate_num_signers

VIEW_TAG = b"mpc-signer/frost/reshare/view/v1"
VIEW_DIGEST_LEN = 32
# Round-2 shares are encrypted as the DKG's (dkg.encrypt_share) under this session-id framing, so
# a reshare ciphertext never opens as a DKG share of a session with the same id, nor the reverse.
SHARE_TAG = b"mpc-signer/frost/reshare/share/v1"


def share_session(session_id: bytes) -> bytes:
    return lp32(SHARE_TAG) + lp32(session_id)


def shown_key(cs: Ciphersuite, verifying_key: bytes) -> bytes:
    """The key as parties compare it: x-only for Taproot, whose keys are known (to a party new to
    the key) only x-only; the parity comes from the dealers' sum."""
    return bytes(verifying_key[1:]) if cs.bip340 else bytes(verifying_key)


def view_digest(
    cs: Ciphersuite,
    verifying_key: bytes,
    source_threshold: int,
    dealers: Mapping[int, int],
    receivers: Mapping[int, int],
    min_signers: int,
    context: bytes,
) -> bytes:
    """Digest of the session's view: the key (`shown_key`), the old threshold, the dealers (party -> old
    identifier), the receivers (party -> new identifier), the new threshold and `context`."""
    h = hashlib.sha256(lp32(VIEW_TAG) + lp32(cs.short_name.encode()) + lp32(shown_key(cs, verifying_key)))
    h.update(u32(source_threshold) + u32(min_signers))
    for mapping in (dealers, receivers):
        h.update(u32(len(mapping)))
        for party, ident in sorted(mapping.items()):
            h.update(u32(party) + lp32(cs.encode_identifier(ident)))
    h.update(lp32(context))
    return h.digest()


def lagrange(cs: Ciphersuite, identifier: int, dealers: Sequence[int]) -> int:
    return polynomial.lagrange_coefficient(cs.order, identifier, dealers)


def check_dealers(dealers: Sequence[int], source_threshold: int) -> None:
    if len(set(dealers)) != len(dealers) or len(dealers) < source_threshold:
        raise InvalidParameters("a reshare needs at least the source threshold of distinct dealers")


def check_source(key: KeyPackage, public: PublicKeyPackage, dealers: Sequence[int], source_threshold: int) -> None:
    """A dealer's share must be of a key with this threshold, and every dealer one of its
    participants (each dealer's verifying share is what its contribution is checked against)."""
    if key.min_signers != source_threshold or public.min_signers not in (None, source_threshold):
        raise InvalidParameters("the source key's threshold is not source_threshold")
    if key.identifier not in dealers or any(d not in public.verifying_shares for d in dealers):
        raise InvalidParameters("every dealer must be a participant of the source key")
    if public.verifying_key != key.verifying_key or public.verifying_shares[key.identifier] != key.verifying_share:
        raise InvalidParameters("public key package does not match the key package")


def deal(
    cs: Ciphersuite, key: KeyPackage, dealers: Sequence[int], min_signers: int, max_signers: int, rng: Rng
) -> tuple[tuple[int, ...], tuple[bytes, ...]]:
    """This dealer's polynomial g_i (g_i(0) = lambda_i * s_i) and its commitment (t_new elements)."""
    validate_num_signers(min_signers, max_signers)
    g = cs.group
    weighted = lagrange(cs, key.identifier, dealers) * key.signing_share % cs.order
    coeffs = polynomial.random_polynomial(g, weighted, min_signers, rng)
    return coeffs, tuple(g.encode(p) for p in polynomial.commit(g, coeffs))


def decode_commitment(cs: Ciphersuite, data: bytes, min_signers: int) -> tuple[bytes, ...]:
    """t_new strictly decoded elements (raises InvalidEncoding)."""
    n = cs.element_len
    if len(data) != n * min_signers:
        raise InvalidParameters("reshare commitment length does not match the new threshold")
    out = tuple(bytes(data[k * n : (k + 1) * n]) for k in range(min_signers))
    for e in out:
        cs.group.decode(e)
    return out


def check_contribution(
    cs: Ciphersuite, public: PublicKeyPackage, dealers: Sequence[int], dealer: int, commitment: Sequence[bytes]
) -> None:
    """C_i[0] == lambda_i * Y_i, Y_i the dealer's verifying share of the source key."""
    g = cs.group
    expected = g.mul(cs.point(public.verifying_shares[dealer]), lagrange(cs, dealer, dealers))
    if not g.eq(cs.point(commitment[0]), expected):
        raise DkgFault(dealer, "wrong Lagrange contribution")


def constant_sum(cs: Ciphersuite, commitments: Sequence[Sequence[bytes]]) -> bytes:
    """sum_i C_i[0] (its encoding; the identity has none and raises InvalidParameters)."""
    g = cs.group
    total = g.sum([cs.point(c[0]) for c in commitments])
    if g.is_identity(total):
        raise InvalidParameters("the contributions sum to the identity")
    return g.encode(total)


def check_share(cs: Ciphersuite, recipient: int, dealer: int, commitment: Sequence[bytes], share: int) -> None:
    if not polynomial.verify_share(cs.group, [cs.point(c) for c in commitment], recipient, share):
        raise DkgFault(dealer, "reshare sub-share does not match the dealer's commitment")


def _summed(cs: Ciphersuite, commitments: Sequence[Sequence[bytes]]) -> list[Element]:
    g = cs.group
    width = len(commitments[0])
    if any(len(c) != width for c in commitments):
        raise InvalidParameters("reshare commitments of different lengths")
    return [g.sum([cs.point(c[k]) for c in commitments]) for k in range(width)]


def new_public(
    cs: Ciphersuite, commitments: Mapping[int, Sequence[bytes]], identifiers: Sequence[int], min_signers: int
) -> PublicKeyPackage:
    """The new public key package: sum_i C_i evaluated at every new identifier."""
    g = cs.group
    summed = _summed(cs, [commitments[d] for d in sorted(commitments)])
    at = polynomial.commitments_at(g, summed, identifiers)
    if any(g.is_identity(at[j]) for j in identifiers):
        raise InvalidParameters("a new verifying share is the identity")
    return PublicKeyPackage({j: g.encode(at[j]) for j in sorted(identifiers)}, g.encode(summed[0]), min_signers)


def new_key(
    cs: Ciphersuite,
    identifier: int,
    commitments: Mapping[int, Sequence[bytes]],
    shares: Mapping[int, int],
    public: PublicKeyPackage,
) -> KeyPackage:
    """Receiver `identifier`'s key package from one sub-share per dealer. Batched Feldman check
    on the sum against its new verifying share; on a mismatch every sub-share is checked alone
    and the first bad dealer named."""
    if set(shares) != set(commitments):
        raise InvalidParameters("need one sub-share from every dealer")
    g = cs.group
    total = sum(shares.values()) % cs.order
    verifying_share = g.encode(g.base_mul(total))
    if verifying_share != public.verifying_shares[identifier]:
        for dealer in sorted(shares):
            check_share(cs, identifier, dealer, commitments[dealer], shares[dealer])
        raise InvalidParameters("sub-share sum inconsistent although each verifies")  # unreachable
    return KeyPackage(identifier, total, verifying_share, public.verifying_key, public.min_signers or 0)
