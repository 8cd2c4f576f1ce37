"""Πfac: N0 = p·q with both factors larger than about 2^ℓ (CGGMP21 fig. 28, "no small factors").

This is the proof whose absence or weak range check is the BitForge attack (CVE-2023-33241):
without it a party can use N0 with many small factors and learn a peer's key from MtA
decryptions. Statement: N0 and the verifier's ring-Pedersen parameters (N̂, s, t). Witness:
p, q. The verifier checks the three Pedersen equations and that z1, z2 lie in
±√N0·2^(ℓ+ε), which bounds both factors from below; every commitment must be a unit mod N̂.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import gmpy2

from enclave.crypto.paillier import SecretKey
from enclave.crypto.params import EPSILON, L, in_pm, is_unit, sample_pm
from enclave.crypto.ringpedersen import Params
from enclave.crypto.rng import Rng
from enclave.crypto.transcript import Transcript
from enclave.group.secp256k1 import ORDER


@dataclass(frozen=True)
class Statement:
    n0: int
    params: Params  # the verifier's


@dataclass(frozen=True)
class Witness:
    key: SecretKey = field(repr=False)


@dataclass(frozen=True)
class Proof:
    p_commit: int
    q_commit: int
    a: int
    b: int
    t: int
    sigma: int
    z1: int
    z2: int
    w1: int
    w2: int
    v: int


def _sqrt_bound(n0: int) -> int:
    return int(gmpy2.isqrt(n0)) + 1


def _challenge(transcript: Transcript, st: Statement, pr: tuple[int, ...]) -> int:
    transcript.append("zk", "cggmp21/fac/v1")
    transcript.append("N0", st.n0)
    transcript.append("Nhat", st.params.n)
    transcript.append("s", st.params.s)
    transcript.append("t", st.params.t)
    transcript.append_many("commitments", pr)
    return transcript.challenge_signed("e", ORDER)


def prove(transcript: Transcript, statement: Statement, witness: Witness, rng: Rng) -> Proof:
    prm = statement.params
    nh, n0 = prm.n, statement.n0
    p, q = witness.key.p, witness.key.q
    root = _sqrt_bound(n0)
    alpha = sample_pm(rng, root << (L + EPSILON))
    beta = sample_pm(rng, root << (L + EPSILON))
    mu = sample_pm(rng, nh << L)
    nu = sample_pm(rng, nh << L)
    sigma = sample_pm(rng, (n0 * nh) << L)
    r = sample_pm(rng, (n0 * nh) << (L + EPSILON))
    x = sample_pm(rng, nh << (L + EPSILON))
    y = sample_pm(rng, nh << (L + EPSILON))
    pc = prm.commit(p, mu)
    qc = prm.commit(q, nu)
    a = prm.commit(alpha, x)
    b = prm.commit(beta, y)
    t = int(gmpy2.powmod(qc, alpha, nh) * gmpy2.powmod(prm.t, r, nh) % nh)
    e = _challenge(transcript, statement, (pc, qc, a, b, t, sigma))
    sigma_hat = sigma - nu * p
    return Proof(
        p_commit=pc,
        q_commit=qc,
        a=a,
        b=b,
        t=t,
        sigma=sigma,
        z1=alpha + e * p,
        z2=beta + e * q,
        w1=x + e * mu,
        w2=y + e * nu,
        v=r + e * sigma_hat,
    )


def verify(transcript: Transcript, statement: Statement, proof: Proof) -> bool:
    prm = statement.params
    nh, n0 = prm.n, statement.n0
    if not prm.validate() or n0 < 3:
        return False
    if not all(is_unit(v, nh) for v in (proof.p_commit, proof.q_commit, proof.a, proof.b, proof.t)):
        return False
    bound = _sqrt_bound(n0) << (L + EPSILON)
    if not in_pm(proof.z1, bound) or not in_pm(proof.z2, bound):
        return False
    e = _challenge(transcript, statement, (proof.p_commit, proof.q_commit, proof.a, proof.b, proof.t, proof.sigma))
    if not prm.check(proof.z1, proof.w1, e, proof.a, proof.p_commit):
        return False
    if not prm.check(proof.z2, proof.w2, e, proof.b, proof.q_commit):
        return False
    big_r = prm.pow(prm.s, n0) * prm.pow(prm.t, proof.sigma) % nh
    lhs = prm.pow(proof.q_commit, proof.z1) * prm.pow(prm.t, proof.v) % nh
    rhs = proof.t * prm.pow(big_r, e) % nh
    return bool(lhs == rhs)
