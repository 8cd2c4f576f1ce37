"""GG20 reshare: a key moved to a new party set and/or threshold (three rounds, keygen-shaped).

Dealers D (old parties with their key shares x_i, at least the source threshold) deal their
Lagrange-weighted shares lambda_i * x_i (lambda over the dealers' old indices) to the receivers R
(the new parties, session ids 1..|R| = their new indices; leaving dealers come after). Every
receiver brings a new Paillier key with its aux info, as in a key generation.

Round 1 (broadcast, everyone): [view, V, aux], sealed by enclave.protocols.reshare_auth (a
    dealer's proof of its source share, a listed party's signature; a bad one names the
    sender before anything else of the message is looked at). `view` is the digest of what the session is
    about (key, chain code, thresholds, dealers, receivers, the caller's context): a different
    one aborts naming nobody. V (dealers only) = H(sid, i, C_i, salt) commits to the dealer's
    Feldman commitments; aux (receivers only) = [N, s, t, Πmod, Πprm], checked as keygen does.
Round 2 (broadcast, dealers; others send nothing in it): [C_i, salt], opening V; t_new valid
    points. Every dealer checks C_i[0] == lambda_i * X_i against the old public shares it holds
    ("wrong Lagrange contribution", names i). (direct, everyone to everyone): [Enc_j(g_i(j)) or
    0, Πfac or b""]: a dealer to a receiver the sub-share under the receiver's Paillier key; a
    receiver to a receiver Πfac for its own N under the recipient's ring-Pedersen parameters
    (the BitForge check). A receiver checks each sub-share against its dealer's commitments
    (names the dealer). At the end every party checks sum C_i[0] == Y (names nobody).
Round 3 (broadcast, receivers; others send nothing): a Schnorr proof of x_j for the new X_j.

Output: a `KeyShare` for a receiver (index = its new index, the new threshold and parties, the
key and chain code unchanged, every receiver's aux info); for a dealer that leaves, the new
public shares ({index: X_j}).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from enclave.crypto import ringpedersen
from enclave.crypto.paillier import DEFAULT_MODULUS_BITS, SecretKey
from enclave.crypto.polynomial import (
    commit,
    commitment_at,
    evaluate,
    lagrange_coefficient,
    random_polynomial,
    verify_share,
)
from enclave.crypto.primes import SafePrimePair
from enclave.crypto.ringpedersen import Params
from enclave.crypto.rng import Rng
from enclave.errors import InvalidEncoding, InvalidParameters, ProtocolFault
from enclave.group.secp256k1 import Point, Secp256k1Group
from enclave.protocols.driver import Abort, Driver, Expect, Next, Output, Round, Send
from enclave.protocols.gg20.common import BROADCAST_VERIFIER, AuxInfo, framed_hash, proof_transcript, verify_aux_info
from enclave.protocols.gg20.keyshare import KeyShare
from enclave.protocols.reshare_auth import ReshareAuth, Sign
from enclave.zk import fac, mod, prm, schnorr, wire
from enclave.zk.wire import CborReader

PROTOCOL = "gg20/reshare"
_VIEW_TAG = b"mpc-signer/gg20/reshare/view/v1"
_COMMIT_TAG = b"mpc-signer/gg20/reshare/commit/v1"


@dataclass(frozen=True)
class ReshareSetup:
    session_id: bytes
    self_id: int
    receivers: int  # the new parties are session ids 1..receivers
    dealers: Mapping[int, int]  # session id -> its index in the source key
    threshold: int  # the new one
    source_threshold: int
    public_key: bytes
    chain_code: bytes
    rng: Rng = field(repr=False)
    source: KeyShare | None = field(default=None, repr=False)  # a dealer's share of the key
    context: bytes = b""
    min_modulus_bits: int = DEFAULT_MODULUS_BITS
    group: Secp256k1Group = field(default_factory=Secp256k1Group)
    # The parties that deal nothing, each with the P-256 key that signs its round-one message;
    # every other party is a dealer and proves its message with its source share.
    new_party_keys: Mapping[int, bytes] = field(kw_only=True)
    sign: Sign | None = field(default=None, kw_only=True, repr=False)  # this party's, if listed

    @property
    def new_parties(self) -> tuple[int, ...]:
        return tuple(range(1, self.receivers + 1))

    @property
    def parties(self) -> tuple[int, ...]:
        return tuple(sorted(set(self.new_parties) | set(self.dealers)))

    @property
    def receives(self) -> bool:
        return self.self_id <= self.receivers

    def weight(self, session_id: int) -> int:
        """lambda_i over the dealers' old indices."""
        return lagrange_coefficient(self.group.order, self.dealers[session_id], self.dealers.values())


