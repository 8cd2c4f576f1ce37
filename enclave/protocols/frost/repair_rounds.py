"""FROST share repair (enclave.protocols.frost.repair) as three `Round`s for the session `Driver`.

Session parties are the helpers H and the repaired party r, each under its FROST identifier in
the key (session party id == identifier). The driver needs every party to send to every other
one in every round, so parties with nothing to say send empty messages.

1. broadcast, everyone, authenticated (enclave.protocols.reshare_auth: a helper proves it with
   its share, r signs with its listed key): ephemeral encryption key (one element) || view digest (32) || for a
   helper, its delta commitments D_{i->j} for every helper j in identifier order (|H| elements)
   || the key's public key package it holds (ZF encoding). A different view aborts naming nobody.
   A helper names another whose package differs from its own or whose commitments do not sum to
   its Lagrange-weighted share. r takes each helper's package only if it lists the key's
   parties and threshold and interpolates to the key it was told (`repair.check_package`), then
   checks that helper's proof under that package's share for it (names the helper) and its
   commitments; it aborts naming nobody if two valid-looking packages differ.
2. direct: helper i to helper j, delta_{i->j} encrypted (dkg.encrypt_share, DELTA framing);
   everything else empty. Helper j checks each delta against its commitment (names i).
3. direct: helper j to r, sigma_j encrypted (SIGMA framing); everything else empty. r checks
   each sigma against the commitments (names j), sums them and keeps the share only if it
   matches its verifying share in the package (`repair.check_share`).

Output: (KeyPackage | None, PublicKeyPackage): r's rebuilt key package, None for a helper.

Why r can trust the package although it holds nothing: every helper proves round one under its
verifying share in the package, and a package a host makes up for the key (interpolating to
it) has at most t-1 shares whose discrete logs the host knows; with |H| >= t it cannot prove
for every helper. r's own round one is signed with the key its start lists for it, so a host
cannot stand in for r either (the relay, or a policy approval over that key, decides who r is).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field

from door.encoding import lp32, u32
from enclave.crypto.rng import Rng
from enclave.errors import EnclaveError, InvalidParameters, ProtocolFault
from enclave.group.base import Element
from enclave.protocols.driver import Abort, Driver, Expect, Next, Output, PartyId, Round, Send
from enclave.protocols.frost import dkg, repair, wire
from enclave.protocols.frost.ciphersuite import Ciphersuite
from enclave.protocols.frost.keys import KeyPackage, PublicKeyPackage
from enclave.protocols.reshare_auth import ReshareAuth, Sign

VIEW_TAG = b"mpc-signer/frost/repair/view/v1"
VIEW_LEN = 32
# Deltas and sigmas are encrypted as the DKG's shares under these session-id framings, so no
# repair ciphertext opens as a DKG or reshare share, nor a delta as a sigma.
DELTA_TAG = b"mpc-signer/frost/repair/delta/v1"
SIGMA_TAG = b"mpc-signer/frost/repair/sigma/v1"


@dataclass(frozen=True)
class RepairSetup:
    suite: Ciphersuite
    session_id: bytes
    party: PartyId  # this party's identifier in the key
    helpers: tuple[int, ...]
    participant: int  # r: the identifier whose share is rebuilt
    identifiers: tuple[int, ...]  # every identifier of the key (1..n)
    min_signers: int
    shown_key: bytes  # the key as the API shows it (x-only for Taproot)
    party_key: bytes  # r's P-256 key (SEC1 uncompressed) that signs its round-one message
    rng: Rng = field(repr=False)
    # A helper's own share and package; None for r.
    source: tuple[KeyPackage, PublicKeyPackage] | None = field(default=None, repr=False)
    context: bytes = b""  # the engine's part of the view (names, key id, r's listed key)
    sign: Sign | None = field(default=None, repr=False)  # r's signing key; None for a helper


def round_one_auth(s: RepairSetup, shares: Mapping[PartyId, Element]) -> ReshareAuth:
    """Round one's authentication (enclave.protocols.reshare_auth): helpers are its dealers,
    proving with their shares, checked under `shares` (the helpers' verifying shares of the
    package this party trusts; empty for r before it has one, when `open` reads a helper's
    payload unchecked); r is its one listed party, signing with `party_key`'s private key."""
    cs = s.suite
    return ReshareAuth(
        cs.group,
        f"frost-{cs.short_name}/repair",
        s.session_id,
        s.party,
        frozenset(s.helpers),
        {s.participant: s.party_key},
        s.rng,
        shares,
        s.source[0].signing_share if s.source is not None else None,
        s.sign,
    )


