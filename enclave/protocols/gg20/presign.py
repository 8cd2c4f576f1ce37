"""GG20 presigning (the offline phases) with CGGMP21's proofs, four rounds.

Notation (signer set S, this party i, additive key share w_i = λ_i·x_i, W_j = λ_j·X_j):

Round 1: k_i, γ_i random. (broadcast) K_i = Enc_i(k_i), G_i = Enc_i(γ_i).
    (direct, to j) Πenc for K_i under j's ring-Pedersen parameters.
Round 2: for every j, the two MtA responses to K_j: D_{j,i} = K_j^{γ_i}·Enc_j(y) with
    F_{j,i} = Enc_i(y) and Πaff-g (X = Γ_i) (MtA), and D̂_{j,i}, F̂_{j,i} with Πaff-g
    (X = W_i) (MtAwc); Πlog* tying Γ_i to G_i. β_{i,j} = -y. (broadcast) Γ_i and the F_{j,i}
    and F̂_{j,i} (ciphertexts only; they let everyone check a reveal after a failed δ check
    and an identification after a failed χ check).
Round 3: α_{i,j} = Dec_i(D_{i,j}), δ_i = k_i·γ_i + Σ(α + β), χ_i = k_i·w_i + Σ(α̂ + β̂),
    Γ = ΣΓ_j, Δ_i = k_i·Γ. (broadcast) δ_i, Δ_i, Ŝ_i = χ_i·Γ. (direct) Πlog* tying Δ_i to K_i
    with base Γ (the R check).
Round 4: both checks run on the round-3 broadcasts, so every honest party takes the same
    branch. (broadcast) "ok"; or after a failed δ check δ·G != ΣΔ_j, the reveal of k_i, γ_i,
    their encryption randomness and the MtA masks y of the k·γ MtA (with F's randomness). A
    reveal discloses nothing about the key (the k·w MtA is never revealed) and that
    presignature is dead anyway. Everyone recomputes every δ_j; a party whose reveal does not
    open its ciphertexts, or whose δ_j differs from what its reveal implies, is named.
    Or, after a failed χ check ΣŜ_j != δ·Y (δ passed), the identification (modelled on CGGMP21's
    Πmul*/Πdec step, kept in the exponent because χ_i is secret): T_{i,j} = w_i·Δ_j for every signer j
    with a Chaum–Pedersen proof (enclave.zk.dleq) against W_i, and Y_{i,j} = ŷ_{i→j}·Γ for the
    MtAwc mask in F̂_{j,i} with Πdec in the exponent (enclave.zk.dec) for each verifier. Since
    α̂_{i,j} ≡ k_i·w_j + ŷ_{j→i}, every party checks Ŝ_i + Σ_j Y_{i,j} = Σ_j T_{j,i} + Σ_j Y_{j,i}
    for each i and names every i that fails; a party whose proof fails is named by that proof's
    verifier. The identification is computed only on this branch: the honest path costs what
    it did.

Output: R = δ^{-1}·Γ (so R = k^{-1}·G), and for every signer R_j = δ^{-1}·Δ_j = k_j·R and
S_j = δ^{-1}·Ŝ_j = χ_j·R, which let the online round check each signature share on its own.
The presignature is made for the child key of `path` (non-hardened BIP32, tweak τ; empty: the
key itself), fixed here, before R exists (CVE-2025-66017): the output χ_i is χ_i + τ·k_i and
S_j is S_j + τ·R_j, so Σχ_i = k·(x + τ). τ is public, so this changes no check above.

Start: `start(session_id, share, signers, rng, path=())`; `Output.value` is a `Presignature`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

import gmpy2

from enclave.crypto.paillier import random_unit
from enclave.crypto.params import L_PRIME, sample_pm
from enclave.crypto.polynomial import lagrange_coefficient
from enclave.crypto.rng import Rng
from enclave.crypto.transcript import Transcript
from enclave.errors import BadInput, InvalidParameters, ProtocolFault
from enclave.group.secp256k1 import Point, Secp256k1Group
from enclave.protocols.driver import Abort, Driver, Expect, Next, Output, Round, Send
from enclave.protocols.gg20.bip32 import derive
from enclave.protocols.gg20.common import BROADCAST_VERIFIER, check_party_ids, proof_transcript
from enclave.protocols.gg20.keyshare import KeyShare
from enclave.protocols.gg20.presignature import MAX_PATH_DEPTH, Presignature
from enclave.zk import affg, dec, dleq, enc, logstar, wire
from enclave.zk.wire import CborReader

PROTOCOL = "gg20/presign"


@dataclass(frozen=True)
class PresignSetup:
    """What every round of one presign session knows: the key share, the signers, the path."""

    session_id: bytes
    share: KeyShare = field(repr=False)
    signers: tuple[int, ...]
    group: Secp256k1Group
    rng: Rng = field(repr=False)
    path: tuple[int, ...] = ()
    tweak: int = 0  # BIP32 tweak of `path`: the child key is Y + τ·G
    child_key: bytes = b""  # compressed child public key

    @property
    def me(self) -> int:
        return self.share.index

    @property
    def others(self) -> tuple[int, ...]:
        return tuple(j for j in self.signers if j != self.share.index)


def _t(cfg: PresignSetup, round_no: int, prover: int, verifier: int, proof: str) -> Transcript:
    return proof_transcript(cfg.session_id, PROTOCOL, round_no, prover, verifier, proof)


@dataclass(frozen=True)
class _Nonces:
    k: int = field(repr=False)
    rho: int = field(repr=False)
    gamma: int = field(repr=False)
    nu: int = field(repr=False)
    w: int = field(repr=False)


@dataclass(frozen=True)
class _OwnNonces:
    """Round 1's carry: this party's nonces and their encryptions K_i = Enc_i(k_i), G_i = Enc_i(γ_i)."""

    setup: PresignSetup
    nonces: _Nonces = field(repr=False)
    k_enc: int
    g_enc: int


class Round1(Round[tuple[int, int], None]):
    number = 1

    def __init__(self, carry: _OwnNonces) -> None:
        self.c = carry
        me = carry.setup.me
        self.k_enc: dict[int, int] = {me: carry.k_enc}
        self.g_enc: dict[int, int] = {me: carry.g_enc}

    def expects(self) -> Expect:
        cfg = self.c.setup
        return Expect(broadcast=frozenset(cfg.signers), direct=frozenset(cfg.others))

    def verify_broadcast(self, sender: int, body: bytes) -> tuple[int, int]:
        """[K_j, G_j]: both in Z*_{N_j^2}. Blames the sender."""
        r = CborReader(body, 2)
        k_c, g_c = r.integer(), r.integer()
        pk = self.c.setup.share.aux[sender].paillier
        if not pk.validate(k_c) or not pk.validate(g_c):
            raise ProtocolFault(sender, "ciphertext outside Z*_{N^2}")
        return k_c, g_c

    def store_broadcast(self, sender: int, value: tuple[int, int]) -> None:
        self.k_enc[sender], self.g_enc[sender] = value

    def verify_direct(self, sender: int, body: bytes) -> None:
        """Πenc for the sender's K_j (its broadcast of this round) under this party's
        ring-Pedersen parameters. Blames the sender."""
        cfg = self.c.setup
        share = cfg.share
        proof = wire.decode(enc.Proof, body)
        st_enc = enc.Statement(share.aux[sender].paillier, self.k_enc[sender], share.own_pedersen)
        if not enc.verify(_t(cfg, 1, sender, cfg.me, "enc"), st_enc, proof):
            raise ProtocolFault(sender, "invalid Πenc for Enc(k)")

    def store_direct(self, sender: int, value: None) -> None:
        pass

    def finalize(self) -> Next:
        """Computes nothing to check; makes round 2: for each peer j the MtA (k_j·γ_i) and
        MtAwc (k_j·w_i) responses with Πaff-g, Πlog* tying Γ_i to G_i, and the broadcast
        Γ_i, F_{j,i}, F̂_{j,i}."""
        cfg = self.c.setup
        g, share = cfg.group, cfg.share
        me, own_key = cfg.me, share.paillier
        n = self.c.nonces
        big_gamma = g.base_mul(n.gamma)
        big_w = g.base_mul(n.w)
        masks: dict[int, tuple[int, int]] = {}  # j -> (y, randomness of F_{j,i})
        masks_hat: dict[int, tuple[int, int]] = {}  # j -> (ŷ, randomness of F̂_{j,i})
        beta = beta_hat = 0
        f_broadcast: dict[int, int] = {}
        f_hat_broadcast: dict[int, int] = {}
        sends: list[Send] = []
        for j in cfg.others:
            pk_j, params_j = share.aux[j].paillier, share.aux[j].pedersen
            parts: list[object] = []
            for x, big_x, label in ((n.gamma, big_gamma, "affg-gamma"), (n.w, big_w, "affg-w")):
                y = sample_pm(cfg.rng, 1 << L_PRIME)
                s = random_unit(cfg.rng, pk_j.n)
                d = int(gmpy2.powmod(self.k_enc[j], x, pk_j.n2) * pk_j.encrypt_with(y, s) % pk_j.n2)
                f, r = own_key.encrypt(y, cfg.rng)
                st = affg.Statement(g, pk_j, own_key.public, self.k_enc[j], d, f, big_x, params_j)
                proof = affg.prove(_t(cfg, 2, me, j, label), st, affg.Witness(x, y, s, r, own_key), cfg.rng)
                parts += [d, f, wire.encode(proof)]
                if label == "affg-gamma":
                    masks[j] = (y, r)
                    f_broadcast[j] = f
                    beta -= y
                else:
                    masks_hat[j] = (y, r)
                    f_hat_broadcast[j] = f
                    beta_hat -= y
            st_log = logstar.Statement(g, g.generator(), big_gamma, own_key.public, self.g_enc[me], params_j)
            proof_log = logstar.prove(
                _t(cfg, 2, me, j, "logstar-gamma"), st_log, logstar.Witness(n.gamma, n.nu, own_key), cfg.rng
            )
            # F and F̂ travel in the broadcast (everyone needs them to identify a culprit after a
            # failed δ or χ check); the direct copies are dropped
            sends.append(Send(j, wire.dumps([parts[0], parts[2], parts[3], parts[5], wire.encode(proof_log)])))
        sends.insert(0, Send(None, wire.dumps([g.encode(big_gamma), f_broadcast, f_hat_broadcast])))
        carry = _MtaSent(
            cfg,
            n,
            dict(self.k_enc),
            dict(self.g_enc),
            big_gamma,
            _Masks(masks, masks_hat),
            beta,
            beta_hat,
            f_broadcast,
            f_hat_broadcast,
        )
        return Next(Round2(carry), tuple(sends))


@dataclass(frozen=True)
class _Masks:
    # This party's MtA masks (y, randomness of F_{j,i}) per peer j: `gamma` for the k·γ MtA
    # (revealed after a failed δ check), `w` for the k·w MtAwc (never revealed; only y·Γ is
    # shown, with Πdec, after a failed χ check).
    gamma: dict[int, tuple[int, int]] = field(repr=False)
    w: dict[int, tuple[int, int]] = field(repr=False)


@dataclass(frozen=True)
class _R2Direct:
    d: int
    d_hat: int


@dataclass(frozen=True)
class _MtaSent:
    """Round 2's carry: this party's nonces, every signer's K and G, this party's Γ_i, MtA
    masks and β sums, and the F_{j,i}, F̂_{j,i} it broadcast."""

    setup: PresignSetup
    nonces: _Nonces = field(repr=False)
    k_enc: dict[int, int]
    g_enc: dict[int, int]
    big_gamma: Point
    masks: _Masks = field(repr=False)
    beta: int = field(repr=False)
    beta_hat: int = field(repr=False)
    f: dict[int, int]
    f_hat: dict[int, int]


class Round2(Round[tuple[Point, dict[int, int], dict[int, int]], _R2Direct]):
    number = 2

    def __init__(self, carry: _MtaSent) -> None:
        self.c = carry
        me = carry.setup.me
        self.gammas: dict[int, Point] = {me: carry.big_gamma}
        self.f: dict[int, dict[int, int]] = {me: carry.f}
        self.f_hat: dict[int, dict[int, int]] = {me: carry.f_hat}
        self.direct: dict[int, _R2Direct] = {}

    def expects(self) -> Expect:
        cfg = self.c.setup
        return Expect(broadcast=frozenset(cfg.signers), direct=frozenset(cfg.others))

    def verify_broadcast(self, sender: int, body: bytes) -> tuple[Point, dict[int, int], dict[int, int]]:
        """[Γ_j, F, F̂]: Γ_j a valid point; F and F̂ maps keyed by every other signer, each
        value a ciphertext in Z*_{N_j^2}. Blames the sender."""
        cfg, g = self.c.setup, self.c.setup.group
        r = CborReader(body, 3)
        big_gamma = r.point(g)
        f, f_hat = r.int_map(), r.int_map()
        pk = cfg.share.aux[sender].paillier
        for m in (f, f_hat):
            if set(m) != set(cfg.signers) - {sender} or not all(type(v) is int for v in m.values()):
                raise ProtocolFault(sender, "malformed MtA ciphertext map")
            if not all(pk.validate(v) for v in m.values()):
                raise ProtocolFault(sender, "ciphertext outside Z*_{N^2}")
        return big_gamma, f, f_hat

    def store_broadcast(self, sender: int, value: tuple[Point, dict[int, int], dict[int, int]]) -> None:
        self.gammas[sender], self.f[sender], self.f_hat[sender] = value

    def verify_direct(self, sender: int, body: bytes) -> _R2Direct:
        """[D, Πaff-g, D̂, Πaff-g, Πlog*]: D, D̂ in Z*_{N_i^2}; Πlog* tying the sender's Γ_j to
        its G_j; Πaff-g for D against K_i, F_{i,j} and Γ_j (MtA); Πaff-g for D̂ against K_i,
        F̂_{i,j} and W_j (MtAwc). F, F̂ and Γ_j come from the sender's broadcast of this
        round. Blames the sender."""
        cfg, g, share = self.c.setup, self.c.setup.group, self.c.setup.share
        me, own_key = cfg.me, share.paillier
        r = CborReader(body, 5)
        d, pa, d_hat, pw, pl = (
            r.integer(),
            r.proof(affg.Proof),
            r.integer(),
            r.proof(affg.Proof),
            r.proof(logstar.Proof),
        )
        if not own_key.public.validate(d) or not own_key.public.validate(d_hat):
            raise ProtocolFault(sender, "ciphertext outside Z*_{N^2}")
        my_params, k_enc = share.own_pedersen, self.c.k_enc
        pk_j = share.aux[sender].paillier
        st_log = logstar.Statement(g, g.generator(), self.gammas[sender], pk_j, self.c.g_enc[sender], my_params)
        if not logstar.verify(_t(cfg, 2, sender, me, "logstar-gamma"), st_log, pl):
            raise ProtocolFault(sender, "invalid Πlog* for Γ")
        st = affg.Statement(
            g, own_key.public, pk_j, k_enc[me], d, self.f[sender][me], self.gammas[sender], my_params, own_key
        )
        if not affg.verify(_t(cfg, 2, sender, me, "affg-gamma"), st, pa):
            raise ProtocolFault(sender, "invalid Πaff-g (MtA)")
        w_j = g.mul(g.decode(share.public_shares[sender]), _lagrange(cfg, sender))
        st = affg.Statement(g, own_key.public, pk_j, k_enc[me], d_hat, self.f_hat[sender][me], w_j, my_params, own_key)
        if not affg.verify(_t(cfg, 2, sender, me, "affg-w"), st, pw):
            raise ProtocolFault(sender, "invalid Πaff-g (MtAwc)")
        return _R2Direct(d, d_hat)

    def store_direct(self, sender: int, value: _R2Direct) -> None:
        self.direct[sender] = value

    def finalize(self) -> Next:
        """α, α̂ from D, D̂; Γ = ΣΓ_j (the identity aborts naming nobody); δ_i, χ_i, Δ_i = k_i·Γ,
        Ŝ_i = χ_i·Γ; sends them with Πlog* tying Δ_i to K_i (base Γ) to each peer."""
        c = self.c
        cfg, g, share = c.setup, c.setup.group, c.setup.share
        me, own_key = cfg.me, share.paillier
        q = g.order
        n = c.nonces
        alpha = alpha_hat = 0
        for j in cfg.others:
            m = self.direct[j]
            alpha += own_key.decrypt_signed(m.d)
            alpha_hat += own_key.decrypt_signed(m.d_hat)
        big_gamma = g.add_many(list(self.gammas.values()))
        if g.is_identity(big_gamma):
            raise ProtocolFault(frozenset(), "degenerate Γ")
        delta = (n.k * n.gamma + alpha + c.beta) % q
        chi = (n.k * n.w + alpha_hat + c.beta_hat) % q
        big_delta = g.mul(big_gamma, n.k)
        s_hat = g.mul(big_gamma, chi)
        sends = [Send(None, wire.dumps([g.encode_scalar(delta), g.encode(big_delta), g.encode(s_hat)]))]
        for j in cfg.others:
            st_log = logstar.Statement(g, big_gamma, big_delta, own_key.public, c.k_enc[me], share.aux[j].pedersen)
            proof = logstar.prove(
                _t(cfg, 3, me, j, "logstar-delta"), st_log, logstar.Witness(n.k, n.rho, own_key), cfg.rng
            )
            sends.append(Send(j, wire.encode(proof)))
        carry = _MtaDone(
            cfg,
            n,
            c.k_enc,
            c.g_enc,
            self.gammas,
            big_gamma,
            self.f,
            self.f_hat,
            c.masks,
            chi,
            (delta, big_delta, s_hat),
        )
        return Next(Round3(carry), tuple(sends))


def _lagrange(cfg: PresignSetup, j: int) -> int:
    return lagrange_coefficient(cfg.group.order, j, cfg.signers)


@dataclass(frozen=True)
class _MtaDone:
    """Round 3's carry: everything round 4 may need to check or identify after the MtA: every
    signer's K, G, Γ_j, F, F̂; Γ; this party's nonces, masks, χ_i and round-3 broadcast
    (δ_i, Δ_i, Ŝ_i)."""

    setup: PresignSetup
    nonces: _Nonces = field(repr=False)
    k_enc: dict[int, int]
    g_enc: dict[int, int]
    gammas: dict[int, Point]
    big_gamma: Point
    f: dict[int, dict[int, int]]  # F_{j,i} broadcast by i, keyed f[i][j]
    f_hat: dict[int, dict[int, int]]  # F̂_{j,i} broadcast by i, keyed f_hat[i][j]
    masks: _Masks = field(repr=False)
    chi: int = field(repr=False)
    own: tuple[int, Point, Point]


class Round3(Round[tuple[int, Point, Point], None]):
    number = 3

    def __init__(self, carry: _MtaDone) -> None:
        self.c = carry
        self.pub: dict[int, tuple[int, Point, Point]] = {carry.setup.me: carry.own}

    def expects(self) -> Expect:
        cfg = self.c.setup
        return Expect(broadcast=frozenset(cfg.signers), direct=frozenset(cfg.others))

    def verify_broadcast(self, sender: int, body: bytes) -> tuple[int, Point, Point]:
        """[δ_j, Δ_j, Ŝ_j]: a canonical scalar and two valid points. Blames the sender."""
        g = self.c.setup.group
        r = CborReader(body, 3)
        return g.decode_scalar(r.blob(32)), r.point(g), r.point(g)

    def store_broadcast(self, sender: int, value: tuple[int, Point, Point]) -> None:
        self.pub[sender] = value

    def verify_direct(self, sender: int, body: bytes) -> None:
        """Πlog* tying the sender's Δ_j (its broadcast of this round) to K_j, base Γ, under
        this party's ring-Pedersen parameters. Blames the sender."""
        c = self.c
        cfg, g, share = c.setup, c.setup.group, c.setup.share
        proof = wire.decode(logstar.Proof, body)
        st = logstar.Statement(
            g, c.big_gamma, self.pub[sender][1], share.aux[sender].paillier, c.k_enc[sender], share.own_pedersen
        )
        if not logstar.verify(_t(cfg, 3, sender, cfg.me, "logstar-delta"), st, proof):
            raise ProtocolFault(sender, "invalid Πlog* for Δ")

    def store_direct(self, sender: int, value: None) -> None:
        pass

    def finalize(self) -> Next:
        """Runs the δ and χ checks (`_decide`) and sends this party's round-4 broadcast."""
        return self._decide()

    def _decide(self) -> Next:
        """δ check δ·G = ΣΔ_j (δ ≠ 0); then χ check ΣŜ_j = δ·Y. Both use only round-3
        broadcasts, so every honest party reaches the same verdict (the round-4 echoes confirm
        the broadcasts agreed)."""
        c = self.c
        cfg, g = c.setup, c.setup.group
        q = g.order
        delta = sum(v[0] for v in self.pub.values()) % q
        delta_ok = delta != 0 and g.eq(g.base_mul(delta), g.add_many([v[1] for v in self.pub.values()]))
        if not delta_ok:
            n = c.nonces
            masks = {j: [y, r] for j, (y, r) in sorted(c.masks.gamma.items())}
            body = wire.dumps([1, n.k, n.rho, n.gamma, n.nu, masks])
            return Next(Round4(_Decision(c, self.pub, _Verdict.REVEAL, None)), (Send(None, body),))
        chi_sum = g.add_many([v[2] for v in self.pub.values()])
        if g.eq(chi_sum, g.mul(g.decode(cfg.share.public_key), delta)):
            return Next(Round4(_Decision(c, self.pub, _Verdict.OK, delta)), (Send(None, wire.dumps([0])),))
        body, own = identification(cfg, c, self.pub)
        return Next(Round4(_Decision(c, self.pub, _Verdict.IDENTIFY, delta, own)), (Send(None, body),))


