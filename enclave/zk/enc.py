"""Πenc: the Paillier ciphertext K = Enc_N0(k; ρ) hides k in ±2^ℓ (CGGMP21 fig. 14).

The initiator's range proof for its MtA input (GG20's Enc(k_i)): a K hiding a value outside
the range is what the alpha-rays / TSSHOCK family of attacks exploits. Statement: the prover's
Paillier key N0, K, the verifier's ring-Pedersen parameters. Witness: k, ρ (and the prover's
Paillier secret key, used only for CRT speed). The verifier checks z1 ∈ ±2^(ℓ+ε), every
element's range (K and A in Z*_{N0^2}, z2 in Z*_{N0}, S and C units mod N̂), and both equations.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import gmpy2

from enclave.crypto.paillier import PublicKey, SecretKey, random_unit
from enclave.crypto.params import EPSILON, L, in_pm, is_unit, sample_pm
from enclave.crypto.ringpedersen import Params
from enclave.crypto.rng import Rng
from enclave.crypto.transcript import Transcript
from enclave.group.secp256k1 import ORDER


@dataclass(frozen=True)
class Statement:
    prover_key: PublicKey
    ciphertext: int
    params: Params  # the verifier's


@dataclass(frozen=True)
class Witness:
    k: int = field(repr=False)
    rho: int = field(repr=False)
    key: SecretKey = field(repr=False)


@dataclass(frozen=True)
class Proof:
    s: int
    a: int
    c: int
    z1: int
    z2: int
    z3: int


def _challenge(transcript: Transcript, st: Statement, s: int, a: int, c: int) -> int:
    transcript.append("zk", "cggmp21/enc/v1")
    transcript.append("N0", st.prover_key.n)
    transcript.append("K", st.ciphertext)
    transcript.append("Nhat", st.params.n)
    transcript.append("s", st.params.s)
    transcript.append("t", st.params.t)
    transcript.append("S", s)
    transcript.append("A", a)
    transcript.append("C", c)
    return transcript.challenge_signed("e", ORDER)


def prove(transcript: Transcript, statement: Statement, witness: Witness, rng: Rng) -> Proof:
    prm, key = statement.params, witness.key
    n0 = key.n
    alpha = sample_pm(rng, 1 << (L + EPSILON))
    mu = sample_pm(rng, prm.n << L)
    r = random_unit(rng, n0)
    gamma = sample_pm(rng, prm.n << (L + EPSILON))
    s = prm.commit(witness.k, mu)
    a = key.encrypt_with(alpha, r)
    c = prm.commit(alpha, gamma)
    e = _challenge(transcript, statement, s, a, c)
    z2 = r * key.pow_mod_n(witness.rho, e) % n0
    return Proof(s, a, c, alpha + e * witness.k, z2, gamma + e * mu)


def verify(transcript: Transcript, statement: Statement, proof: Proof) -> bool:
    prm, pk = statement.params, statement.prover_key
    if not prm.validate():
        return False
    if not pk.validate(statement.ciphertext) or not pk.validate(proof.a):
        return False
    if not is_unit(proof.z2, pk.n) or not is_unit(proof.s, prm.n) or not is_unit(proof.c, prm.n):
        return False
    if not in_pm(proof.z1, 1 << (L + EPSILON)):
        return False
    e = _challenge(transcript, statement, proof.s, proof.a, proof.c)
    n2 = pk.n2
    lhs = pk.encrypt_with(proof.z1, proof.z2)
    rhs = proof.a * gmpy2.powmod(statement.ciphertext, e, n2) % n2
    if lhs != rhs:
        return False
    return prm.check(proof.z1, proof.z3, e, proof.c, proof.s)