def view_digest(s: RepairSetup) -> bytes:
    cs = s.suite
    h = hashlib.sha256(lp32(VIEW_TAG) + lp32(cs.short_name.encode()) + lp32(s.shown_key))
    h.update(u32(s.min_signers) + u32(s.participant) + u32(len(s.identifiers)) + u32(len(s.helpers)))
    for i in sorted(s.helpers):
        h.update(u32(i))
    h.update(lp32(s.context))
    return h.digest()


def _framing(tag: bytes, session_id: bytes) -> bytes:
    return lp32(tag) + lp32(session_id)


@dataclass(frozen=True)
class _Peer:
    enc_public: bytes
    shared: bytes = field(repr=False)


@dataclass(frozen=True)
class _Round1Carry:
    setup: RepairSetup
    view: bytes
    enc_secret: int = field(repr=False)
    enc_public: bytes
    deltas: Mapping[int, int] = field(repr=False)  # a helper's own; {} for r
    commitments: Mapping[int, bytes]  # a helper's own D_{i->j}
    package: bytes  # a helper's own package encoding; b"" for r
    peek: ReshareAuth | None = field(repr=False)  # r: reads a helper's payload before trusting it
    check: ReshareAuth | None = field(repr=False)  # a helper: checks every round-one message


@dataclass(frozen=True)
class _Heard:
    peer: _Peer
    commitments: Mapping[int, bytes]
    package: bytes
    public: PublicKeyPackage | None


class RepairRound1(Round[_Heard, None]):
    number = 1

    def __init__(self, carry: _Round1Carry) -> None:
        self.c = carry
        self.got: dict[PartyId, _Heard] = {}

    def expects(self) -> Expect:
        s = self.c.setup
        return Expect(broadcast=frozenset(s.helpers) | {s.participant})

    def _payload(self, sender: PartyId, body: bytes) -> tuple[bytes, PublicKeyPackage | None]:
        """The authenticated payload; for r and a helper's message, with the package it was checked under."""
        s, c = self.c.setup, self.c
        if c.check is not None:
            return c.check.open(sender, body), None
        assert c.peek is not None
        payload = c.peek.open(sender, body)  # unchecked: tells r which package to check it under
        n = s.suite.element_len
        start = n + VIEW_LEN + n * len(s.helpers)
        try:
            public = wire.decode_public_key_package(s.suite, payload[start:])
            repair.check_package(s.suite, public, s.shown_key, s.min_signers, s.identifiers)
        except EnclaveError as exc:
            raise ProtocolFault(sender, f"repair helper's public key package refused: {exc}") from None
        shares = {h: s.suite.point(public.verifying_shares[h]) for h in s.helpers}
        return round_one_auth(s, shares).open(sender, body), public

    def verify_broadcast(self, sender: PartyId, body: bytes) -> _Heard:
        """Authenticated (see `_payload`), then key || view || (helper) commitments || package:
        the view equal to this party's; a helper's package equal to ours (helpers) or checked
        against the key (r); its commitments valid and summing to zeta_i * Y_i. Blames the
        sender, except for a different view."""
        s, c, cs = self.c.setup, self.c, self.c.setup.suite
        payload, public = self._payload(sender, body)
        n = cs.element_len
        if len(payload) < n + VIEW_LEN:
            raise ProtocolFault(sender, "malformed repair round-1 message")
        if not hmac.compare_digest(payload[n : n + VIEW_LEN], c.view):
            raise ProtocolFault(frozenset(), "the parties disagree on the repair (key, helpers or repaired party)")
        rest = payload[n + VIEW_LEN :]
        try:
            shared = dkg.shared_secret(cs, c.enc_secret, payload[:n])
        except EnclaveError:
            raise ProtocolFault(sender, "malformed repair encryption key") from None
        peer = _Peer(bytes(payload[:n]), shared)
        if sender == s.participant:
            if rest:
                raise ProtocolFault(sender, "the repaired party sent helper data")
            return _Heard(peer, {}, b"", None)
        k = len(s.helpers)
        if len(rest) < n * k:
            raise ProtocolFault(sender, "malformed repair round-1 message")
        ordered = sorted(s.helpers)
        commitments = {j: bytes(rest[m * n : (m + 1) * n]) for m, j in enumerate(ordered)}
        package = bytes(rest[n * k :])
        if public is None:  # a helper: the package must be its own
            if not hmac.compare_digest(package, c.package):
                raise ProtocolFault(sender, "repair helper holds a different public key package")
            assert s.source is not None
            public = s.source[1]
        repair.check_contribution(cs, sender, ordered, s.participant, commitments, public)
        return _Heard(peer, commitments, package, public)

    def store_broadcast(self, sender: PartyId, value: _Heard) -> None:
        self.got[sender] = value

    def finalize(self) -> Next | Output | Abort:
        """r: every helper sent the same package. A helper: each other helper gets its delta
        (encrypted), r an empty message."""
        s, c, cs = self.c.setup, self.c, self.c.setup.suite
        helpers_heard = {p: v for p, v in self.got.items() if p != s.participant}
        if s.source is not None:
            public = s.source[1]
        else:
            packages = {v.package for v in helpers_heard.values()}
            if len(packages) != 1:
                return Abort(frozenset(), "the helpers sent different public key packages for the key")
            public = next(v.public for v in helpers_heard.values() if v.public is not None)
        commitments = {p: v.commitments for p, v in helpers_heard.items()}
        if s.source is not None:
            commitments[s.party] = c.commitments
        peers = {p: v.peer for p, v in self.got.items()}
        sid = _framing(DELTA_TAG, s.session_id)
        sends = []
        for p in sorted(self.got):
            body = b""
            if s.source is not None and p != s.participant:
                plaintext, peer = cs.group.encode_scalar(c.deltas[p]), peers[p]
                body = dkg.encrypt_share(cs, sid, peer.shared, c.enc_public, peer.enc_public, s.party, p, plaintext)
            sends.append(Send(p, body))
        own = {s.party: c.deltas[s.party]} if s.source is not None else {}
        carry = _Round2Carry(s, c.enc_public, public, commitments, peers, own)
        return Next(RepairRound2(carry), tuple(sends))