@dataclass(frozen=True)
class _Reveal:
    # A peer's presign nonces, disclosed only to identify a culprit after a failed δ check;
    # still kept out of reprs so a traceback never prints them.
    k: int = field(repr=False)
    rho: int = field(repr=False)
    gamma: int = field(repr=False)
    nu: int = field(repr=False)
    masks: dict[int, tuple[int, int]] = field(repr=False)


class _Verdict(Enum):
    OK = 0  # both checks passed: round 4 is an empty "ok" and the output follows
    REVEAL = 1  # δ check failed: every party reveals its k·γ MtA inputs
    IDENTIFY = 2  # χ check failed: every party publishes its identification values with proofs


@dataclass(frozen=True)
class _Ident:
    """One party i's identification after a failed χ check: T[j] = w_i·Δ_j for every signer j
    (with a Chaum–Pedersen proof against W_i) and Y[j] = ŷ_{i→j}·Γ for every other signer j, the
    MtAwc mask i encrypted in F̂_{j,i} (with Πdec against that F̂, for this verifier)."""

    t: dict[int, Point]
    y: dict[int, Point]


def _w_point(cfg: PresignSetup, j: int) -> Point:
    g = cfg.group
    return g.mul(g.decode(cfg.share.public_shares[j]), _lagrange(cfg, j))