def view_digest(s: ReshareSetup) -> bytes:
    dealers = b"".join(p.to_bytes(4, "big") + i.to_bytes(4, "big") for p, i in sorted(s.dealers.items()))
    numbers = b"".join(n.to_bytes(4, "big") for n in (s.receivers, s.threshold, s.source_threshold))
    return framed_hash(_VIEW_TAG, s.public_key, s.chain_code, numbers, dealers, s.context)


def _commitment_hash(s: ReshareSetup, sender: int, commitments: Sequence[bytes], salt: bytes) -> bytes:
    return framed_hash(_COMMIT_TAG, s.session_id, sender.to_bytes(4, "big"), *commitments, salt)


@dataclass(frozen=True)
class _Mine:
    """This party's secrets: its polynomial (a dealer) and its new Paillier key (a receiver)."""

    coeffs: tuple[int, ...] = field(repr=False)
    paillier: SecretKey | None = field(repr=False)
    commitments: tuple[bytes, ...]
    salt: bytes
    aux: AuxInfo | None


@dataclass(frozen=True)
class _R1:
    v: bytes
    aux: AuxInfo | None


class Round1(Round[_R1, None]):
    number = 1

    def __init__(self, setup: ReshareSetup, mine: _Mine, view: bytes, auth: ReshareAuth) -> None:
        self.s, self.m, self.view, self.auth = setup, mine, view, auth
        self.got: dict[int, _R1] = {}

    def expects(self) -> Expect:
        return Expect(broadcast=frozenset(self.s.parties))

    def _aux(self, sender: int, raw: bytes) -> AuxInfo:
        s = self.s
        r = CborReader(raw, 5)
        n, ps, pt = r.integer(), r.integer(), r.integer()
        mod_proof, prm_proof = r.proof(mod.Proof), r.proof(prm.Proof)
        old = s.source.aux.values() if s.source is not None else ()
        fields = (n, ps, pt, mod_proof, prm_proof)
        aux = verify_aux_info(s.session_id, PROTOCOL, sender, fields, s.min_modulus_bits, old, renewing="reshare")
        return aux

    def verify_broadcast(self, sender: int, body: bytes) -> _R1:
        """[view, V, aux]: the same view (else nobody is named), V iff the sender deals, aux
        with valid proofs iff it receives. Blames the sender."""
        s = self.s
        r = CborReader(self.auth.open(sender, body), 3)
        view, v, aux_raw = r.blob(32), r.blob(), r.blob()
        if not hmac.compare_digest(view, self.view):
            raise ProtocolFault(frozenset(), "the parties disagree on the reshare (key, parties or thresholds)")
        if len(v) != (32 if sender in s.dealers else 0):
            raise ProtocolFault(sender, "a dealer commits to its sharing, and only a dealer")
        if (sender <= s.receivers) != bool(aux_raw):
            raise ProtocolFault(sender, "a receiver brings aux info, and only a receiver")
        return _R1(v, self._aux(sender, aux_raw) if aux_raw else None)

    def store_broadcast(self, sender: int, value: _R1) -> None:
        self.got[sender] = value

    def finalize(self) -> Next:
        """No two receivers may share a modulus (names each that does); then the decommitment
        (a dealer), and to each peer its sub-share (dealer to receiver) and Πfac (receiver to
        receiver)."""
        s, m, g = self.s, self.m, self.s.group
        aux = {j: r.aux for j, r in self.got.items() if r.aux is not None}
        if m.aux is not None:
            aux[s.self_id] = m.aux
        moduli = [a.n for a in aux.values()]
        if len(set(moduli)) != len(moduli):
            dup = {j for j, a in aux.items() if moduli.count(a.n) > 1 and j != s.self_id}
            raise ProtocolFault(dup, "reused Paillier modulus")
        broadcast = wire.dumps([list(m.commitments), m.salt]) if m.coeffs else b""
        sends = [Send(None, broadcast)]
        for j in s.parties:
            if j == s.self_id:
                continue
            enc, proof = 0, b""
            if m.coeffs and j <= s.receivers:
                enc, _ = aux[j].paillier.encrypt(evaluate(m.coeffs, j, g.order), s.rng)
            if m.paillier is not None and m.aux is not None and j <= s.receivers:
                tr = proof_transcript(s.session_id, PROTOCOL, 2, s.self_id, j, "fac")
                st = fac.Statement(m.aux.n, aux[j].pedersen)
                proof = wire.encode(fac.prove(tr, st, fac.Witness(m.paillier), s.rng))
            sends.append(Send(j, wire.dumps([enc, proof])))
        carry = _Committed(s, m, aux, {j: r.v for j, r in self.got.items()})
        return Next(Round2(carry), tuple(sends))


