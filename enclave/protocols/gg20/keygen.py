"""GG20 key generation, t-of-n, with CGGMP21 auxiliary info (three rounds).

Round 1 (broadcast): V_i = H(sid, i, Feldman commitments, chain-code share, salt), and the aux
    info N_i, s_i, t_i with Πmod and Πprm. Peers check the modulus size and structure, the
    ring-Pedersen parameters and both proofs.
Round 2 (broadcast): the decommitment (Feldman commitments C_i, chain-code share, salt) and a
    Schnorr proof of knowledge of u_i = f_i(0). (direct, to j): f_i(j) encrypted under j's
    Paillier key (the relay sees ciphertext only) and Πfac for N_i under j's ring-Pedersen
    parameters (the BitForge check). Peers check the decommitment, the number and validity of
    commitments, the Schnorr proof, Πfac and the share against the commitments (Feldman).
Round 3 (broadcast): a Schnorr proof of knowledge of the final share x_i for X_i. Its frames
    carry the echo of round 2's broadcasts, so an equivocated commitment vector aborts.

Every failed check aborts naming the sender. A share that does not match its commitments
names the dealer on the receiver's word (the receiver alone can decrypt it); a lying receiver
can therefore blame an honest dealer, a limit shared with GG20's complaint model.

Start: `start(session_id, self_id, parties, threshold, primes, rng)` returns a `Driver`;
its `Output.value` is a `KeyShare`.

Refresh (`start(..., refresh=share)`, CGGMP21's key refresh with GG20's sharing): the same three
rounds for the key's own parties and threshold, with two changes. Every polynomial has the
constant term zero, so its commitment vector leaves out a_0*G (threshold - 1 points, checked
with the identity put back: a dealer of anything but zero fails the Feldman check of every
recipient and is named) and round 2 carries no Schnorr proof of u_i (there is no u_i). The
output keeps the public key and chain code, adds the zero shares to x_i and to every X_j, and
carries the new Paillier key and every party's new aux info, proven as in a key generation.
Round 1 also carries `source_digest` of the key being refreshed (public key, chain code, every
X_j): a host that hands the parties different generations of the key gets an abort naming
nobody, not honest parties blamed in round 3. A modulus from the key's old aux info is refused
as a reused one, so every party's aux info really is renewed.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field

from enclave.crypto import ringpedersen
from enclave.crypto.paillier import DEFAULT_MODULUS_BITS, SecretKey
from enclave.crypto.polynomial import commit, commitment_at, evaluate, random_polynomial, verify_share
from enclave.crypto.primes import SafePrimePair
from enclave.crypto.ringpedersen import Params
from enclave.crypto.rng import Rng
from enclave.errors import InvalidEncoding, InvalidParameters, ProtocolFault
from enclave.group.secp256k1 import Point, Secp256k1Group
from enclave.protocols.driver import Driver, Expect, Next, Output, Round, Send
from enclave.protocols.gg20.common import (
    BROADCAST_VERIFIER,
    AuxInfo,
    check_party_ids,
    framed_hash,
    proof_transcript,
    verify_aux_info,
)
from enclave.protocols.gg20.keyshare import KeyShare
from enclave.zk import fac, mod, prm, schnorr, wire
from enclave.zk.wire import CborReader

PROTOCOL = "gg20/keygen"
_COMMIT_TAG = b"mpc-signer/gg20/keygen/commit/v1"
_CHAIN_TAG = b"mpc-signer/gg20/chain-code/v1"
_SOURCE_TAG = b"mpc-signer/gg20/refresh/source/v1"


def source_digest(share: KeyShare) -> bytes:
    """What every party of a refresh must agree it refreshes (public values of the key share)."""
    shares = [share.public_shares[k] for k in share.parties]
    return framed_hash(_SOURCE_TAG, share.public_key, share.chain_code, *shares)


@dataclass(frozen=True)
class KeygenSetup:
    """What every round of one keygen session knows: the session, the parties and the rules."""

    session_id: bytes
    self_id: int
    parties: tuple[int, ...]
    threshold: int
    min_modulus_bits: int
    group: Secp256k1Group
    rng: Rng = field(repr=False)
    refresh: KeyShare | None = field(default=None, repr=False)  # the share being refreshed

    @property
    def others(self) -> frozenset[int]:
        return frozenset(p for p in self.parties if p != self.self_id)


def _commitment_hash(setup: KeygenSetup, sender: int, commitments: Sequence[bytes], chain: bytes, salt: bytes) -> bytes:
    return framed_hash(_COMMIT_TAG, setup.session_id, sender.to_bytes(4, "big"), *commitments, chain, salt)


@dataclass(frozen=True)
class _Secrets:
    coeffs: tuple[int, ...] = field(repr=False)
    paillier: SecretKey = field(repr=False)


@dataclass(frozen=True)
class _Dealing:
    """Round 1's carry: this party's secrets, the opening of its round-1 commitment (sent in
    round 2) and its aux info."""

    setup: KeygenSetup
    secrets: _Secrets = field(repr=False)
    commitments: tuple[bytes, ...]
    chain: bytes
    salt: bytes
    aux: AuxInfo


@dataclass(frozen=True)
class _Round1Msg:
    v: bytes
    aux: AuxInfo


class Round1(Round[_Round1Msg, None]):
    number = 1

    def __init__(self, carry: _Dealing) -> None:
        self.c = carry
        self.got: dict[int, _Round1Msg] = {}

    def expects(self) -> Expect:
        return Expect(broadcast=frozenset(self.c.setup.parties))

    def verify_broadcast(self, sender: int, body: bytes) -> _Round1Msg:
        """[V, N, s, t, Πmod, Πprm]: N of at least `min_modulus_bits` with the modulus checks
        of `check_modulus`, Πmod for N, ring-Pedersen (N, s, t) valid, Πprm for it. Blames
        the sender."""
        setup = self.c.setup
        old = setup.refresh
        r = CborReader(body, 6 if old is None else 7)
        v, n, s, t = r.blob(32), r.integer(), r.integer(), r.integer()
        mod_proof, prm_proof = r.proof(mod.Proof), r.proof(prm.Proof)
        if old is not None and not hmac.compare_digest(r.blob(32), source_digest(old)):
            # different generations of the key at different parties: the host's doing, or the
            # sender's; this party cannot tell which, so it names nobody
            raise ProtocolFault(frozenset(), "the parties are refreshing different versions of the key")
        old_aux = old.aux.values() if old is not None else ()
        aux = verify_aux_info(
            setup.session_id, PROTOCOL, sender, (n, s, t, mod_proof, prm_proof), setup.min_modulus_bits, old_aux
        )
        return _Round1Msg(v, aux)

    def store_broadcast(self, sender: int, value: _Round1Msg) -> None:
        self.got[sender] = value

    def finalize(self) -> Next:
        """Checks that no two parties share a Paillier modulus (names every party that does),
        then makes round 2: the decommitment with a Schnorr proof of u_i, and for each peer j
        f_i(j) under j's Paillier key with Πfac for N_i under j's ring-Pedersen parameters."""
        c = self.c
        setup, g = c.setup, c.setup.group
        moduli = [m.aux.n for m in self.got.values()] + [c.aux.n]
        if len(set(moduli)) != len(moduli):
            # only a party that knows the factors can prove Πmod for a modulus, so every peer
            # sharing one with another party is in on it
            dup = {j for j, m in self.got.items() if moduli.count(m.aux.n) > 1}
            raise ProtocolFault(dup, "reused Paillier modulus")
        aux = {j: m.aux for j, m in self.got.items()} | {setup.self_id: c.aux}
        coeffs = c.secrets.coeffs
        proof_of_u = b""  # a refresh has no u_i to prove
        if setup.refresh is None:
            sch_tr = proof_transcript(setup.session_id, PROTOCOL, 2, setup.self_id, BROADCAST_VERIFIER, "schnorr-u")
            sch = schnorr.prove(
                sch_tr, schnorr.Statement(g, g.base_mul(coeffs[0])), schnorr.Witness(coeffs[0]), setup.rng
            )
            proof_of_u = schnorr.encode(g, sch)
        sends = [Send(None, wire.dumps([list(c.commitments), c.chain, c.salt, proof_of_u]))]
        for j in setup.parties:
            if j == setup.self_id:
                continue
            share = evaluate(coeffs, j, g.order)
            enc_share, _ = aux[j].paillier.encrypt(share, setup.rng)
            tr = proof_transcript(setup.session_id, PROTOCOL, 2, setup.self_id, j, "fac")
            st = fac.Statement(c.aux.n, aux[j].pedersen)
            proof = fac.prove(tr, st, fac.Witness(c.secrets.paillier), setup.rng)
            sends.append(Send(j, wire.dumps([enc_share, wire.encode(proof)])))
        carry = _Committed(setup, c.secrets, aux, {j: m.v for j, m in self.got.items()}, c.chain)
        return Next(Round2(carry), tuple(sends))


@dataclass(frozen=True)
class _Committed:
    """Round 2's carry: this party's secrets and chain-code share, every party's aux info and
    every peer's round-1 commitment V_j."""

    setup: KeygenSetup
    secrets: _Secrets = field(repr=False)
    aux: dict[int, AuxInfo]
    v: dict[int, bytes]
    own_chain: bytes


