"""Schnorr proof of knowledge of a discrete logarithm: knowledge of x with X = x*G.

Relation: statement `X` (in a group passed as a value), witness `x`.
Proof `(A, z)`: prover picks k, sends A = k*G; challenge e from the transcript after absorbing
the group name, G, X and A; z = k + e*x. Verifier checks z*G == A + e*X.

The caller supplies a `Transcript` already bound to session, protocol, round and prover id;
`prove` and `verify` absorb the statement and commitment themselves, so a proof cannot be
replayed under another statement, session or party. Both sides must start from identically
bound transcripts.

Wire form: `encode(group, proof) = enc(A) || enc_scalar(z)`; `decode(group, data)` is strict
(raises `InvalidEncoding`). FROST's DKG uses its own, ZF-frost compatible challenge
(enclave.protocols.frost); this module is the generic proof (used by GG20).
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
    public: Element  # X = x*G, already strictly decoded


@dataclass(frozen=True)
class Witness:
    secret: int = field(repr=False)


@dataclass(frozen=True)
class Proof:
    commitment: Element  # A
    response: int  # z


def _challenge(transcript: Transcript, statement: Statement, commitment: Element) -> int:
    g = statement.group
    transcript.append("zk", "schnorr-dlog/v1")
    transcript.append("group", g.name)
    transcript.append("G", g.encode(g.generator()))
    transcript.append("X", g.encode(statement.public))
    transcript.append("A", g.encode(commitment))
    return transcript.challenge_int("e", g.order)


def prove(transcript: Transcript, statement: Statement, witness: Witness, rng: Rng) -> Proof:
    g = statement.group
    k = g.random_scalar(rng)
    a = g.base_mul(k)
    e = _challenge(transcript, statement, a)
    return Proof(a, (k + e * witness.secret) % g.order)


def verify(transcript: Transcript, statement: Statement, proof: Proof) -> bool:
    g = statement.group
    if not 0 <= proof.response < g.order:
        return False
    e = _challenge(transcript, statement, proof.commitment)
    lhs = g.base_mul(proof.response)
    rhs = g.add(proof.commitment, g.mul(statement.public, e))
    return g.eq(lhs, rhs)


def encode(group: Group, proof: Proof) -> bytes:
    return group.encode(proof.commitment) + group.encode_scalar(proof.response)


def decode(group: Group, data: bytes) -> Proof:
    if len(data) != group.element_len + group.scalar_len:
        raise InvalidEncoding("schnorr proof has the wrong length")
    a = group.decode(data[: group.element_len])
    z = group.decode_scalar(data[group.element_len :])
    return Proof(a, z)