@dataclass(frozen=True)
class _Committed:
    setup: ReshareSetup
    mine: _Mine = field(repr=False)
    aux: dict[int, AuxInfo]
    v: dict[int, bytes]


class Round2(Round[tuple[Point, ...], int | None]):
    number = 2

    def __init__(self, carry: _Committed) -> None:
        self.c = carry
        s = carry.setup
        self.commitments: dict[int, tuple[Point, ...]] = {}
        self.shares: dict[int, int] = {}
        if carry.mine.coeffs:
            self.commitments[s.self_id] = tuple(commit(s.group, carry.mine.coeffs))
            if s.receives:
                self.shares[s.self_id] = evaluate(carry.mine.coeffs, s.self_id, s.group.order)

    def expects(self) -> Expect:
        s = self.c.setup
        return Expect(broadcast=frozenset(s.parties), direct=frozenset(p for p in s.parties if p != s.self_id))

    def verify_broadcast(self, sender: int, body: bytes) -> tuple[Point, ...]:
        """A dealer's [C_i, salt]: opens V, t_new valid points, and (checked by a dealer) the
        constant term lambda_i * X_i. Anyone else sends nothing. Blames the sender."""
        s, g = self.c.setup, self.c.setup.group
        if sender not in s.dealers:
            if body:
                raise ProtocolFault(sender, "a party that deals nothing sent a decommitment")
            return ()
        r = CborReader(body, 2)
        raw, salt = r.any(), r.blob(32)
        if type(raw) is not list or not all(type(c) is bytes for c in raw) or len(raw) != s.threshold:
            raise ProtocolFault(sender, "wrong number of VSS commitments")
        try:
            commitments = tuple(g.decode(c) for c in raw)
        except InvalidEncoding:
            raise ProtocolFault(sender, "invalid VSS commitment point") from None
        if not hmac.compare_digest(_commitment_hash(s, sender, raw, salt), self.c.v[sender]):
            raise ProtocolFault(sender, "decommitment does not open the commitment")
        if s.source is not None:
            old = g.decode(s.source.public_shares[s.dealers[sender]])
            if not g.eq(commitments[0], g.mul(old, s.weight(sender))):
                raise ProtocolFault(sender, "wrong Lagrange contribution")
        return commitments

    def store_broadcast(self, sender: int, value: tuple[Point, ...]) -> None:
        if value:
            self.commitments[sender] = value

    def verify_direct(self, sender: int, body: bytes) -> int | None:
        """[Enc(g_i(j)) or 0, Πfac or b""], each present exactly when the roles say so. Blames
        the sender (on this party's word for the sub-share)."""
        s, c, g = self.c.setup, self.c, self.c.setup.group
        r = CborReader(body, 2)
        enc, proof_raw = r.integer(), r.blob()
        wants_share = s.receives and sender in s.dealers
        wants_proof = s.receives and sender <= s.receivers
        if (enc != 0) != wants_share or bool(proof_raw) != wants_proof:
            raise ProtocolFault(sender, "unexpected reshare round-2 message")
        own = c.mine.paillier
        if wants_proof:
            assert own is not None
            tr = proof_transcript(s.session_id, PROTOCOL, 2, sender, s.self_id, "fac")
            mine = c.aux[s.self_id]
            params = Params(mine.n, mine.s, mine.t, owner_key=own)
            if not fac.verify(tr, fac.Statement(c.aux[sender].n, params), wire.decode(fac.Proof, proof_raw)):
                raise ProtocolFault(sender, "invalid Πfac")
        if not wants_share:
            return None
        assert own is not None
        if not own.public.validate(enc):
            raise ProtocolFault(sender, "share ciphertext outside Z*_{N^2}")
        share = own.decrypt(enc)
        if share >= g.order:
            raise ProtocolFault(sender, "share out of range")
        if not verify_share(g, self.commitments[sender], s.self_id, share):
            raise ProtocolFault(sender, "reshare sub-share does not match the dealer's commitments")
        return share

    def store_direct(self, sender: int, value: int | None) -> None:
        if value is not None:
            self.shares[sender] = value

    def finalize(self) -> Next | Abort:
        """sum C_i[0] must be the key (else nobody is named); x_j and every new X_k from the
        commitments; a receiver proves x_j."""
        s, c, g = self.c.setup, self.c, self.c.setup.group
        total = g.add_many([cm[0] for cm in self.commitments.values()])
        if g.is_identity(total) or not hmac.compare_digest(g.encode(total), s.public_key):
            return Abort(frozenset(), "the dealers' contributions do not add up to the key")
        public_shares = {
            k: g.encode(g.add_many([commitment_at(g, cm, k) for cm in self.commitments.values()]))
            for k in s.new_parties
        }
        if not s.receives:
            return Next(Round3(s, public_shares, None), (Send(None, b""),))
        x = sum(self.shares.values()) % g.order
        if g.encode(g.base_mul(x)) != public_shares[s.self_id]:
            raise InvalidParameters("sub-share sum inconsistent although each verifies")  # unreachable
        own = c.mine.paillier
        assert own is not None
        share = KeyShare(
            index=s.self_id,
            threshold=s.threshold,
            parties=s.new_parties,
            secret=x,
            public_key=s.public_key,
            public_shares=public_shares,
            chain_code=s.chain_code,
            paillier_p=own.p,
            paillier_q=own.q,
            aux={k: c.aux[k] for k in s.new_parties},
        )
        tr = proof_transcript(s.session_id, PROTOCOL, 3, s.self_id, BROADCAST_VERIFIER, "schnorr-x")
        proof = schnorr.prove(tr, schnorr.Statement(g, g.base_mul(x)), schnorr.Witness(x), s.rng)
        return Next(Round3(s, public_shares, share), (Send(None, schnorr.encode(g, proof)),))


