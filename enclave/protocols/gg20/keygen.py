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
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field

from enclave.crypto import ringpedersen
from enclave.crypto.paillier import DEFAULT_MODULUS_BITS, SecretKey, check_modulus
from enclave.crypto.polynomial import commit, commitment_at, evaluate, random_polynomial, verify_share
from enclave.crypto.primes import SafePrimePair
from enclave.crypto.ringpedersen import Params
from enclave.crypto.rng import Rng
from enclave.errors import InvalidEncoding, InvalidParameters, ProtocolFault
from enclave.group.secp256k1 import Point, Secp256k1Group
from enclave.protocols.gg20.codec import Reader, dumps
from enclave.protocols.gg20.common import BROADCAST_VERIFIER, AuxInfo, check_party_ids, framed_hash, proof_transcript
from enclave.protocols.gg20.keyshare import KeyShare
from enclave.protocols.rounds import Driver, Expect, Kind, Next, Output, Round, Send
from enclave.zk import fac, mod, prm, schnorr, wire

PROTOCOL = "gg20/keygen"
_COMMIT_TAG = b"mpc-signer/gg20/keygen/commit/v1"
_CHAIN_TAG = b"mpc-signer/gg20/chain-code/v1"


@dataclass(frozen=True)
class Config:
    session_id: bytes
    self_id: int
    parties: tuple[int, ...]
    threshold: int
    min_modulus_bits: int
    group: Secp256k1Group
    rng: Rng = field(repr=False)


def _commitment_hash(cfg: Config, sender: int, commitments: Sequence[bytes], chain: bytes, salt: bytes) -> bytes:
    return framed_hash(_COMMIT_TAG, cfg.session_id, sender.to_bytes(4, "big"), *commitments, chain, salt)


@dataclass(frozen=True)
class _Secrets:
    coeffs: tuple[int, ...] = field(repr=False)
    paillier: SecretKey = field(repr=False)


@dataclass(frozen=True)
class _Round1Msg:
    v: bytes
    aux: AuxInfo


class Round1(Round):
    number = 1

    def __init__(self, cfg: Config, secrets: _Secrets, decommit: tuple[list[bytes], bytes, bytes], aux: AuxInfo):
        self.cfg, self.secrets, self.decommit, self.aux = cfg, secrets, decommit, aux
        self.got: dict[int, _Round1Msg] = {}

    def expects(self) -> Expect:
        return Expect(broadcast=frozenset(self.cfg.parties))

    def verify(self, sender: int, kind: Kind, body: bytes) -> _Round1Msg:
        cfg = self.cfg
        r = Reader(body, 6)
        v, n, s, t = r.blob(32), r.integer(), r.integer(), r.integer()
        mod_proof, prm_proof = r.proof(mod.Proof), r.proof(prm.Proof)
        reason = check_modulus(n, cfg.min_modulus_bits)
        if reason is not None:
            raise ProtocolFault(sender, reason)
        tr = proof_transcript(cfg.session_id, PROTOCOL, 1, sender, BROADCAST_VERIFIER, "mod")
        if not mod.verify(tr, mod.Statement(n), mod_proof):
            raise ProtocolFault(sender, "invalid Πmod")
        aux = AuxInfo(n, s, t)
        if not aux.pedersen.validate():
            raise ProtocolFault(sender, "invalid ring-Pedersen parameters")
        tr = proof_transcript(cfg.session_id, PROTOCOL, 1, sender, BROADCAST_VERIFIER, "prm")
        if not prm.verify(tr, prm.Statement(aux.pedersen), prm_proof):
            raise ProtocolFault(sender, "invalid Πprm")
        return _Round1Msg(v, aux)

    def store(self, sender: int, kind: Kind, value: _Round1Msg) -> None:
        self.got[sender] = value

    def finalize(self) -> Next:
        cfg, g = self.cfg, self.cfg.group
        moduli = [m.aux.n for m in self.got.values()] + [self.aux.n]
        if len(set(moduli)) != len(moduli):
            # only a party that knows the factors can prove Πmod for a modulus, so every peer
            # sharing one with another party is in on it
            dup = {j for j, m in self.got.items() if moduli.count(m.aux.n) > 1}
            raise ProtocolFault(dup, "reused Paillier modulus")
        aux = {j: m.aux for j, m in self.got.items()} | {cfg.self_id: self.aux}
        commitments, chain, salt = self.decommit
        sch_tr = proof_transcript(cfg.session_id, PROTOCOL, 2, cfg.self_id, BROADCAST_VERIFIER, "schnorr-u")
        sch = schnorr.prove(
            sch_tr,
            schnorr.Statement(g, g.base_mul(self.secrets.coeffs[0])),
            schnorr.Witness(self.secrets.coeffs[0]),
            cfg.rng,
        )
        sends = [Send(None, dumps([commitments, chain, salt, schnorr.encode(g, sch)]))]
        for j in cfg.parties:
            if j == cfg.self_id:
                continue
            share = evaluate(self.secrets.coeffs, j, g.order)
            enc_share, _ = aux[j].paillier.encrypt(share, cfg.rng)
            tr = proof_transcript(cfg.session_id, PROTOCOL, 2, cfg.self_id, j, "fac")
            st = fac.Statement(self.aux.n, aux[j].pedersen)
            proof = fac.prove(tr, st, fac.Witness(self.secrets.paillier), cfg.rng)
            sends.append(Send(j, dumps([enc_share, wire.encode(proof)])))
        v_hashes = {j: m.v for j, m in self.got.items()}
        return Next(Round2(cfg, self.secrets, aux, v_hashes, chain), tuple(sends))


