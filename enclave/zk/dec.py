"""Πdec in the exponent: C = Enc_N0(y; ρ) and X = (y mod q)·g, for y ∈ ±2^b.

CGGMP21's Πdec (fig. 30, "Paillier decryption modulo q") proves that a ciphertext decrypts,
modulo q, to a public scalar. GG20 presigning needs the same statement for a secret value kept
in the exponent: that Y = y·Γ carries the MtAwc mask y a party encrypted in F̂ = Enc(y), so
that a wrong χ-derived point can be traced to its sender without disclosing y. The public
scalar check of Πdec (z1 ≡ γ + e·x mod q) becomes a group check (z1·g = B + e·X).

"Decrypts to y modulo q" only means something if y is unique: with no range, a prover could
use y + t·N0 for any t (same ciphertext, another residue mod q). So the relation carries a
range b: the prover's y is in ±2^b, the verifier checks z1 ∈ ±2^(b+ε), and the verifier
refuses (returns False) unless 2^(b+ε+1) < N0/2, so that the integer extracted from two
accepting transcripts is the one plaintext of C in (-N0/2, N0/2].

Statement: group, base g, X, the prover's Paillier key N0, C, the verifier's ring-Pedersen
parameters, b. The verifier checks the parameters, C and A in Z*_{N0^2}, z2 a unit mod N0, S
and D units mod N̂, B a valid point, z1 in range, and the three equations.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import gmpy2

from enclave.crypto.paillier import PublicKey, SecretKey, random_unit
from enclave.crypto.params import EPSILON, in_pm, is_unit, sample_pm
from enclave.crypto.ringpedersen import Params
from enclave.crypto.rng import Rng
from enclave.crypto.transcript import Transcript
from enclave.errors import InvalidEncoding
from enclave.group.base import Element, Group


@dataclass(frozen=True)
class Statement:
    group: Group
    base: Element  # g
    point: Element  # X = (y mod q)·g
    prover_key: PublicKey  # N0
    ciphertext: int  # C = Enc_N0(y; ρ)
    params: Params  # the verifier's
    bits: int  # y ∈ ±2^bits


@dataclass(frozen=True)
class Witness:
    y: int = field(repr=False)
    rho: int = field(repr=False)
    key: SecretKey = field(repr=False)  # the prover's N0 secret key (CRT speed only)


@dataclass(frozen=True)
class Proof:
    s: int  # s^y t^μ
    a: int  # Enc_N0(α; r)
    b: bytes  # α·g, encoded
    d: int  # s^α t^γ
    z1: int
    z2: int
    z3: int


def _challenge(transcript: Transcript, st: Statement, s: int, a: int, b: bytes, d: int) -> int:
    g = st.group
    transcript.append("zk", "mpc-signer/dec-exp/v1")
    transcript.append("group", g.name)
    transcript.append("g", g.encode(st.base))
    transcript.append("X", g.encode(st.point))
    transcript.append("N0", st.prover_key.n)
    transcript.append("C", st.ciphertext)
    transcript.append("Nhat", st.params.n)
    transcript.append("s", st.params.s)
    transcript.append("t", st.params.t)
    transcript.append("bits", st.bits)
    transcript.append("S", s)
    transcript.append("A", a)
    transcript.append("B", b)
    transcript.append("D", d)
    return transcript.challenge_signed("e", g.order)


def prove(transcript: Transcript, statement: Statement, witness: Witness, rng: Rng) -> Proof:
    prm, key, g, bits = statement.params, witness.key, statement.group, statement.bits
    alpha = sample_pm(rng, 1 << (bits + EPSILON))
    mu = sample_pm(rng, prm.n << bits)
    r = random_unit(rng, key.n)
    gamma = sample_pm(rng, prm.n << (bits + EPSILON))
    s = prm.commit(witness.y, mu)
    a = key.encrypt_with(alpha, r)
    b = g.encode(g.mul(statement.base, alpha))
    d = prm.commit(alpha, gamma)
    e = _challenge(transcript, statement, s, a, b, d)
    z2 = r * key.pow_mod_n(witness.rho, e) % key.n
    return Proof(s, a, b, d, alpha + e * witness.y, z2, gamma + e * mu)


def verify(transcript: Transcript, statement: Statement, proof: Proof) -> bool:
    prm, pk, g, bits = statement.params, statement.prover_key, statement.group, statement.bits
    if bits < 1 or 1 << (bits + EPSILON + 2) >= pk.n:
        return False  # the range does not make the plaintext unique under this modulus
    if not prm.validate():
        return False
    if not pk.validate(statement.ciphertext) or not pk.validate(proof.a):
        return False
    if not is_unit(proof.z2, pk.n) or not is_unit(proof.s, prm.n) or not is_unit(proof.d, prm.n):
        return False
    if not in_pm(proof.z1, 1 << (bits + EPSILON)):
        return False
    if g.is_identity(statement.base):
        return False
    try:
        b = g.decode(proof.b)
    except InvalidEncoding:
        return False
    e = _challenge(transcript, statement, proof.s, proof.a, proof.b, proof.d)
    n2 = pk.n2
    if pk.encrypt_with(proof.z1, proof.z2) != proof.a * gmpy2.powmod(statement.ciphertext, e, n2) % n2:
        return False
    if not g.eq(g.mul(statement.base, proof.z1), g.add(b, g.mul(statement.point, e))):
        return False
    return prm.check(proof.z1, proof.z3, e, proof.d, proof.s)