def _t_ident(cfg: PresignSetup, prover: int, verifier: int, proof: str, counterparty: int) -> Transcript:
    t = _t(cfg, 4, prover, verifier, proof)
    t.append("counterparty", counterparty)
    return t


def identification(cfg: PresignSetup, c: _MtaDone, pub: dict[int, tuple[int, Point, Point]]) -> tuple[bytes, _Ident]:
    """This party's round-4 broadcast after a failed χ check, and its own values.

    Body: [2, {j: T_j}, {j: Chaum–Pedersen proof}, {j: Y_j}, {v: {j: Πdec proof for verifier v}}]. What it
    discloses (w_i·Δ_j, ŷ·Γ) is about a presignature that is never used: w_i·Δ_j is w_i·(k_j·Γ)
    for the random Γ of this session, which a simulator that knows γ writes as (k_j·γ)·W_i; ŷ·Γ
    is a masked value in the exponent. No key share, k or χ leaves the enclave."""
    g, share, n = cfg.group, cfg.share, c.nonces
    me, own = cfg.me, share.paillier
    big_w = _w_point(cfg, me)
    t_pts = {j: g.mul(pub[j][1], n.w) for j in cfg.signers}
    y_pts = {j: g.mul(c.big_gamma, y) for j, (y, _r) in c.masks.w.items()}
    t_proofs = {}
    for j in cfg.signers:
        st = dleq.Statement(g, pub[j][1], big_w, t_pts[j])
        t_proofs[j] = wire.encode(
            dleq.prove(_t_ident(cfg, me, BROADCAST_VERIFIER, "dleq", j), st, dleq.Witness(n.w), cfg.rng)
        )
    dec_proofs: dict[int, dict[int, bytes]] = {}
    for v in cfg.others:
        params_v = share.aux[v].pedersen
        per: dict[int, bytes] = {}
        for j, (y, r) in sorted(c.masks.w.items()):
            st_dec = dec.Statement(g, c.big_gamma, y_pts[j], own.public, c.f_hat[me][j], params_v, L_PRIME)
            per[j] = wire.encode(dec.prove(_t_ident(cfg, me, v, "dec", j), st_dec, dec.Witness(y, r, own), cfg.rng))
        dec_proofs[v] = per
    body = wire.dumps(
        [
            2,
            {j: g.encode(p) for j, p in sorted(t_pts.items())},
            t_proofs,
            {j: g.encode(p) for j, p in sorted(y_pts.items())},
            dec_proofs,
        ]
    )
    return body, _Ident(t_pts, y_pts)