@dataclass(frozen=True)
class _Decommit:
    commitments: tuple[Point, ...]
    chain: bytes


class Round2(Round[_Decommit, int]):
    number = 2

    def __init__(self, carry: _Committed) -> None:
        self.c = carry
        self.decommits: dict[int, _Decommit] = {}
        self.shares: dict[int, int] = {}

    def expects(self) -> Expect:
        return Expect(broadcast=frozenset(self.c.setup.parties), direct=self.c.setup.others)

    def verify_broadcast(self, sender: int, body: bytes) -> _Decommit:
        """[commitments, chain, salt, Schnorr]: `threshold` valid points that, with chain and
        salt, open the sender's V; a Schnorr proof of knowledge of the constant term's discrete
        log. Blames the sender."""
        setup, g = self.c.setup, self.c.setup.group
        r = CborReader(body, 4)
        raw = r.any()
        if type(raw) is not list or not all(type(c) is bytes for c in raw):
            raise ProtocolFault(sender, "malformed commitments")
        if len(raw) != setup.threshold - (setup.refresh is not None):
            raise ProtocolFault(sender, "wrong number of VSS commitments")
        chain, salt, sch_raw = r.blob(32), r.blob(32), r.blob()
        try:
            commitments = tuple(g.decode(c) for c in raw)
        except InvalidEncoding as exc:
            raise ProtocolFault(sender, "invalid VSS commitment point") from exc
        opened = framed_hash(_COMMIT_TAG, setup.session_id, sender.to_bytes(4, "big"), *raw, chain, salt)
        if not hmac.compare_digest(opened, self.c.v[sender]):
            raise ProtocolFault(sender, "decommitment does not open the commitment")
        if setup.refresh is not None:
            if sch_raw:
                raise ProtocolFault(sender, "a refresh decommitment carries no Schnorr proof")
            return _Decommit((g.identity(), *commitments), chain)
        proof = schnorr.decode(g, sch_raw)
        tr = proof_transcript(setup.session_id, PROTOCOL, 2, sender, BROADCAST_VERIFIER, "schnorr-u")
        if not schnorr.verify(tr, schnorr.Statement(g, commitments[0]), proof):
            raise ProtocolFault(sender, "invalid Schnorr proof")
        return _Decommit(commitments, chain)

    def store_broadcast(self, sender: int, value: _Decommit) -> None:
        self.decommits[sender] = value

    def verify_direct(self, sender: int, body: bytes) -> int:
        """[Enc(f_j(i)), Πfac]: the ciphertext in Z*_{N_i^2}, Πfac for N_j under this party's
        ring-Pedersen parameters, the decrypted share below q and on the sender's VSS
        commitments (its broadcast of this round). Blames the sender (on this party's word for
        the share)."""
        setup, g = self.c.setup, self.c.setup.group
        r = CborReader(body, 2)
        enc_share, fac_proof = r.integer(), r.proof(fac.Proof)
        own = self.c.secrets.paillier
        if not own.public.validate(enc_share):
            raise ProtocolFault(sender, "share ciphertext outside Z*_{N^2}")
        tr = proof_transcript(setup.session_id, PROTOCOL, 2, sender, setup.self_id, "fac")
        mine = self.c.aux[setup.self_id]
        own_params = Params(mine.n, mine.s, mine.t, owner_key=own)
        if not fac.verify(tr, fac.Statement(self.c.aux[sender].n, own_params), fac_proof):
            raise ProtocolFault(sender, "invalid Πfac")
        share = own.decrypt(enc_share)
        if share >= g.order:
            raise ProtocolFault(sender, "share out of range")
        if not verify_share(g, self.decommits[sender].commitments, setup.self_id, share):
            raise ProtocolFault(sender, "share does not match the VSS commitments")
        return share

    def store_direct(self, sender: int, value: int) -> None:
        self.shares[sender] = value

    def finalize(self) -> Next:
        """x_i = f_i(i) + Σ f_j(i), Y = Σ C_j[0] (the identity aborts naming nobody), every
        party's X_k from the commitments, the chain code from every chain share; sends a
        Schnorr proof of knowledge of x_i."""
        c = self.c
        setup, g = c.setup, c.setup.group
        me = setup.self_id
        coeffs = c.secrets.coeffs
        own_commitments = commit(g, coeffs)
        all_commitments = {j: d.commitments for j, d in self.decommits.items()} | {me: own_commitments}
        x = (evaluate(coeffs, me, g.order) + sum(self.shares.values())) % g.order
        summed = {k: g.add_many([commitment_at(g, cm, k) for cm in all_commitments.values()]) for k in setup.parties}
        old = setup.refresh
        if old is None:
            public = g.add_many([cm[0] for cm in all_commitments.values()])
            if g.is_identity(public):
                raise ProtocolFault(frozenset(), "degenerate public key")
            public_key = g.encode(public)
            public_shares = {k: g.encode(summed[k]) for k in setup.parties}
            chains = {j: d.chain for j, d in self.decommits.items()} | {me: c.own_chain}
            chain_code = framed_hash(_CHAIN_TAG, setup.session_id, *(chains[j] for j in setup.parties))
        else:  # the zero shares move every share and X_k, never the key or its chain code
            x = (x + old.secret) % g.order
            public_key, chain_code = old.public_key, old.chain_code
            public_shares = {k: g.encode(g.add(g.decode(old.public_shares[k]), summed[k])) for k in setup.parties}
        key_share = KeyShare(
            index=me,
            threshold=setup.threshold,
            parties=setup.parties,
            secret=x,
            public_key=public_key,
            public_shares=public_shares,
            chain_code=chain_code,
            paillier_p=c.secrets.paillier.p,
            paillier_q=c.secrets.paillier.q,
            aux=c.aux,
        )
        tr = proof_transcript(setup.session_id, PROTOCOL, 3, me, BROADCAST_VERIFIER, "schnorr-x")
        proof = schnorr.prove(tr, schnorr.Statement(g, g.base_mul(x)), schnorr.Witness(x), setup.rng)
        return Next(Round3(_KeyShareMade(setup, key_share)), (Send(None, schnorr.encode(g, proof)),))