@dataclass(frozen=True)
class _Decommit:
    commitments: tuple[Point, ...]
    chain: bytes


class Round2(Round):
    number = 2

    def __init__(self, cfg: Config, secrets: _Secrets, aux: dict[int, AuxInfo], v: dict[int, bytes], chain: bytes):
        self.cfg, self.secrets, self.aux, self.v, self.own_chain = cfg, secrets, aux, v, chain
        self.decommits: dict[int, _Decommit] = {}
        self.shares: dict[int, int] = {}

    def expects(self) -> Expect:
        others = frozenset(p for p in self.cfg.parties if p != self.cfg.self_id)
        return Expect(broadcast=frozenset(self.cfg.parties), direct=others)

    def verify(self, sender: int, kind: Kind, body: bytes) -> _Decommit | int:
        cfg, g = self.cfg, self.cfg.group
        if kind is Kind.BROADCAST:
            r = Reader(body, 4)
            raw = r._next()
            if type(raw) is not list or not all(type(c) is bytes for c in raw):
                raise ProtocolFault(sender, "malformed commitments")
            if len(raw) != cfg.threshold:
                raise ProtocolFault(sender, "wrong number of VSS commitments")
            chain, salt, sch_raw = r.blob(32), r.blob(32), r.blob()
            try:
                commitments = tuple(g.decode(c) for c in raw)
            except InvalidEncoding as exc:
                raise ProtocolFault(sender, "invalid VSS commitment point") from exc
            opened = framed_hash(_COMMIT_TAG, cfg.session_id, sender.to_bytes(4, "big"), *raw, chain, salt)
            if not hmac.compare_digest(opened, self.v[sender]):
                raise ProtocolFault(sender, "decommitment does not open the commitment")
            proof = schnorr.decode(g, sch_raw)
            tr = proof_transcript(cfg.session_id, PROTOCOL, 2, sender, BROADCAST_VERIFIER, "schnorr-u")
            if not schnorr.verify(tr, schnorr.Statement(g, commitments[0]), proof):
                raise ProtocolFault(sender, "invalid Schnorr proof")
            return _Decommit(commitments, chain)
        r = Reader(body, 2)
        enc_share, fac_proof = r.integer(), r.proof(fac.Proof)
        own = self.secrets.paillier
        if not own.public.validate(enc_share):
            raise ProtocolFault(sender, "share ciphertext outside Z*_{N^2}")
        tr = proof_transcript(cfg.session_id, PROTOCOL, 2, sender, cfg.self_id, "fac")
        mine = self.aux[cfg.self_id]
        own_params = Params(mine.n, mine.s, mine.t, owner_key=own)
        if not fac.verify(tr, fac.Statement(self.aux[sender].n, own_params), fac_proof):
            raise ProtocolFault(sender, "invalid Πfac")
        share = own.decrypt(enc_share)
        if share >= g.order:
            raise ProtocolFault(sender, "share out of range")
        return share

    def store(self, sender: int, kind: Kind, value: _Decommit | int) -> None:
        if isinstance(value, _Decommit):
            self.decommits[sender] = value
        else:
            self.shares[sender] = value

    def finalize(self) -> Next:
        cfg, g = self.cfg, self.cfg.group
        me = cfg.self_id
        for j, share in sorted(self.shares.items()):
            if not verify_share(g, self.decommits[j].commitments, me, share):
                raise ProtocolFault(j, "share does not match the VSS commitments")
        own_commitments = commit(g, self.secrets.coeffs)
        all_commitments = {j: d.commitments for j, d in self.decommits.items()} | {me: own_commitments}
        x = (evaluate(self.secrets.coeffs, me, g.order) + sum(self.shares.values())) % g.order
        public = g.add_many([c[0] for c in all_commitments.values()])
        if g.is_identity(public):
            raise ProtocolFault(frozenset(), "degenerate public key")
        public_shares = {
            k: g.encode(g.add_many([commitment_at(g, c, k) for c in all_commitments.values()])) for k in cfg.parties
        }
        chains = {j: d.chain for j, d in self.decommits.items()} | {me: self.own_chain}
        chain_code = framed_hash(_CHAIN_TAG, cfg.session_id, *(chains[j] for j in cfg.parties))
        key_share = KeyShare(
            index=me,
            threshold=cfg.threshold,
            parties=cfg.parties,
            secret=x,
            public_key=g.encode(public),
            public_shares=public_shares,
            chain_code=chain_code,
            paillier_p=self.secrets.paillier.p,
            paillier_q=self.secrets.paillier.q,
            aux=self.aux,
        )
        tr = proof_transcript(cfg.session_id, PROTOCOL, 3, me, BROADCAST_VERIFIER, "schnorr-x")
        proof = schnorr.prove(tr, schnorr.Statement(g, g.base_mul(x)), schnorr.Witness(x), cfg.rng)
        return Next(Round3(cfg, key_share), (Send(None, schnorr.encode(g, proof)),))


