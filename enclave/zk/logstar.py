"""Πlog*: C = Enc_N0(x; ρ) and X = x·g for the same x ∈ ±2^ℓ (CGGMP21 fig. 25).

Used for GG20's Γ check (Γ_i = γ_i·G against G_i = Enc(γ_i)) and R check
(Δ_i = k_i·Γ against K_i = Enc(k_i)). Statement: group, base g, X, the prover's Paillier key,
C, the verifier's ring-Pedersen parameters. The verifier checks z1 ∈ ±2^(ℓ+ε), C and A in
Z*_{N0^2}, z2 a unit mod N0, S and D units mod N̂, Y a valid non-identity point, and the
three equations.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import gmpy2

from enclave.crypto.paillier import PublicKey, SecretKey, random_unit
from enclave.crypto.params import EPSILON, L, in_pm, is_unit, sample_pm
from enclave.crypto.ringpedersen import Params
from enclave.crypto.rng import Rng
from enclave.crypto.transcript import Transcript
from enclave.errors import InvalidEncoding
from enclave.group.base import Element, Group


@dataclass(frozen=True)
class Statement:
    group: Group
    base: Element
    point: Element  # X = x·base
    prover_key: PublicKey
    ciphertext: int
    params: Params  # the verifier's


@dataclass(frozen=True)
class Witness:
    x: int = field(repr=False)
    rho: int = field(repr=False)
    key: SecretKey = field(repr=False)


@dataclass(frozen=True)
class Proof:
    s: int
    a: int
    y: bytes
    d: int
    z1: int
    z2: int
    z3: int


def _challenge(transcript: Transcript, st: Statement, s: int, a: int, y: bytes, d: int) -> int:
    g = st.group
    transcript.append("zk", "cggmp21/logstar/v1")
    transcript.append("group", g.name)
    transcript.append("g", g.encode(st.base))
    transcript.append("X", g.encode(st.point))
    transcript.append("N0", st.prover_key.n)
    transcript.append("C", st.ciphertext)
    transcript.append("Nhat", st.params.n)
    transcript.append("s", st.params.s)
    transcript.append("t", st.params.t)
    transcript.append("S", s)
    transcript.append("A", a)
    transcript.append("Y", y)
    transcript.append("D", d)
    return transcript.challenge_signed("e", g.order)


def prove(transcript: Transcript, statement: Statement, witness: Witness, rng: Rng) -> Proof:
    prm, key, g = statement.params, witness.key, statement.group
    alpha = sample_pm(rng, 1 << (L + EPSILON))
    mu = sample_pm(rng, prm.n << L)
    r = random_unit(rng, key.n)
    gamma = sample_pm(rng, prm.n << (L + EPSILON))
    s = prm.commit(witness.x, mu)
    a = key.encrypt_with(alpha, r)
    y = g.encode(g.mul(statement.base, alpha))
    d = prm.commit(alpha, gamma)
    e = _challenge(transcript, statement, s, a, y, d)
    z2 = r * key.pow_mod_n(witness.rho, e) % key.n
    return Proof(s, a, y, d, alpha + e * witness.x, z2, gamma + e * mu)


def verify(transcript: Transcript, statement: Statement, proof: Proof) -> bool:
    prm, pk, g = statement.params, statement.prover_key, statement.group
    if not prm.validate():
        return False
    if not pk.validate(statement.ciphertext) or not pk.validate(proof.a):
        return False
    if not is_unit(proof.z2, pk.n) or not is_unit(proof.s, prm.n) or not is_unit(proof.d, prm.n):
        return False
    if not in_pm(proof.z1, 1 << (L + EPSILON)):
        return False
    try:
        y = g.decode(proof.y)
    except InvalidEncoding:
        return False
    e = _challenge(transcript, statement, proof.s, proof.a, proof.y, proof.d)
    n2 = pk.n2
    if pk.encrypt_with(proof.z1, proof.z2) != proof.a * gmpy2.powmod(statement.ciphertext, e, n2) % n2:
        return False
    if not g.eq(g.mul(statement.base, proof.z1), g.add(y, g.mul(statement.point, e))):
        return False
    return prm.check(proof.z1, proof.z3, e, proof.d, proof.s)