@dataclass(frozen=True)
class _Decision:
    """Round 4's carry: round 3's carry, every signer's round-3 broadcast, the branch every
    honest party took on it, δ (None after a failed δ check) and, when identifying, this
    party's own identification values."""

    mta: _MtaDone
    pub: dict[int, tuple[int, Point, Point]]
    verdict: _Verdict
    delta: int | None
    own_ident: _Ident | None = None


class Round4(Round[_Reveal | _Ident | None, None]):
    number = 4

    def __init__(self, carry: _Decision) -> None:
        self.cfg, self.c, self.pub = carry.mta.setup, carry.mta, carry.pub
        self.verdict, self.delta = carry.verdict, carry.delta
        self.reveals: dict[int, _Reveal | None] = {}
        self.idents: dict[int, _Ident] = {}
        if carry.own_ident is not None:
            self.idents[self.cfg.me] = carry.own_ident

    def expects(self) -> Expect:
        return Expect(broadcast=frozenset(self.cfg.signers))

    def verify_broadcast(self, sender: int, body: bytes) -> _Reveal | _Ident | None:
        """OK: the body is exactly [0]. REVEAL: [1, k, ρ, γ, ν, masks] (opened in finalize).
        IDENTIFY: the shape of `identification`'s body, every point valid, and every proof for
        this verifier: Chaum–Pedersen for each T_j against W_sender and Δ_j, Πdec for each Y_j against
        F̂ that sender broadcast for j (range ℓ', this party's ring-Pedersen parameters).
        Blames the sender."""
        if self.verdict is _Verdict.OK:
            CborReader(body, 1)
            if body != wire.dumps([0]):
                raise ProtocolFault(sender, "unexpected reveal")
            return None
        if self.verdict is _Verdict.IDENTIFY:
            return self._verify_ident(sender, body)
        r = CborReader(body, 6)
        if r.integer() != 1:
            raise ProtocolFault(sender, "missing reveal after a failed δ check")
        k, rho, gamma, nu = r.integer(), r.integer(), r.integer(), r.integer()
        raw = r.int_map()
        masks: dict[int, tuple[int, int]] = {}
        for j, v in raw.items():
            if type(v) is not list or len(v) != 2 or not all(type(x) is int for x in v):
                raise ProtocolFault(sender, "malformed reveal")
            masks[j] = (v[0], v[1])
        return _Reveal(k, rho, gamma, nu, masks)

    def _verify_ident(self, sender: int, body: bytes) -> _Ident:
        cfg, g, c = self.cfg, self.cfg.group, self.c
        if body == wire.dumps([0]):
            raise ProtocolFault(sender, "missing identification after a failed χ check")
        r = CborReader(body, 5)
        if r.integer() != 2:
            raise ProtocolFault(sender, "missing identification after a failed χ check")
        everyone, others = set(cfg.signers), set(cfg.signers) - {sender}
        t_raw, t_proofs, y_raw, dec_all = r.int_map(), r.int_map(), r.int_map(), r.int_map()
        mine = dec_all.get(cfg.me)
        if (
            set(t_raw) != everyone
            or set(t_proofs) != everyone
            or set(y_raw) != others
            or set(dec_all) != others
            or type(mine) is not dict
            or set(mine) != others
        ):
            raise ProtocolFault(sender, "malformed identification")
        values = list(t_raw.values()) + list(t_proofs.values()) + list(y_raw.values()) + list(mine.values())
        if not all(type(v) is bytes for v in values):
            raise ProtocolFault(sender, "malformed identification")
        t_pts = {j: g.decode(v) for j, v in t_raw.items()}
        y_pts = {j: g.decode(v) for j, v in y_raw.items()}
        big_w = _w_point(cfg, sender)
        for j in cfg.signers:
            st = dleq.Statement(g, self.pub[j][1], big_w, t_pts[j])
            if not dleq.verify(
                _t_ident(cfg, sender, BROADCAST_VERIFIER, "dleq", j), st, wire.decode(dleq.Proof, t_proofs[j])
            ):
                raise ProtocolFault(sender, "invalid DLEQ proof for w·Δ")
        pk, my_params = cfg.share.aux[sender].paillier, cfg.share.own_pedersen
        for j in sorted(others):
            st_dec = dec.Statement(g, c.big_gamma, y_pts[j], pk, c.f_hat[sender][j], my_params, L_PRIME)
            if not dec.verify(_t_ident(cfg, sender, cfg.me, "dec", j), st_dec, wire.decode(dec.Proof, mine[j])):
                raise ProtocolFault(sender, "invalid Πdec for the MtAwc mask")
        return _Ident(t_pts, y_pts)

    def store_broadcast(self, sender: int, value: _Reveal | _Ident | None) -> None:
        if isinstance(value, _Ident):
            self.idents[sender] = value
        else:
            self.reveals[sender] = value

    def finalize(self) -> Output | Abort:
        """REVEAL: `_blame`; IDENTIFY: `_identify`; OK: R = δ^{-1}·Γ (an x-coordinate ≥ q
        aborts naming nobody), R_j, S_j (tweaked for the path) and the presignature."""
        if self.verdict is _Verdict.REVEAL:
            return self._blame()
        if self.verdict is _Verdict.IDENTIFY:
            return self._identify()
        cfg, g, share, c = self.cfg, self.cfg.group, self.cfg.share, self.c
        q = g.order
        assert self.delta is not None
        d_inv = pow(self.delta, -1, q)
        big_r = g.mul(c.big_gamma, d_inv)
        big_s = {j: g.mul(v[2], d_inv) for j, v in self.pub.items()}
        if g.x_coordinate(big_r) >= q:
            return Abort(frozenset(), "degenerate R")
        r_shares = {j: g.mul(v[1], d_inv) for j, v in sorted(self.pub.items())}
        if cfg.tweak:  # for the child key: χ_j + τ·k_j, so S_j + τ·R_j
            big_s = {j: g.add(p, g.mul(r_shares[j], cfg.tweak)) for j, p in big_s.items()}
        presig = Presignature(
            presign_id=cfg.session_id,
            key_id=share.key_id,
            index=cfg.me,
            signers=cfg.signers,
            r_point=g.encode(big_r),
            k=c.nonces.k,
            chi=(c.chi + cfg.tweak * c.nonces.k) % q,
            r_shares={j: g.encode(p) for j, p in r_shares.items()},
            s_shares={j: g.encode(p) for j, p in sorted(big_s.items())},
            derivation_path=cfg.path,
            public_key=cfg.child_key,
        )
        return Output(presig)

    def _identify(self) -> Abort:
        """χ_i = k_i·w_i + Σ_j (α̂_{i,j} - ŷ_{i→j}) with α̂_{i,j} ≡ k_i·w_j + ŷ_{j→i} (mod q) (the
        Πaff-g party i checked in round 2), so for every signer i
            Ŝ_i + Σ_{j≠i} Y_{i,j} = Σ_j T_{j,i} + Σ_{j≠i} Y_{j,i},
        every term fixed by a verified proof. A party whose Ŝ_i breaks it is named; summed over
        i the equations give ΣŜ_i = k·x·Γ = δ·Y, so a failed χ check always names someone."""
        cfg, g = self.cfg, self.cfg.group
        ids = self.idents
        culprits = set()
        for i in cfg.signers:
            others = [j for j in cfg.signers if j != i]
            lhs = g.add_many([self.pub[i][2]] + [ids[i].y[j] for j in others])
            rhs = g.add_many([ids[j].t[i] for j in cfg.signers] + [ids[j].y[i] for j in others])
            if not g.eq(lhs, rhs):
                culprits.add(i)
        if not culprits:
            return Abort(frozenset(), "χ consistency check failed (not attributable)")
        return Abort(frozenset(culprits), "inconsistent χ share")

    def _blame(self) -> Abort:
        cfg, g, share, c = self.cfg, self.cfg.group, self.cfg.share, self.c
        q = g.order
        reveals: dict[int, _Reveal] = {}
        culprits: set[int] = set()
        own = c.nonces
        reveals[cfg.me] = _Reveal(own.k, own.rho, own.gamma, own.nu, dict(c.masks.gamma))
        for j, rv in self.reveals.items():
            if rv is not None:
                reveals[j] = rv
        for j in cfg.signers:
            rv = reveals.get(j)
            pk = share.aux[j].paillier
            if (
                rv is None
                or set(rv.masks) != set(cfg.signers) - {j}
                or not 0 <= rv.k < q
                or not 0 <= rv.gamma < q
                or not (0 < rv.rho < pk.n and 0 < rv.nu < pk.n)
                or pk.encrypt_with(rv.k, rv.rho) != c.k_enc[j]
                or pk.encrypt_with(rv.gamma, rv.nu) != c.g_enc[j]
                or not g.eq(g.base_mul(rv.gamma), c.gammas[j])
                or any(not 0 < r < pk.n or pk.encrypt_with(y, r) != c.f[j][o] for o, (y, r) in rv.masks.items())
            ):
                culprits.add(j)
        if culprits:
            return Abort(frozenset(culprits), "reveal does not open the committed values")
        gamma = sum(rv.gamma for rv in reveals.values()) % q
        for j in cfg.signers:
            expected = reveals[j].k * gamma
            for o in cfg.signers:
                if o != j:
                    expected += reveals[o].masks[j][0] - reveals[j].masks[o][0]
            if expected % q != self.pub[j][0]:
                culprits.add(j)
        return Abort(frozenset(culprits), "inconsistent δ share")


