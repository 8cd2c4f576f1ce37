"""FROST signing and DKG as `Round`s for the session `Driver` (enclave.protocols.driver).

Party ids (the driver's, given by the transport) map to FROST identifiers through
`identifiers: {party: identifier}` (small integers or `cs.derive_identifier(name)`). Every
payload body is a ZF frost object of the setup's suite, so a ZF-frost client can produce and
read them directly:

Signing (2 rounds, every signer also aggregates):
    1. broadcast SigningCommitments                      (postcard; 69 bytes Ed25519, 71 secp256k1)
    2. broadcast SignatureShare (32 bytes); the driver's echo in these messages proves every
       signer saw the same commitments. Output: the suite's signature, checked by
       `cs.verify_signature` (libsodium for Ed25519, libsecp256k1's BIP340 verifier for
       Taproot). A bad share aborts naming exactly the signers whose shares fail.
    Taproot: `merkle_root` (None: the key as it is; 32 bytes: a script tree's root, b"": the
    key-path-only commitment) tweaks the key packages first (ZF `sign_with_tweak`).
    Checks on commitments: strict point decoding (identity, small-order, mixed-order,
    non-canonical rejected), a commitment equal to this signer's own or to one in
    `used_commitments` (a caller-owned set kept across sessions of the same key) aborts
    naming the sender as a nonce-commitment replay.

DKG (2 rounds):
    1. broadcast: ZF dkg round1::Package || ephemeral encryption key (one element encoding)
    2. direct to each participant: ChaCha20-Poly1305(ZF dkg round2::Package), see `dkg`.
       The round-1 echo travels in these messages.
    Output: (KeyPackage, PublicKeyPackage, chain code): the chain code (`derive.chain_code`)
    hashes the key and every participant's round-1 package, which the round-2 echo proved
    every party saw alike, so it is equal at every party and adds nothing to the wire.
    With `DkgSetup.refresh` the same two rounds refresh an existing key (ZF's refresh by DKG,
    enclave.protocols.frost.refresh): zero-constant polynomials, t-1 commitment elements, and
    the output is (KeyPackage, PublicKeyPackage) of the same key with new shares (its chain
    code is the key's own).

    driver = signing_driver(SignSetup(...)); dkg_driver(DkgSetup(...))
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, MutableSet
from dataclasses import dataclass, field

from enclave.crypto.rng import Rng
from enclave.errors import EnclaveError, InvalidParameters, ProtocolFault
from enclave.protocols.driver import Abort, Driver, Expect, Next, Output, PartyId, Round, Send
from enclave.protocols.frost import derive, dkg, refresh, signing, wire
from enclave.protocols.frost.ciphersuite import Ciphersuite
from enclave.protocols.frost.keys import KeyPackage, PublicKeyPackage, check_public_key_package

# -- signing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignSetup:
    suite: Ciphersuite
    session_id: bytes
    party: PartyId
    identifiers: Mapping[PartyId, int]  # the signers of this session
    key: KeyPackage = field(repr=False)
    public: PublicKeyPackage
    message: bytes
    rng: Rng = field(repr=False)
    used_commitments: MutableSet[bytes] | None = field(default=None, repr=False)
    merkle_root: bytes | None = None  # Taproot only


def _check_sign_setup(s: SignSetup) -> None:
    ids = list(s.identifiers.values())
    if len(set(ids)) != len(ids) or s.identifiers.get(s.party) != s.key.identifier:
        raise InvalidParameters("identifiers must be distinct and include this signer's")
    if len(ids) < s.key.min_signers:
        raise InvalidParameters("fewer signers than the threshold")
    if any(i not in s.public.verifying_shares for i in ids):
        raise InvalidParameters("a signer has no verifying share")
    check_public_key_package(s.public, s.key)
    if s.merkle_root is not None and not s.suite.bip340:
        raise InvalidParameters("only Taproot keys take a merkle root")


class SignCommitRound(Round[signing.SigningCommitments, None]):
    number = 1

    def __init__(self, setup: SignSetup, nonces: signing.SigningNonces) -> None:
        self.s = setup
        self.nonces = nonces
        self.got: dict[PartyId, signing.SigningCommitments] = {}
        # The key packages this signature uses (Taproot: tweaked by the merkle root).
        self.keys = setup.suite.signing_keys(setup.key, setup.public, setup.merkle_root)

    def expects(self) -> Expect:
        return Expect(broadcast=frozenset(self.s.identifiers))

    def verify_broadcast(self, sender: PartyId, body: bytes) -> signing.SigningCommitments:
        """SigningCommitments: strict decoding of both points; hiding != binding, neither equal
        to this signer's own nor in `used_commitments` (blames the sender), nor to a commitment
        another peer already sent (blames both)."""
        try:
            c = wire.decode_signing_commitments(self.s.suite, body)
        except EnclaveError:
            raise ProtocolFault(sender, "malformed or invalid nonce commitments") from None
        mine = self.nonces.commitments
        points = {c.hiding, c.binding}
        if len(points) != 2 or points & {mine.hiding, mine.binding}:
            raise ProtocolFault(sender, "reused nonce commitment")
        used = self.s.used_commitments
        if used is not None and (c.hiding in used or c.binding in used):
            raise ProtocolFault(sender, "reused nonce commitment")
        for other, oc in self.got.items():
            if points & {oc.hiding, oc.binding}:
                raise ProtocolFault(frozenset({sender, other}), "reused nonce commitment")
        return c

    def store_broadcast(self, sender: PartyId, value: signing.SigningCommitments) -> None:
        self.got[sender] = value

    def finalize(self) -> Next | Output | Abort:
        """Records every commitment in `used_commitments`, builds the signing package and the
        binding factors (a commitment the context rejects names its signer; R = identity names
        nobody) and sends this signer's share z_i."""
        s, cs = self.s, self.s.suite
        commitments = {s.identifiers[p]: c for p, c in self.got.items()}
        commitments[s.key.identifier] = self.nonces.commitments
        package = signing.SigningPackage(dict(sorted(commitments.items())), s.message)
        if s.used_commitments is not None:
            for c in commitments.values():
                s.used_commitments.add(c.hiding)
                s.used_commitments.add(c.binding)
        key, public = self.keys
        try:
            ctx = signing.signing_context(cs, package, key.verifying_key, own=(key.identifier, self.nonces))
        except signing.InvalidCommitment as bad:
            by_ident = {i: p for p, i in s.identifiers.items()}
            return Abort(frozenset({by_ident[bad.identifier]}), "malformed or invalid nonce commitments")
        except InvalidParameters:
            # R is the identity: the commitments cancel out, which needs a hash collision in the
            # binding factors; who caused it cannot be told, so nobody is named.
            return Abort(frozenset(), "nonce commitments cancel out")
        z = signing.sign(cs, key, self.nonces, package, ctx)
        # Round two needs only public data: the signing share and nonces stay behind.
        carry = _OwnShare(cs, s.identifiers, public, ctx, key.identifier, z)
        return Next(SignShareRound(carry), (Send(None, wire.encode_signature_share(cs, z)),))


