"""Pieces shared by the GG20 rounds: party-set checks, proof transcripts, aux info."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from enclave.crypto.paillier import PublicKey, check_modulus
from enclave.crypto.ringpedersen import Params
from enclave.crypto.transcript import Transcript
from enclave.errors import InvalidParameters, ProtocolFault
from enclave.group.secp256k1 import ORDER
from enclave.zk import mod, prm

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


def verify_aux_info(
    session_id: bytes,
    protocol: str,
    sender: int,
    fields: tuple[int, int, int, Any, Any],
    min_modulus_bits: int,
    old: Iterable[AuxInfo] = (),
    renewing: str = "refresh",
) -> AuxInfo:
    """A peer's round-one aux info (N, s, t, Πmod, Πprm), checked as every protocol that makes
    one does: N is none of `old` (the key's aux info, which a `renewing` protocol, a refresh or
    a reshare, must replace), N passes `check_modulus`, Πmod for N, ring-Pedersen (N, s, t)
    valid, Πprm for it. Blames `sender`."""
    n, s, t, mod_proof, prm_proof = fields
    if any(n == a.n for a in old):
        raise ProtocolFault(sender, f"a {renewing} must bring a new Paillier modulus, not the key's old one")
    reason = check_modulus(n, min_modulus_bits)
    if reason is not None:
        raise ProtocolFault(sender, reason)
    tr = proof_transcript(session_id, protocol, 1, sender, BROADCAST_VERIFIER, "mod")
    if not mod.verify(tr, mod.Statement(n), mod_proof):
        raise ProtocolFault(sender, "invalid Πmod")
    aux = AuxInfo(n, s, t)
    if not aux.pedersen.validate():
        raise ProtocolFault(sender, "invalid ring-Pedersen parameters")
    tr = proof_transcript(session_id, protocol, 1, sender, BROADCAST_VERIFIER, "prm")
    if not prm.verify(tr, prm.Statement(aux.pedersen), prm_proof):
        raise ProtocolFault(sender, "invalid Πprm")
    return aux
