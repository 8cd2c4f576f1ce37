"""Chaum–Pedersen (DLEQ): X = x·G and T = x·H for the same secret x, the group-side product proof.

GG20 presigning uses it to identify a wrong χ-derived point: party j publishes
T_{j,i} = w_j·Δ_i (its additive key share times i's Δ_i = k_i·Γ), which is the group image of
the product k_i·w_j that the MtAwc between i and j shares out. The paper's Πmul* proves the
same product on Paillier ciphertexts; here the product is needed only in the exponent (χ_i is
secret, only Ŝ_i = χ_i·Γ is public), so the group version is exact and needs no range.

Statement: group, base H, X (= x·G), T (= x·H), all strictly decoded by the caller. Proof
(A, B, z): A = a·G, B = a·H, e from the transcript (statement and commitments), z = a + e·x mod q.
The verifier checks z in [0, q), A and B valid encodings, and z·G = A + e·X, z·H = B + e·T.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from enclave.crypto.rng import Rng
from enclave.crypto.transcript import Transcript
from enclave.errors import InvalidEncoding
from enclave.group.base import Element, Group


@dataclass(frozen=True)
class Statement:
    group: Group
    base: Element  # H
    public: Element  # X = x·G
    product: Element  # T = x·H


@dataclass(frozen=True)
class Witness:
    x: int = field(repr=False)


@dataclass(frozen=True)
class Proof:
    a: bytes  # A = a·G, encoded
    b: bytes  # B = a·H, encoded
    z: int


def _challenge(transcript: Transcript, st: Statement, a: bytes, b: bytes) -> int:
    g = st.group
    transcript.append("zk", "mpc-signer/dleq/v1")
    transcript.append("group", g.name)
    transcript.append("G", g.encode(g.generator()))
    transcript.append("H", g.encode(st.base))
    transcript.append("X", g.encode(st.public))
    transcript.append("T", g.encode(st.product))
    transcript.append("A", a)
    transcript.append("B", b)
    return transcript.challenge_int("e", g.order)


def prove(transcript: Transcript, statement: Statement, witness: Witness, rng: Rng) -> Proof:
    g = statement.group
    nonce = g.random_scalar(rng)
    a = g.encode(g.base_mul(nonce))
    b = g.encode(g.mul(statement.base, nonce))
    e = _challenge(transcript, statement, a, b)
    return Proof(a, b, (nonce + e * witness.x) % g.order)


def verify(transcript: Transcript, statement: Statement, proof: Proof) -> bool:
    g = statement.group
    if not 0 <= proof.z < g.order:
        return False
    if g.is_identity(statement.base):
        return False  # T = x·O says nothing about x
    try:
        a, b = g.decode(proof.a), g.decode(proof.b)
    except InvalidEncoding:
        return False
    e = _challenge(transcript, statement, proof.a, proof.b)
    if not g.eq(g.base_mul(proof.z), g.add(a, g.mul(statement.public, e))):
        return False
    return g.eq(g.mul(statement.base, proof.z), g.add(b, g.mul(statement.product, e)))