@dataclass(frozen=True)
class _OwnShare:
    """Round 2's carry: the signing context, the (tweaked) public key package and this
    signer's share z_i; not the signing share or the nonces."""

    suite: Ciphersuite
    identifiers: Mapping[PartyId, int]
    public: PublicKeyPackage
    ctx: signing.SigningContext
    own_identifier: int
    own_share: int = field(repr=False)


class SignShareRound(Round[int, None]):
    number = 2

    def __init__(self, carry: _OwnShare) -> None:
        self.s = carry
        self.ctx = carry.ctx
        self.shares = {carry.own_identifier: carry.own_share}

    def expects(self) -> Expect:
        return Expect(broadcast=frozenset(self.s.identifiers))

    def verify_broadcast(self, sender: PartyId, body: bytes) -> int:
        """SignatureShare: a canonical scalar. Blames the sender (each share is checked
        against its verifying share in finalize, only if the aggregate fails)."""
        try:
            return wire.decode_signature_share(self.s.suite, body)
        except EnclaveError:
            raise ProtocolFault(sender, "malformed signature share") from None

    def store_broadcast(self, sender: PartyId, value: int) -> None:
        self.shares[self.s.identifiers[sender]] = value

    def finalize(self) -> Next | Output | Abort:
        """Aggregates the shares and checks the signature with the suite's verifier; on failure
        checks every share and names exactly the signers whose shares fail."""
        try:
            sig = signing.aggregate(self.s.suite, self.ctx.package, self.shares, self.s.public, self.ctx)
        except signing.InvalidSignatureShares as exc:
            by_ident = {i: p for p, i in self.s.identifiers.items()}
            return Abort(frozenset(by_ident[i] for i in exc.culprits), "invalid signature share")
        return Output(sig)