class Round3(Round[None, None]):
    number = 3

    def __init__(self, setup: ReshareSetup, public_shares: dict[int, bytes], share: KeyShare | None) -> None:
        self.s, self.public_shares, self.share = setup, public_shares, share

    def expects(self) -> Expect:
        return Expect(broadcast=frozenset(self.s.parties))

    def verify_broadcast(self, sender: int, body: bytes) -> None:
        """A receiver's Schnorr proof of x_j for X_j; nothing from anyone else."""
        s, g = self.s, self.s.group
        if sender > s.receivers:
            if body:
                raise ProtocolFault(sender, "a party that receives nothing sent a proof")
            return
        proof = schnorr.decode(g, body)
        tr = proof_transcript(s.session_id, PROTOCOL, 3, sender, BROADCAST_VERIFIER, "schnorr-x")
        if not schnorr.verify(tr, schnorr.Statement(g, g.decode(self.public_shares[sender])), proof):
            raise ProtocolFault(sender, "invalid Schnorr proof of the key share")

    def store_broadcast(self, sender: int, value: None) -> None:
        pass

    def finalize(self) -> Output:
        return Output(self.share if self.share is not None else dict(self.public_shares))


def round_one_auth(s: ReshareSetup) -> ReshareAuth:
    """Round one's authentication: a dealer knows every dealer's public share of the source key
    (and proves its own share), a party new to the key only the listed keys."""
    g = s.group
    shares = {}
    if s.source is not None:
        shares = {p: g.decode(s.source.public_shares[i]) for p, i in s.dealers.items()}
    return ReshareAuth(
        g,
        PROTOCOL,
        s.session_id,
        s.self_id,
        frozenset(s.dealers),
        s.new_party_keys,
        s.rng,
        shares,
        s.source.secret if s.source is not None else None,
        s.sign,
    )