def start(
    session_id: bytes,
    share: KeyShare,
    signers: Sequence[int],
    rng: Rng,
    *,
    path: Sequence[int] = (),
    group: Secp256k1Group | None = None,
) -> Driver:
    """A presign session for this party over `signers` (at least `threshold` parties), for the
    child key of the non-hardened BIP32 `path` (BadInput for a hardened or invalid one)."""
    ids = check_party_ids(signers)
    if not set(ids) <= set(share.parties) or share.index not in ids:
        raise InvalidParameters("signers must be parties of the key and include this party")
    if len(ids) < share.threshold:
        raise InvalidParameters("fewer signers than the threshold")
    g = group or Secp256k1Group()
    if len(path) > MAX_PATH_DEPTH:
        raise BadInput(f"derivation path of more than {MAX_PATH_DEPTH} levels")
    child = derive(g, share.public_point(g), share.chain_code, tuple(path))
    cfg = PresignSetup(bytes(session_id), share, ids, g, rng, tuple(path), child.tweak, g.encode(child.public_key))
    own = share.paillier
    k, gamma = g.random_scalar(rng), g.random_scalar(rng)
    k_enc, rho = own.encrypt(k, rng)
    g_enc, nu = own.encrypt(gamma, rng)
    nonces = _Nonces(k, rho, gamma, nu, share.additive_share(ids, g.order))
    sends = [Send(None, wire.dumps([k_enc, g_enc]))]
    for j in cfg.others:
        st = enc.Statement(own.public, k_enc, share.aux[j].pedersen)
        proof = enc.prove(_t(cfg, 1, cfg.me, j, "enc"), st, enc.Witness(k, rho, own), rng)
        sends.append(Send(j, wire.encode(proof)))
    return Driver(
        cfg.session_id, cfg.me, ids, Next(Round1(_OwnNonces(cfg, nonces, k_enc, g_enc)), tuple(sends)), total_rounds=4
    )