def signing_driver(setup: SignSetup, nonces: signing.SigningNonces | None = None) -> Driver:
    """A driver for one signer. `nonces` may be precomputed (tests); by default fresh ones."""
    _check_sign_setup(setup)
    cs = setup.suite
    if nonces is None:
        nonces = signing.commit(cs, setup.key.signing_share, setup.rng)
    first = Next(SignCommitRound(setup, nonces), (Send(None, wire.encode_signing_commitments(cs, nonces.commitments)),))
    return Driver(setup.session_id, setup.party, setup.identifiers, first, total_rounds=2)


# -- DKG ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DkgSetup:
    suite: Ciphersuite
    session_id: bytes
    party: PartyId
    identifiers: Mapping[PartyId, int]
    min_signers: int
    rng: Rng = field(repr=False)
    # A refresh of this key (enclave.protocols.frost.refresh): zero-constant polynomials, and
    # the output is this key with new shares. None: a DKG of a new key.
    refresh: tuple[KeyPackage, PublicKeyPackage] | None = field(default=None, repr=False)


@dataclass(frozen=True)
class _DkgPolynomial:
    """Round 1's carry: this party's polynomial (round-1 secret) and ephemeral encryption key."""

    setup: DkgSetup
    secret: dkg.Round1Secret = field(repr=False)
    enc_secret: int = field(repr=False)
    enc_public: bytes
    package: dkg.Round1Package  # this party's own broadcast, for the chain code
    source: bytes = b""  # a refresh: refresh.source_digest of the key being refreshed


class DkgRound1(Round[tuple[dkg.Round1Package, bytes, bytes], None]):
    number = 1

    def __init__(self, carry: _DkgPolynomial) -> None:
        self.c = carry
        self.got: dict[PartyId, tuple[dkg.Round1Package, bytes, bytes]] = {}

    def expects(self) -> Expect:
        return Expect(broadcast=frozenset(self.c.setup.identifiers))

    def verify_broadcast(self, sender: PartyId, body: bytes) -> tuple[dkg.Round1Package, bytes, bytes]:
        """round1::Package || encryption key: the package's shape and commitment count, its
        proof of knowledge of the constant term, and the DH with the sender's key (a valid,
        non-identity point). Blames the sender."""
        cs = self.c.setup.suite
        ident = self.c.setup.identifiers[sender]
        n = cs.element_len
        if self.c.source:
            # A refresh: ... || encryption key || the sender's source digest. A different one
            # means the host gave the parties different generations of the key; who holds the
            # "right" one is not for this party to say, so nobody is named.
            body, theirs = body[: -refresh.SOURCE_DIGEST_LEN], body[-refresh.SOURCE_DIGEST_LEN :]
            if not hmac.compare_digest(theirs, self.c.source):
                raise ProtocolFault(frozenset(), "the parties are refreshing different versions of the key")
        try:
            their_pub = body[-n:]
            if self.c.setup.refresh is None:
                # Strict except phi_0, R (validated by the proof check) and the encryption key
                # (validated by the checked DH multiplication) -- see wire.parse_round1_package.
                package = wire.parse_round1_package(cs, body[:-n])
                dkg.check_round1_package(cs, self.c.secret, ident, package)
            else:  # no proof to check: every element decoded strictly
                package = wire.decode_round1_package(cs, body[:-n])
                refresh.check_round1_package(cs, self.c.secret, ident, package)
            shared = dkg.shared_secret(cs, self.c.enc_secret, their_pub)
        except dkg.DkgFault as fault:
            raise ProtocolFault(sender, fault.reason) from None
        except EnclaveError:
            raise ProtocolFault(sender, "malformed round-1 package") from None
        return package, their_pub, shared

    def store_broadcast(self, sender: PartyId, value: tuple[dkg.Round1Package, bytes, bytes]) -> None:
        self.got[sender] = value

    def finalize(self) -> Next | Output | Abort:
        """Checks nothing more; sends each peer its share f_i(j), encrypted under the pairwise
        DH key."""
        s, c, cs = self.c.setup, self.c, self.c.setup.suite
        me = s.identifiers[s.party]
        sends = []
        for p in sorted(self.got):
            j = s.identifiers[p]
            _, their_pub, shared = self.got[p]
            plaintext = wire.encode_round2_package(cs, dkg.share_for(cs, c.secret, j))
            sends.append(
                Send(p, dkg.encrypt_share(cs, s.session_id, shared, c.enc_public, their_pub, me, j, plaintext))
            )
        # Round two gets f_i(i), the commitments and the per-peer keys; not the polynomial.
        carry = _DkgPeers(
            s,
            dkg.round2_secret(cs, c.secret),
            c.enc_public,
            c.package,
            {p: v[0] for p, v in self.got.items()},
            {p: v[1] for p, v in self.got.items()},
            {p: v[2] for p, v in self.got.items()},
        )
        return Next(DkgRound2(carry), tuple(sends))


