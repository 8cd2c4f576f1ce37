"""Pieces shared by the GG20 rounds: party-set checks, proof transcripts, aux info."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from enclave.crypto.paillier import PublicKey
from enclave.crypto.ringpedersen import Params
from enclave.crypto.transcript import Transcript
from enclave.errors import InvalidParameters
from enclave.group.secp256k1 import ORDER

DOMAIN = "mpc-signer/gg20/v1"
BROADCAST_VERIFIER = 0  # party ids are >= 1, so 0 names "every verifier"


def check_party_ids(parties: Iterable[int]) -> tuple[int, ...]:
    """Party ids are the Shamir evaluation points: distinct ints in [1, q)."""
    ids = tuple(parties)
    if any(type(p) is not int for p in ids):
        raise InvalidParameters("party ids must be ints")
    if any(not 1 <= p < ORDER for p in ids):
        raise InvalidParameters("party id must be in [1, q)")
    if len(set(ids)) != len(ids):
        raise InvalidParameters("duplicate party id")
    return tuple(sorted(ids))


def proof_transcript(
    session_id: bytes, protocol: str, round_no: int, prover: int, verifier: int, proof: str
) -> Transcript:
    """Fiat–Shamir transcript of one proof: session, protocol, round, prover, verifier, relation."""
    t = Transcript(DOMAIN, session_id=session_id, protocol=protocol, round=round_no, party=prover)
    t.append("verifier", verifier)
    t.append("proof", proof)
    return t


def framed_hash(tag: bytes, *parts: bytes) -> bytes:
    h = hashlib.sha256(tag)
    for p in parts:
        h.update(len(p).to_bytes(8, "big"))
        h.update(p)
    return h.digest()


@dataclass(frozen=True)
class AuxInfo:
    """A party's public auxiliary info: Paillier key N and ring-Pedersen (N, s, t)."""

    n: int
    s: int
    t: int

    @cached_property
    def paillier(self) -> PublicKey:
        return PublicKey(self.n)

    @cached_property
    def pedersen(self) -> Params:
        return Params(self.n, self.s, self.t)
