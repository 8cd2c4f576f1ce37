"""Πprm: the ring-Pedersen parameters are sound, s ∈ <t> mod N̂ (CGGMP21 fig. 17), m = 80.

Statement: (N̂, s, t). Witness: λ with s = t^λ, and φ(N̂). For each of 80 challenge bits e_i
the prover opens A_i = t^a_i as z_i = a_i + e_i λ mod φ(N̂); the verifier checks
t^z_i = A_i s^e_i. Before that, `Params.validate` rejects s = t, s or t equal to 1 or -1, and
non-units; every A_i must be a unit and every z_i in [0, N̂).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from enclave.crypto.params import REPETITIONS, is_unit
from enclave.crypto.ringpedersen import Params, Trapdoor
from enclave.crypto.rng import Rng, random_below
from enclave.crypto.transcript import Transcript


@dataclass(frozen=True)
class Statement:
    params: Params


@dataclass(frozen=True)
class Witness:
    trapdoor: Trapdoor = field(repr=False)


@dataclass(frozen=True)
class Proof:
    a: tuple[int, ...]
    z: tuple[int, ...]


def _challenge_bits(transcript: Transcript, params: Params, commitments: tuple[int, ...]) -> list[int]:
    transcript.append("zk", "cggmp21/prm/v1")
    transcript.append("N", params.n)
    transcript.append("s", params.s)
    transcript.append("t", params.t)
    transcript.append_many("A", commitments)
    raw = transcript.challenge_bytes("e", (REPETITIONS + 7) // 8)
    bits = int.from_bytes(raw, "big")
    return [(bits >> i) & 1 for i in range(REPETITIONS)]


def prove(transcript: Transcript, statement: Statement, witness: Witness, rng: Rng) -> Proof:
    key = witness.trapdoor.key
    phi = key.phi
    params = statement.params
    secrets_a = [random_below(rng, phi) for _ in range(REPETITIONS)]
    commitments = tuple(key.pow_mod_n(params.t, a) for a in secrets_a)
    es = _challenge_bits(transcript, params, commitments)
    lam = witness.trapdoor.lam
    return Proof(commitments, tuple((a + e * lam) % phi for a, e in zip(secrets_a, es, strict=True)))


def verify(transcript: Transcript, statement: Statement, proof: Proof) -> bool:
    params = statement.params
    n = params.n
    if not params.validate():
        return False
    if len(proof.a) != REPETITIONS or len(proof.z) != REPETITIONS:
        return False
    if not all(is_unit(a, n) for a in proof.a) or not all(0 <= z < n for z in proof.z):
        return False
    es = _challenge_bits(transcript, params, proof.a)
    for a, z, e in zip(proof.a, proof.z, es, strict=True):
        rhs = a * params.s % n if e else a
        if params.pow_t(z) != rhs:
            return False
    return True