@dataclass(frozen=True)
class _DkgPeers:
    """Round 2's carry: f_i(i) and the commitment, this party's encryption key, and every
    peer's round-1 package, encryption key and pairwise DH secret; not the polynomial."""

    setup: DkgSetup
    secret: dkg.Round2Secret = field(repr=False)
    enc_public: bytes
    own_package: dkg.Round1Package
    packages: Mapping[PartyId, dkg.Round1Package]
    peer_keys: Mapping[PartyId, bytes]
    shared: Mapping[PartyId, bytes] = field(repr=False)  # per-peer DH secrets for the share keys


class DkgRound2(Round[None, int]):
    number = 2

    def __init__(self, carry: _DkgPeers) -> None:
        self.c = carry
        self.shares: dict[int, int] = {}

    def expects(self) -> Expect:
        return Expect(direct=frozenset(self.c.packages))

    def verify_direct(self, sender: PartyId, body: bytes) -> int:
        """Encrypted round2::Package: decrypts and authenticates under the pairwise key (bound
        to the session and both identifiers), then a canonical scalar. Blames the sender."""
        c = self.c
        s = c.setup
        me, them = s.identifiers[s.party], s.identifiers[sender]
        try:
            plaintext = dkg.decrypt_share(
                s.suite, s.session_id, c.shared[sender], c.enc_public, c.peer_keys[sender], me, them, body
            )
            share = wire.decode_round2_package(s.suite, plaintext)
        except dkg.DkgFault as fault:
            raise ProtocolFault(sender, fault.reason) from None
        except EnclaveError:
            raise ProtocolFault(sender, "malformed round-2 package") from None
        return share

    def store_direct(self, sender: PartyId, value: int) -> None:
        self.shares[self.c.setup.identifiers[sender]] = value

    def finalize(self) -> Next | Output | Abort:
        """dkg.part3: each share against its dealer's commitments (a mismatch names the
        dealer), then the key package and the public key package; then the chain code over the
        key and every round-1 package (this party's own included)."""
        ids, cs, old = self.c.setup.identifiers, self.c.setup.suite, self.c.setup.refresh
        round1 = {ids[p]: pkg for p, pkg in self.c.packages.items()}
        by_ident = {i: p for p, i in ids.items()}
        try:
            if old is not None:
                return Output(refresh.part3(cs, self.c.secret, round1, self.shares, *old))
            key, public = dkg.part3(cs, self.c.secret, round1, self.shares)
        except dkg.DkgFault as fault:
            return Abort(frozenset({by_ident[fault.culprit]}), fault.reason)
        transcript = round1 | {self.c.secret.identifier: self.c.own_package}
        return Output((key, public, derive.chain_code(cs, public.verifying_key, transcript)))


def dkg_driver(setup: DkgSetup) -> Driver:
    ids = list(setup.identifiers.values())
    if len(set(ids)) != len(ids) or setup.party not in setup.identifiers:
        raise InvalidParameters("identifiers must be distinct and include this party's")
    me = setup.identifiers[setup.party]
    cs = setup.suite
    if setup.refresh is None:
        secret, package = dkg.part1(cs, me, len(ids), setup.min_signers, setup.rng)
    else:
        key, public = setup.refresh
        if key.identifier != me:
            raise InvalidParameters("the key to refresh is another participant's")
        refresh.check_old_key(key, public, ids, setup.min_signers)
        secret, package = refresh.part1(cs, me, len(ids), setup.min_signers, setup.rng)
    enc_secret = cs.group.random_scalar(setup.rng)
    enc_public = cs.group.encode(cs.group.base_mul(enc_secret))
    source = b"" if setup.refresh is None else refresh.source_digest(cs, setup.refresh[1])
    carry = _DkgPolynomial(setup, secret, enc_secret, enc_public, package, source)
    body = wire.encode_round1_package(cs, package) + enc_public + source
    return Driver(setup.session_id, setup.party, setup.identifiers, Next(DkgRound1(carry), (Send(None, body),)), 2)