class Round3(Round):
    number = 3

    def __init__(self, cfg: Config, share: KeyShare):
        self.cfg, self.share = cfg, share

    def expects(self) -> Expect:
        return Expect(broadcast=frozenset(self.cfg.parties))

    def verify(self, sender: int, kind: Kind, body: bytes) -> None:
        cfg, g = self.cfg, self.cfg.group
        proof = schnorr.decode(g, body)
        tr = proof_transcript(cfg.session_id, PROTOCOL, 3, sender, BROADCAST_VERIFIER, "schnorr-x")
        point = g.decode(self.share.public_shares[sender])
        if not schnorr.verify(tr, schnorr.Statement(g, point), proof):
            raise ProtocolFault(sender, "invalid Schnorr proof of the key share")

    def store(self, sender: int, kind: Kind, value: None) -> None:
        pass

    def finalize(self) -> Output:
        return Output(self.share)


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
) -> Driver:
    """A keygen session for this party. `primes` comes from the pre-parameter pool."""
    ids = check_party_ids(parties)
    if self_id not in ids:
        raise InvalidParameters("self is not a party")
    if not 1 <= threshold <= len(ids) or len(ids) < 2:
        raise InvalidParameters("need 2 <= parties and 1 <= threshold <= parties")
    g = group or Secp256k1Group()
    cfg = Config(bytes(session_id), self_id, ids, threshold, min_modulus_bits, g, rng)
    key = SecretKey(primes.p, primes.q)
    if key.n.bit_length() < min_modulus_bits:
        raise InvalidParameters("pre-parameters below the configured modulus size")
    params, trapdoor = ringpedersen.generate(key, rng)
    aux = AuxInfo(params.n, params.s, params.t)
    coeffs = random_polynomial(g, g.random_scalar(rng), threshold, rng)
    commitments = [g.encode(c) for c in commit(g, coeffs)]
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
    body = dumps([v, aux.n, aux.s, aux.t, wire.encode(mod_proof), wire.encode(prm_proof)])
    first = Round1(cfg, _Secrets(tuple(coeffs), key), (commitments, chain, salt), aux)
    return Driver(cfg.session_id, self_id, ids, Next(first, (Send(None, body),)), total_rounds=3)