@dataclass(frozen=True)
class _Round2Carry:
    """Every helper's commitments, the package, the peers' keys and, for a helper, its own delta
    to itself; not the other deltas it dealt."""

    setup: RepairSetup
    enc_public: bytes
    public: PublicKeyPackage
    commitments: Mapping[int, Mapping[int, bytes]]
    peers: Mapping[PartyId, _Peer] = field(repr=False)
    own: Mapping[int, int] = field(repr=False)


def _open(c: _Round2Carry, tag: bytes, sender: PartyId, body: bytes) -> int:
    s = c.setup
    try:
        peer = c.peers[sender]
        plaintext = dkg.decrypt_share(
            s.suite, _framing(tag, s.session_id), peer.shared, c.enc_public, peer.enc_public, s.party, sender, body
        )
        return s.suite.group.decode_scalar(plaintext)
    except dkg.DkgFault as fault:
        raise ProtocolFault(sender, fault.reason) from None
    except EnclaveError:
        raise ProtocolFault(sender, "malformed repair scalar") from None


def _empty(sender: PartyId, body: bytes, round_number: int) -> None:
    if body:
        raise ProtocolFault(sender, f"unexpected repair round-{round_number} message")


class RepairRound2(Round[None, int | None]):
    number = 2

    def __init__(self, carry: _Round2Carry) -> None:
        self.c = carry
        self.deltas: dict[int, int] = dict(carry.own)

    def expects(self) -> Expect:
        return Expect(direct=frozenset(self.c.peers))

    def verify_direct(self, sender: PartyId, body: bytes) -> int | None:
        """Helper to helper: a delta matching the commitment its sender broadcast for us. Anything
        else is empty. Blames the sender."""
        s = self.c.setup
        if s.source is None or sender == s.participant:
            _empty(sender, body, 2)
            return None
        delta = _open(self.c, DELTA_TAG, sender, body)
        repair.check_delta(s.suite, sender, delta, self.c.commitments[sender][s.party])
        return delta

    def store_direct(self, sender: PartyId, value: int | None) -> None:
        if value is not None:
            self.deltas[sender] = value

    def finalize(self) -> Next | Output | Abort:
        """A helper sends r its sigma (encrypted); everything else is empty."""
        c, s, cs = self.c, self.c.setup, self.c.setup.suite
        sends = []
        for p in sorted(c.peers):
            body = b""
            if s.source is not None and p == s.participant:
                sigma = repair.step2(cs, self.deltas.values())
                peer = c.peers[p]
                sid = _framing(SIGMA_TAG, s.session_id)
                body = dkg.encrypt_share(
                    cs, sid, peer.shared, c.enc_public, peer.enc_public, s.party, p, cs.group.encode_scalar(sigma)
                )
            sends.append(Send(p, body))
        return Next(RepairRound3(c), tuple(sends))


