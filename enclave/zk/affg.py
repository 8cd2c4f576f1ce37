"""Πaff-g: the MtA respondent's D = C^x · Enc_N0(y; ρ), with Y = Enc_N1(y; ρ_y) and X = x·G
(CGGMP21 fig. 15, "Paillier affine operation with group commitment in range").

GG20's MtA (X = Γ_j, x = γ_j) and MtAwc (X = W_j, x = w_j) both use it: the group commitment
is what makes MtAwc "with check". x ∈ ±2^ℓ, y ∈ ±2^ℓ'. N0 and C belong to the verifier (the
MtA initiator), N1 and Y to the prover. The verifier checks z1 ∈ ±2^(ℓ+ε), z2 ∈ ±2^(ℓ'+ε),
C, D, A in Z*_{N0^2}, Y, B_y in Z*_{N1^2}, w a unit mod N0, w_y a unit mod N1, E, S, F, T
units mod N̂, B_x a valid point, and the four equations.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import gmpy2

from enclave.crypto.paillier import PublicKey, SecretKey, random_unit
from enclave.crypto.params import EPSILON, L_PRIME, L, in_pm, is_unit, sample_pm
from enclave.crypto.ringpedersen import Params
from enclave.crypto.rng import Rng
from enclave.crypto.transcript import Transcript
from enclave.errors import InvalidEncoding
from enclave.group.base import Element, Group


@dataclass(frozen=True)
class Statement:
    group: Group
    verifier_key: PublicKey  # N0
    prover_key: PublicKey  # N1
    c: int  # the initiator's ciphertext under N0
    d: int  # C^x (1+N0)^y ρ^N0
    y_enc: int  # Enc_N1(y; ρ_y)
    point: Element  # X = x·G
    params: Params  # the verifier's
    # The verifier's own N0 factorization, when it checks the proof: CRT speed only.
    verifier_secret: SecretKey | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Witness:
    x: int = field(repr=False)
    y: int = field(repr=False)
    rho: int = field(repr=False)
    rho_y: int = field(repr=False)
    key: SecretKey = field(repr=False)  # the prover's N1 secret key


@dataclass(frozen=True)
class Proof:
    a: int
    bx: bytes
    by: int
    e_commit: int
    s: int
    f: int
    t: int
    z1: int
    z2: int
    z3: int
    z4: int
    w: int
    wy: int


def _challenge(transcript: Transcript, st: Statement, pr: Proof | tuple[int, bytes, int, int, int, int, int]) -> int:
    if isinstance(pr, Proof):
        pr = (pr.a, pr.bx, pr.by, pr.e_commit, pr.s, pr.f, pr.t)
    a, bx, by, e_commit, s, f, t = pr
    g = st.group
    transcript.append("zk", "cggmp21/affg/v1")
    transcript.append("group", g.name)
    transcript.append("N0", st.verifier_key.n)
    transcript.append("N1", st.prover_key.n)
    transcript.append("C", st.c)
    transcript.append("D", st.d)
    transcript.append("Y", st.y_enc)
    transcript.append("X", g.encode(st.point))
    transcript.append("Nhat", st.params.n)
    transcript.append("s", st.params.s)
    transcript.append("t", st.params.t)
    transcript.append("A", a)
    transcript.append("Bx", bx)
    transcript.append("By", by)
    transcript.append("E", e_commit)
    transcript.append("S", s)
    transcript.append("F", f)
    transcript.append("T", t)
    return transcript.challenge_signed("e", g.order)


def prove(transcript: Transcript, statement: Statement, witness: Witness, rng: Rng) -> Proof:
    prm, g = statement.params, statement.group
    pk0, key1 = statement.verifier_key, witness.key
    n0, n02 = pk0.n, pk0.n2
    alpha = sample_pm(rng, 1 << (L + EPSILON))
    beta = sample_pm(rng, 1 << (L_PRIME + EPSILON))
    r = random_unit(rng, n0)
    ry = random_unit(rng, key1.n)
    gamma = sample_pm(rng, prm.n << (L + EPSILON))
    m = sample_pm(rng, prm.n << L)
    delta = sample_pm(rng, prm.n << (L + EPSILON))
    mu = sample_pm(rng, prm.n << L)
    a = int(gmpy2.powmod(statement.c, alpha, n02) * pk0.encrypt_with(beta, r) % n02)
    bx = g.encode(g.base_mul(alpha))
    by = key1.encrypt_with(beta, ry)
    e_commit = prm.commit(alpha, gamma)
    s = prm.commit(witness.x, m)
    f = prm.commit(beta, delta)
    t = prm.commit(witness.y, mu)
    e = _challenge(transcript, statement, (a, bx, by, e_commit, s, f, t))
    return Proof(
        a=a,
        bx=bx,
        by=by,
        e_commit=e_commit,
        s=s,
        f=f,
        t=t,
        z1=alpha + e * witness.x,
        z2=beta + e * witness.y,
        z3=gamma + e * m,
        z4=delta + e * mu,
        w=int(r * gmpy2.powmod(witness.rho, e, n0) % n0),
        wy=ry * key1.pow_mod_n(witness.rho_y, e) % key1.n,
    )


def verify(transcript: Transcript, statement: Statement, proof: Proof) -> bool:
    prm, g = statement.params, statement.group
    pk0, pk1 = statement.verifier_key, statement.prover_key
    if not prm.validate():
        return False
    if not all(pk0.validate(v) for v in (statement.c, statement.d, proof.a)):
        return False
    if not pk1.validate(statement.y_enc) or not pk1.validate(proof.by):
        return False
    if not is_unit(proof.w, pk0.n) or not is_unit(proof.wy, pk1.n):
        return False
    if not all(is_unit(v, prm.n) for v in (proof.e_commit, proof.s, proof.f, proof.t)):
        return False
    if not in_pm(proof.z1, 1 << (L + EPSILON)) or not in_pm(proof.z2, 1 << (L_PRIME + EPSILON)):
        return False
    try:
        bx = g.decode(proof.bx)
    except InvalidEncoding:
        return False
    e = _challenge(transcript, statement, proof)
    n02 = pk0.n2
    own = statement.verifier_secret
    if own is not None and own.n == pk0.n:
        lhs = own.pow_mod_n2(statement.c, proof.z1) * own.encrypt_with(proof.z2, proof.w) % n02
        rhs = proof.a * own.pow_mod_n2(statement.d, e) % n02
    else:
        lhs = gmpy2.powmod(statement.c, proof.z1, n02) * pk0.encrypt_with(proof.z2, proof.w) % n02
        rhs = proof.a * gmpy2.powmod(statement.d, e, n02) % n02
    if lhs != rhs:
        return False
    if not g.eq(g.base_mul(proof.z1), g.add(bx, g.mul(statement.point, e))):
        return False
    n12 = pk1.n2
    if pk1.encrypt_with(proof.z2, proof.wy) != proof.by * gmpy2.powmod(statement.y_enc, e, n12) % n12:
        return False
    if not prm.check(proof.z1, proof.z3, e, proof.e_commit, proof.s):
        return False
    return prm.check(proof.z2, proof.z4, e, proof.f, proof.t)