def _check(s: ReshareSetup) -> None:
    if s.self_id not in s.parties:
        raise InvalidParameters("this party is neither a dealer nor a receiver")
    if not 2 <= s.threshold <= s.receivers:
        raise InvalidParameters("need 2 <= new threshold <= receivers")
    olds = list(s.dealers.values())
    if len(set(olds)) != len(olds) or len(olds) < s.source_threshold or s.source_threshold < 2:
        raise InvalidParameters("a reshare needs at least the source threshold of distinct dealers")
    if any(not 1 <= p <= s.receivers + len(s.dealers) for p in s.dealers):
        raise InvalidParameters("dealers that leave come right after the receivers")
    if set(s.new_party_keys) != set(s.new_parties) - set(s.dealers):
        raise InvalidParameters("every receiver that deals nothing, and only such a party, is listed with a key")
    if (s.source is not None) != (s.self_id in s.dealers):
        raise InvalidParameters("a dealer needs its source share, and only a dealer has one")
    if s.source is not None:
        src = s.source
        if src.index != s.dealers[s.self_id] or src.threshold != s.source_threshold:
            raise InvalidParameters("the source share is not this dealer's share of a key with that threshold")
        if (src.public_key, src.chain_code) != (s.public_key, s.chain_code):
            raise InvalidParameters("the source share is of another key")
        if any(i not in src.public_shares for i in olds):
            raise InvalidParameters("every dealer must be a party of the source key")


def start(setup: ReshareSetup, primes: SafePrimePair | None) -> Driver:
    """A reshare session for this party. A receiver needs `primes` (its new Paillier key, from
    the pre-parameter pool); a dealer that leaves needs none."""
    _check(setup)
    s, g = setup, setup.group
    if s.receives != (primes is not None):
        raise InvalidParameters("a receiver needs pre-parameters, and only a receiver")
    coeffs: tuple[int, ...] = ()
    commitments: tuple[bytes, ...] = ()
    if s.source is not None:
        weighted = s.weight(s.self_id) * s.source.secret % g.order
        coeffs = tuple(random_polynomial(g, weighted, s.threshold, s.rng))
        commitments = tuple(g.encode(c) for c in commit(g, coeffs))
    salt = s.rng.random_bytes(32)
    v = _commitment_hash(s, s.self_id, commitments, salt) if coeffs else b""
    key, aux, aux_raw = None, None, b""
    if primes is not None:
        key = SecretKey(primes.p, primes.q)
        if key.n.bit_length() < s.min_modulus_bits:
            raise InvalidParameters("pre-parameters below the configured modulus size")
        if s.source is not None and any(key.n == a.n for a in s.source.aux.values()):
            raise InvalidParameters("a reshare needs new pre-parameters, not the key's old Paillier key")
        params, trapdoor = ringpedersen.generate(key, s.rng)
        aux = AuxInfo(params.n, params.s, params.t)
        tr = proof_transcript(s.session_id, PROTOCOL, 1, s.self_id, BROADCAST_VERIFIER, "mod")
        mod_proof = mod.prove(tr, mod.Statement(key.n), mod.Witness(key), s.rng)
        tr = proof_transcript(s.session_id, PROTOCOL, 1, s.self_id, BROADCAST_VERIFIER, "prm")
        prm_proof = prm.prove(tr, prm.Statement(params), prm.Witness(trapdoor), s.rng)
        aux_raw = wire.dumps([aux.n, aux.s, aux.t, wire.encode(mod_proof), wire.encode(prm_proof)])
    view = view_digest(s)
    mine = _Mine(coeffs, key, commitments, salt, aux)
    auth = round_one_auth(s)
    body = auth.seal(wire.dumps([view, v, aux_raw]))
    return Driver(s.session_id, s.self_id, s.parties, Next(Round1(s, mine, view, auth), (Send(None, body),)), 3)