class RepairRound3(Round[None, int | None]):
    number = 3

    def __init__(self, carry: _Round2Carry) -> None:
        self.c = carry
        self.sigmas: dict[int, int] = {}

    def expects(self) -> Expect:
        return Expect(direct=frozenset(self.c.peers))

    def verify_direct(self, sender: PartyId, body: bytes) -> int | None:
        """Helper to r: a sigma matching the sum of the deltas committed for that helper. Anything
        else is empty. Blames the sender."""
        s = self.c.setup
        if s.source is not None:
            _empty(sender, body, 3)
            return None
        sigma = _open(self.c, SIGMA_TAG, sender, body)
        repair.check_sigma(s.suite, sender, sigma, self.c.commitments)
        return sigma

    def store_direct(self, sender: PartyId, value: int | None) -> None:
        if value is not None:
            self.sigmas[sender] = value

    def finalize(self) -> Next | Output | Abort:
        s, c = self.c.setup, self.c
        if s.source is not None:
            return Output((None, c.public))
        if sorted(self.sigmas) != sorted(s.helpers):
            raise InvalidParameters("need one sigma from every helper")  # unreachable: expects() covers it
        try:
            key = repair.check_share(s.suite, s.participant, repair.step3(s.suite, self.sigmas.values()), c.public)
        except ProtocolFault as fault:
            return Abort(frozenset(fault.culprits), fault.reason)
        return Output((key, c.public))


def _check_setup(s: RepairSetup) -> list[int]:
    ordered = repair.check_helpers(list(s.helpers), s.participant, s.min_signers)
    ids = sorted(s.identifiers)
    if ids != list(range(1, len(ids) + 1)) or s.participant not in ids or any(h not in ids for h in ordered):
        raise InvalidParameters("the helpers and the repaired party must be identifiers of the key")
    if s.party != s.participant and s.party not in ordered:
        raise InvalidParameters("this party is neither a helper nor the repaired party")
    if (s.source is not None) != (s.party != s.participant):
        raise InvalidParameters("a helper needs its share, and the repaired party has none")
    if s.source is not None:
        key, public = s.source
        if key.identifier != s.party or public.verifying_shares.get(key.identifier) != key.verifying_share:
            raise InvalidParameters("the share is not this helper's share of the key")
        try:
            repair.check_package(s.suite, public, s.shown_key, s.min_signers, ids)
        except InvalidParameters as exc:
            raise InvalidParameters(f"this helper's own key: {exc}") from None
    return ordered


def repair_driver(setup: RepairSetup) -> Driver:
    s, cs = setup, setup.suite
    ordered = _check_setup(s)
    deltas: dict[int, int] = {}
    commitments: dict[int, bytes] = {}
    package = b""
    enc_secret = cs.group.random_scalar(s.rng)
    enc_public = cs.group.encode(cs.group.base_mul(enc_secret))
    view = view_digest(s)
    payload = enc_public + view
    if s.source is not None:
        key, public = s.source
        deltas = repair.step1(cs, ordered, key, s.participant, s.rng)
        commitments = repair.delta_commitments(cs, deltas)
        package = wire.encode_public_key_package(cs, public)
        payload += b"".join(commitments[j] for j in ordered) + package
        auth = round_one_auth(s, {h: cs.point(public.verifying_shares[h]) for h in ordered})
        carry = _Round1Carry(s, view, enc_secret, enc_public, deltas, commitments, package, None, auth)
    else:
        auth = round_one_auth(s, {})
        carry = _Round1Carry(s, view, enc_secret, enc_public, {}, {}, b"", auth, None)
    parties = sorted({*ordered, s.participant})
    return Driver(s.session_id, s.party, parties, Next(RepairRound1(carry), (Send(None, auth.seal(payload)),)), 3)