@dataclass(frozen=True)
class _KeyShareMade:
    """Round 3's carry: the key share this party computed, output once every X_j is proven."""

    setup: KeygenSetup
    share: KeyShare = field(repr=False)


class Round3(Round[None, None]):
    number = 3

    def __init__(self, carry: _KeyShareMade) -> None:
        self.c = carry

    def expects(self) -> Expect:
        return Expect(broadcast=frozenset(self.c.setup.parties))

    def verify_broadcast(self, sender: int, body: bytes) -> None:
        """A Schnorr proof of knowledge of x_j for the sender's X_j. Blames the sender."""
        setup, g = self.c.setup, self.c.setup.group
        proof = schnorr.decode(g, body)
        tr = proof_transcript(setup.session_id, PROTOCOL, 3, sender, BROADCAST_VERIFIER, "schnorr-x")
        point = g.decode(self.c.share.public_shares[sender])
        if not schnorr.verify(tr, schnorr.Statement(g, point), proof):
            raise ProtocolFault(sender, "invalid Schnorr proof of the key share")

    def store_broadcast(self, sender: int, value: None) -> None:
        pass

    def finalize(self) -> Output:
        """Outputs the key share (nothing left to check)."""
        return Output(self.c.share)


def start(
    session_id: bytes,
    self_id: int,
    parties: Sequence[int],
    threshold: int,
    primes: SafePrimePair,
    rng: Rng,
    *,
    min_modulus_bits: int = DEFAULT_MODULUS_BITS,
    group: Secp256k1Group | None = None,
    refresh: KeyShare | None = None,
) -> Driver:
    """A keygen session for this party, or with `refresh` a refresh of that key share.
    `primes` (the new Paillier key) comes from the pre-parameter pool."""
    ids = check_party_ids(parties)
    if self_id not in ids:
        raise InvalidParameters("self is not a party")
    if not 1 <= threshold <= len(ids) or len(ids) < 2:
        raise InvalidParameters("need 2 <= parties and 1 <= threshold <= parties")
    if refresh is not None:
        if (refresh.index, refresh.parties, refresh.threshold) != (self_id, ids, threshold):
            raise InvalidParameters("a refresh keeps the key's parties, threshold and this party's index")
        if threshold < 2:
            raise InvalidParameters("a refresh needs a threshold of at least 2")
    g = group or Secp256k1Group()
    cfg = KeygenSetup(bytes(session_id), self_id, ids, threshold, min_modulus_bits, g, rng, refresh)
    key = SecretKey(primes.p, primes.q)
    if key.n.bit_length() < min_modulus_bits:
        raise InvalidParameters("pre-parameters below the configured modulus size")
    if refresh is not None and any(key.n == a.n for a in refresh.aux.values()):
        raise InvalidParameters("a refresh needs new pre-parameters, not the key's old Paillier key")
    params, trapdoor = ringpedersen.generate(key, rng)
    aux = AuxInfo(params.n, params.s, params.t)
    coeffs = random_polynomial(g, 0 if refresh is not None else g.random_scalar(rng), threshold, rng)
    # a refresh leaves a_0*G = identity out (it has no encoding); receivers put it back
    commitments = [g.encode(c) for c in commit(g, coeffs)[1 if refresh is not None else 0 :]]
    chain = rng.random_bytes(32)
    salt = rng.random_bytes(32)
    v = _commitment_hash(cfg, self_id, commitments, chain, salt)
    mod_proof = mod.prove(
        proof_transcript(cfg.session_id, PROTOCOL, 1, self_id, BROADCAST_VERIFIER, "mod"),
        mod.Statement(key.n),
        mod.Witness(key),
        rng,
    )
    prm_proof = prm.prove(
        proof_transcript(cfg.session_id, PROTOCOL, 1, self_id, BROADCAST_VERIFIER, "prm"),
        prm.Statement(params),
        prm.Witness(trapdoor),
        rng,
    )
    fields: list[object] = [v, aux.n, aux.s, aux.t, wire.encode(mod_proof), wire.encode(prm_proof)]
    if refresh is not None:
        fields.append(source_digest(refresh))
    body = wire.dumps(fields)
    first = Round1(_Dealing(cfg, _Secrets(tuple(coeffs), key), tuple(commitments), chain, salt, aux))
    return Driver(cfg.session_id, self_id, ids, Next(first, (Send(None, body),)), total_rounds=3)
