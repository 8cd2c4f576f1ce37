"""FROST reshare (enclave.protocols.frost.reshare) as two `Round`s for the session `Driver`.

Session parties (driver ids) are D ∪ R. The driver needs every party to send to every other one
in every round, so parties with nothing to say send the minimum:

1. broadcast, everyone: ephemeral encryption key (one element) || view digest (32) || for a
   dealer, its commitment C_i (t_new elements), sealed by enclave.protocols.reshare_auth (a
   dealer's proof of its source share, a listed party's signature; a bad one names the sender,
   before anything else of the message is looked at). A different view digest aborts naming nobody
   (the host gave the parties different sessions; who holds the right one is not for this party
   to say). A dealer checks every other dealer's C_i[0] against the source key (names it);
   everyone checks sum C_i[0] == the key (names nobody: a party new to the key cannot tell who).
2. direct, everyone to everyone: dealer i to receiver j, g_i(j) as the DKG's round-2 package
   under the DKG's AEAD (dkg.encrypt_share, session id framed by reshare.share_session); every
   other message is empty. The round-1 echo rides on these, so all agree on the commitments.
   A receiver checks each sub-share (names the dealer).

Output: (KeyPackage | None, PublicKeyPackage): None for a dealer that is not a receiver (it
computes the new public key package too, so it can name the new key).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field

from enclave.crypto import polynomial
from enclave.crypto.rng import Rng
from enclave.errors import EnclaveError, InvalidParameters, ProtocolFault
from enclave.protocols.driver import Abort, Driver, Expect, Next, Output, PartyId, Round, Send
from enclave.protocols.frost import dkg, reshare, wire
from enclave.protocols.frost.ciphersuite import Ciphersuite
from enclave.protocols.frost.keys import KeyPackage, PublicKeyPackage, validate_num_signers
from enclave.protocols.reshare_auth import ReshareAuth, Sign


@dataclass(frozen=True)
class ReshareSetup:
    suite: Ciphersuite
    session_id: bytes
    party: PartyId
    dealers: Mapping[PartyId, int]  # party -> its identifier in the source key
    receivers: Mapping[PartyId, int]  # party -> its identifier in the new key
    # The source key (its encoding). Taproot compares it x-only (reshare.shown_key): a party new
    # to the key may give either parity.
    verifying_key: bytes
    source_threshold: int
    min_signers: int  # the new threshold
    rng: Rng = field(repr=False)
    # A dealer's share of the source key; None for a party new to the key.
    source: tuple[KeyPackage, PublicKeyPackage] | None = field(default=None, repr=False)
    context: bytes = b""  # the engine's part of the view (names, key id, chain code)
    # The parties that deal nothing, each with the P-256 key that signs its round-one message;
    # every other party is a dealer and proves its message with its source share.
    new_party_keys: Mapping[PartyId, bytes] = field(kw_only=True)
    sign: Sign | None = field(default=None, kw_only=True, repr=False)  # this party's, if listed


@dataclass(frozen=True)
class _Round1Carry:
    setup: ReshareSetup
    auth: ReshareAuth
    view: bytes
    enc_secret: int = field(repr=False)
    enc_public: bytes
    coefficients: tuple[int, ...] = field(repr=False)  # () for a non-dealer
    commitment: tuple[bytes, ...]


Broadcast = tuple[bytes, bytes, tuple[bytes, ...]]  # encryption key, DH secret, commitment


class ReshareRound1(Round[Broadcast, None]):
    number = 1

    def __init__(self, carry: _Round1Carry) -> None:
        self.c = carry
        self.got: dict[PartyId, Broadcast] = {}

    def expects(self) -> Expect:
        s = self.c.setup
        return Expect(broadcast=frozenset(s.dealers) | frozenset(s.receivers))

    def verify_broadcast(self, sender: PartyId, body: bytes) -> Broadcast:
        """Key || view || commitment: the view equal to this party's, the commitment of the
        right length with every element valid, its constant term the sender's Lagrange-weighted
        share (checked by dealers). Blames the sender, except for a different view."""
        s, cs = self.c.setup, self.c.setup.suite
        n, v = cs.element_len, reshare.VIEW_DIGEST_LEN
        body = self.c.auth.open(sender, body)
        if len(body) < n + v:
            raise ProtocolFault(sender, "malformed reshare round-1 message")
        their_pub, theirs, rest = body[:n], body[n : n + v], body[n + v :]
        if not hmac.compare_digest(theirs, self.c.view):
            raise ProtocolFault(frozenset(), "the parties disagree on the reshare (key, parties or thresholds)")
        try:
            if sender in s.dealers:
                commitment = reshare.decode_commitment(cs, rest, s.min_signers)
            elif rest:
                raise ProtocolFault(sender, "a party that is not a dealer sent a commitment")
            else:
                commitment = ()
            shared = dkg.shared_secret(cs, self.c.enc_secret, their_pub)
        except EnclaveError:
            raise ProtocolFault(sender, "malformed reshare round-1 message") from None
        if commitment and s.source is not None:
            try:
                reshare.check_contribution(cs, s.source[1], list(s.dealers.values()), s.dealers[sender], commitment)
            except dkg.DkgFault as fault:
                raise ProtocolFault(sender, fault.reason) from None
        return their_pub, shared, commitment

    def store_broadcast(self, sender: PartyId, value: Broadcast) -> None:
        self.got[sender] = value

    def finalize(self) -> Next | Output | Abort:
        """The sum of the contributions must be the key; then each receiver gets its sub-share
        (encrypted) and everyone else an empty message."""
        s, c, cs = self.c.setup, self.c, self.c.setup.suite
        commitments = {p: v[2] for p, v in self.got.items() if v[2]}
        if c.commitment:
            commitments[s.party] = c.commitment
        try:
            total = reshare.constant_sum(cs, [commitments[p] for p in sorted(commitments)])
        except InvalidParameters:
            total = b""
        if not total or not hmac.compare_digest(reshare.shown_key(cs, total), reshare.shown_key(cs, s.verifying_key)):
            return Abort(frozenset(), "the dealers' contributions do not add up to the key")
        sid = reshare.share_session(s.session_id)
        sends = []
        for p in sorted(self.got):
            body = b""
            if c.coefficients and p in s.receivers:
                their_pub, shared, _ = self.got[p]
                j = s.receivers[p]
                plaintext = wire.encode_round2_package(cs, polynomial.evaluate(c.coefficients, j, cs.order))
                body = dkg.encrypt_share(cs, sid, shared, c.enc_public, their_pub, s.party, p, plaintext)
            sends.append(Send(p, body))
        own: dict[PartyId, int] = {}
        if c.coefficients and s.party in s.receivers:
            own[s.party] = polynomial.evaluate(c.coefficients, s.receivers[s.party], cs.order)
        peers = {p: (v[0], v[1]) for p, v in self.got.items()}
        return Next(ReshareRound2(_Round2Carry(s, c.enc_public, commitments, peers, own)), tuple(sends))


@dataclass(frozen=True)
class _Round2Carry:
    """Round 2's carry: every dealer's commitment, the peers' keys and DH secrets and, for a
    dealer that receives, its own sub-share; not the polynomial."""

    setup: ReshareSetup
    enc_public: bytes
    commitments: Mapping[PartyId, tuple[bytes, ...]]
    peers: Mapping[PartyId, tuple[bytes, bytes]] = field(repr=False)
    own: Mapping[PartyId, int] = field(repr=False)


class ReshareRound2(Round[None, int | None]):
    number = 2

    def __init__(self, carry: _Round2Carry) -> None:
        self.c = carry
        self.shares: dict[PartyId, int] = dict(carry.own)

    def expects(self) -> Expect:
        return Expect(direct=frozenset(self.c.peers))

    def verify_direct(self, sender: PartyId, body: bytes) -> int | None:
        """From a dealer to this receiver: the encrypted sub-share (authenticated under the
        pairwise key, a canonical scalar); anything else must be empty. Blames the sender."""
        c, s = self.c, self.c.setup
        if s.party not in s.receivers or sender not in s.dealers:
            if body:
                raise ProtocolFault(sender, "unexpected reshare round-2 message")
            return None
        try:
            their_pub, shared = c.peers[sender]
            sid = reshare.share_session(s.session_id)
            plaintext = dkg.decrypt_share(s.suite, sid, shared, c.enc_public, their_pub, s.party, sender, body)
            return wire.decode_round2_package(s.suite, plaintext)
        except dkg.DkgFault as fault:
            raise ProtocolFault(sender, fault.reason) from None
        except EnclaveError:
            raise ProtocolFault(sender, "malformed reshare sub-share") from None

    def store_direct(self, sender: PartyId, value: int | None) -> None:
        if value is not None:
            self.shares[sender] = value

    def finalize(self) -> Next | Output | Abort:
        s, cs = self.c.setup, self.c.setup.suite
        public = reshare.new_public(cs, self.c.commitments, list(s.receivers.values()), s.min_signers)
        if reshare.shown_key(cs, public.verifying_key) != reshare.shown_key(cs, s.verifying_key):
            raise InvalidParameters("reshare changed the key")  # unreachable: round 1 checked the sum
        if s.party not in s.receivers:
            return Output((None, public))
        try:
            key = reshare.new_key(cs, s.receivers[s.party], self.c.commitments, self.shares, public)
        except dkg.DkgFault as fault:
            return Abort(frozenset({fault.culprit}), fault.reason)
        return Output((key, public))


def _check_setup(s: ReshareSetup) -> None:
    parties = set(s.dealers) | set(s.receivers)
    if s.party not in parties:
        raise InvalidParameters("this party is neither a dealer nor a receiver")
    reshare.check_dealers(list(s.dealers.values()), s.source_threshold)
    validate_num_signers(s.min_signers, len(s.receivers))
    if sorted(s.receivers.values()) != list(range(1, len(s.receivers) + 1)):
        raise InvalidParameters("new identifiers must be 1..number of receivers")
    if set(s.new_party_keys) != set(s.receivers) - set(s.dealers):
        raise InvalidParameters("every receiver that deals nothing, and only such a party, is listed with a key")
    if (s.source is not None) != (s.party in s.dealers):
        raise InvalidParameters("a dealer needs its source share, and only a dealer has one")
    if s.source is not None:
        key, public = s.source
        if key.identifier != s.dealers[s.party] or key.verifying_key != s.verifying_key:
            raise InvalidParameters("the source share is not this dealer's share of the key")
        reshare.check_source(key, public, list(s.dealers.values()), s.source_threshold)


def round_one_auth(s: ReshareSetup) -> ReshareAuth:
    """Round one's authentication: a dealer knows every dealer's verifying share (and proves
    its own signing share), a party new to the key only the listed keys."""
    cs = s.suite
    shares = {}
    if s.source is not None:
        public = s.source[1]
        shares = {p: cs.point(public.verifying_shares[ident]) for p, ident in s.dealers.items()}
    return ReshareAuth(
        cs.group,
        f"frost-{cs.short_name}/reshare",
        s.session_id,
        s.party,
        frozenset(s.dealers),
        s.new_party_keys,
        s.rng,
        shares,
        s.source[0].signing_share if s.source is not None else None,
        s.sign,
    )


def reshare_driver(setup: ReshareSetup) -> Driver:
    _check_setup(setup)
    s, cs = setup, setup.suite
    view = reshare.view_digest(
        cs, s.verifying_key, s.source_threshold, s.dealers, s.receivers, s.min_signers, s.context
    )
    coefficients: tuple[int, ...] = ()
    commitment: tuple[bytes, ...] = ()
    if s.source is not None:
        n_new = len(s.receivers)
        coefficients, commitment = reshare.deal(cs, s.source[0], list(s.dealers.values()), s.min_signers, n_new, s.rng)
    enc_secret = cs.group.random_scalar(s.rng)
    enc_public = cs.group.encode(cs.group.base_mul(enc_secret))
    auth = round_one_auth(s)
    carry = _Round1Carry(s, auth, view, enc_secret, enc_public, coefficients, commitment)
    body = auth.seal(enc_public + view + b"".join(commitment))
    parties = sorted(set(s.dealers) | set(s.receivers))
    return Driver(s.session_id, s.party, parties, Next(ReshareRound1(carry), (Send(None, body),)), 2)
