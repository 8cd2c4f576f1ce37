"""FROST signing from preprocessed nonces: a batch of commitments made ahead, then one round.

Presigning (one broadcast round): every signer draws `count` nonce pairs (RFC 9591 round one,
`signing.commit`: hedged with its signing share, randomness from the injected Rng) and
broadcasts their ZF SigningCommitments back to back (count x 69 bytes Ed25519, 71 secp256k1).
Checks on a peer's broadcast: exactly `count` commitments, each point strictly decoded (the
binding one too: it is stored and used later), hiding != binding, and no point equal to one of
this signer's or to one another peer sent (a replay names the sender, or both senders).
Output: `Batch`, per item this signer's nonces and the item's full ordered commitment list
(`signing.encode_group_commitment_list`: identifier || hiding || binding, by identifier).

There is no later round to echo these broadcasts, and none is needed: each item's presignature
id hashes its whole commitment list, so signers that were shown different lists hold different
ids, and the signing round below refuses to go on unless every signer holds the same list.

Signing (one broadcast round): this signer's share z_i over the stored list (RFC 9591 round
two), broadcast as a ZF SignatureShare (32 bytes) in a frame whose echo is `context_digest`
(the commitment list, message and Taproot merkle root every signer must share; a frame with
another aborts naming its sender, enclave.protocols.driver); every peer share is decoded, the
shares are aggregated and the signature checked by the suite's verifier; a bad share names its
signer (as `rounds.SignShareRound`, whose checks this round reuses).

    driver = presign_driver(PresignSetup(...))        # Output: Batch
    driver = one_round_signing_driver(OneRoundSetup(...))  # Output: the suite's signature
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

from door.encoding import lp32
from enclave.crypto.rng import Rng
from enclave.errors import EnclaveError, InvalidEncoding, InvalidParameters, ProtocolFault
from enclave.protocols.driver import Abort, Driver, Expect, Next, Output, PartyId, Round, Send
from enclave.protocols.frost import signing, wire
from enclave.protocols.frost.ciphersuite import Ciphersuite
from enclave.protocols.frost.keys import KeyPackage, PublicKeyPackage, check_public_key_package
from enclave.protocols.frost.rounds import SignShareRound, _OwnShare

CONTEXT_TAG = b"mpc-signer/frost/preprocessed-context/v1"

# -- presigning ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PresignSetup:
    suite: Ciphersuite
    session_id: bytes
    party: PartyId
    identifiers: Mapping[PartyId, int]  # the signers the batch is for
    key: KeyPackage = field(repr=False)
    count: int
    rng: Rng = field(repr=False)


@dataclass(frozen=True)
class BatchItem:
    nonces: signing.SigningNonces = field(repr=False)
    commitment_list: bytes  # encode_group_commitment_list of every signer's commitments


@dataclass(frozen=True)
class Batch:
    items: tuple[BatchItem, ...] = field(repr=False)


def commitments_len(cs: Ciphersuite) -> int:
    return len(cs.header) + 2 * cs.element_len


class PresignRound(Round[tuple[signing.SigningCommitments, ...], None]):
    number = 1

    def __init__(self, setup: PresignSetup, mine: tuple[signing.SigningNonces, ...]) -> None:
        self.s = setup
        self.mine = mine
        self.got: dict[PartyId, tuple[signing.SigningCommitments, ...]] = {}
        own: set[bytes] = set()
        for n in mine:
            own |= {n.commitments.hiding, n.commitments.binding}
        self._own_points = frozenset(own)
        self._points: dict[bytes, PartyId] = {}  # every peer point seen so far -> its sender

    def expects(self) -> Expect:
        return Expect(broadcast=frozenset(self.s.identifiers))

    def verify_broadcast(self, sender: PartyId, body: bytes) -> tuple[signing.SigningCommitments, ...]:
        """`count` SigningCommitments: strict decoding of both points of each; hiding != binding;
        no point equal to one of this signer's, to another of the sender's (blames the sender)
        or to one another peer sent (blames both)."""
        cs = self.s.suite
        size = commitments_len(cs)
        if len(body) != size * self.s.count:
            raise ProtocolFault(sender, f"expected {self.s.count} nonce commitments")
        out = []
        seen: set[bytes] = set()
        try:
            for k in range(self.s.count):
                c = wire.decode_signing_commitments(cs, body[k * size : (k + 1) * size])
                cs.group.decode(c.binding)  # stored for later: validate it now, not only when used
                out.append(c)
                seen |= {c.hiding, c.binding}
        except EnclaveError:
            raise ProtocolFault(sender, "malformed or invalid nonce commitments") from None
        if len(seen) != 2 * self.s.count or seen & self._own_points:
            raise ProtocolFault(sender, "reused nonce commitment")
        for p in seen:
            other = self._points.get(p)
            if other is not None:
                raise ProtocolFault(frozenset({sender, other}), "reused nonce commitment")
        return tuple(out)

    def store_broadcast(self, sender: PartyId, value: tuple[signing.SigningCommitments, ...]) -> None:
        self.got[sender] = value
        for c in value:
            self._points[c.hiding] = sender
            self._points[c.binding] = sender

    def finalize(self) -> Next | Output | Abort:
        """Per item: the ordered commitment list of every signer (this one's included)."""
        s, cs = self.s, self.s.suite
        items = []
        for k, nonces in enumerate(self.mine):
            commitments = {s.identifiers[p]: cs_k[k] for p, cs_k in self.got.items()}
            commitments[s.key.identifier] = nonces.commitments
            items.append(BatchItem(nonces, signing.encode_group_commitment_list(cs, commitments)))
        return Output(Batch(tuple(items)))


def presign_driver(setup: PresignSetup) -> Driver:
    ids = list(setup.identifiers.values())
    if len(set(ids)) != len(ids) or setup.identifiers.get(setup.party) != setup.key.identifier:
        raise InvalidParameters("identifiers must be distinct and include this signer's")
    if len(ids) < setup.key.min_signers:
        raise InvalidParameters("fewer signers than the threshold")
    if setup.count < 1:
        raise InvalidParameters("a batch holds at least one nonce")
    cs = setup.suite
    mine = tuple(signing.commit(cs, setup.key.signing_share, setup.rng) for _ in range(setup.count))
    body = b"".join(wire.encode_signing_commitments(cs, n.commitments) for n in mine)
    first = Next(PresignRound(setup, mine), (Send(None, body),))
    return Driver(setup.session_id, setup.party, setup.identifiers, first, total_rounds=1)


# -- the commitment list at rest ------------------------------------------------------------------


def decode_commitment_list(cs: Ciphersuite, data: bytes) -> dict[int, signing.SigningCommitments]:
    """The list as `encode_group_commitment_list` wrote it, from authenticated sealed plaintext
    this enclave made from strictly decoded points (so structure only is checked here)."""
    n, e = len(cs.encode_identifier(1)), cs.element_len
    step = n + 2 * e
    if not data or len(data) % step:
        raise InvalidEncoding("commitment list of the wrong length")
    out: dict[int, signing.SigningCommitments] = {}
    last = 0
    for off in range(0, len(data), step):
        ident = cs.group.decode_scalar(data[off : off + n])
        if ident <= last:
            raise InvalidEncoding("commitment list out of order")
        last = ident
        out[ident] = signing.SigningCommitments(data[off + n : off + n + e], data[off + n + e : off + step])
    return out


# -- one-round signing ----------------------------------------------------------------------------


@dataclass(frozen=True)
class OneRoundSetup:
    suite: Ciphersuite
    session_id: bytes
    party: PartyId
    identifiers: Mapping[PartyId, int]  # the signers: exactly those of the commitment list
    key: KeyPackage = field(repr=False)
    public: PublicKeyPackage
    message: bytes
    presignature_id: str
    commitment_list: bytes
    hiding: int = field(repr=False)  # this signer's nonce pair for that list
    binding: int = field(repr=False)
    merkle_root: bytes | None = None  # Taproot only


def context_digest(s: OneRoundSetup) -> bytes:
    """What every signer of a one-round signature must agree on, as one echo digest."""
    h = hashlib.sha256(lp32(CONTEXT_TAG))
    root = b"\x00" if s.merkle_root is None else b"\x01" + s.merkle_root
    for part in (s.suite.context_string, s.presignature_id.encode("ascii"), s.commitment_list, s.message, root):
        h.update(lp32(part))
    return h.digest()


class OneRoundShareRound(SignShareRound):
    """`SignShareRound`'s checks, as the first and only round."""

    number = 1


def one_round_signing_driver(s: OneRoundSetup) -> Driver:
    """This signer's share is computed here: call only after its nonces were consumed."""
    cs = s.suite
    ids = list(s.identifiers.values())
    if len(set(ids)) != len(ids) or s.identifiers.get(s.party) != s.key.identifier:
        raise InvalidParameters("identifiers must be distinct and include this signer's")
    if any(i not in s.public.verifying_shares for i in ids):
        raise InvalidParameters("a signer has no verifying share")
    check_public_key_package(s.public, s.key)
    commitments = decode_commitment_list(cs, s.commitment_list)
    if set(commitments) != set(ids):
        raise InvalidParameters("the commitment list is for another signer set")
    # This signer's commitments are its nonces' (presign_driver made both, and the sealed record
    # that carried them here is authenticated): not recomputed, two base multiplications saved.
    nonces = signing.SigningNonces(s.hiding, s.binding, commitments[s.key.identifier])
    key, public = cs.signing_keys(s.key, s.public, s.merkle_root)
    package = signing.SigningPackage(commitments, s.message)
    try:
        ctx = signing.signing_context(cs, package, key.verifying_key, own=(key.identifier, nonces))
    except (signing.InvalidCommitment, InvalidParameters):
        # Our own list of strictly decoded points: only a cancelling set (a hash collision) fails.
        raise InvalidParameters("the stored nonce commitments cancel out") from None
    z = signing.sign(cs, key, nonces, package, ctx)
    carry = _OwnShare(cs, s.identifiers, public, ctx, key.identifier, z)
    first = Next(OneRoundShareRound(carry), (Send(None, wire.encode_signature_share(cs, z)),))
    return Driver(s.session_id, s.party, s.identifiers, first, total_rounds=1, context=context_digest(s))
