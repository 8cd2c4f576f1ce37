"""N session engines in process, with messages routed between them the way a relay would:
by EnclaveMessage.recipient (empty = every other party of the session)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from enclave.crypto.primes import PrimeSource
from enclave.engine import Engine, EngineConfig
from enclave.policy import PolicyVerifier
from enclave.sealing import generate_key_file
from enclave.tee.identity import EnclaveIdentity
from mpc.v1 import enclave_pb2 as pb

Tamper = Callable[[str, pb.EnclaveMessage], "pb.EnclaveMessage | None"]
Endpoint = Callable[..., object]

RUNNING, DONE, FAILED = pb.SESSION_STATE_RUNNING, pb.SESSION_STATE_DONE, pb.SESSION_STATE_FAILED


def make_engines(
    names: Sequence[str],
    tmp: Path,
    source: PrimeSource,
    policy: PolicyVerifier | None = None,
    **config: int | bool,
) -> dict[str, Engine]:
    engines = {}
    for name in names:
        sealer = generate_key_file(tmp / f"{name}.key")
        defaults: dict[str, int | bool] = {"preparams_pool_size": 1, "workers": 2, "allow_reshare_without_policy": True}
        cfg = EngineConfig(**(defaults | config))  # type: ignore[arg-type]
        # Each party its own identity key, as each enclave has (reshare's listed parties and a
        # repaired party sign with it).
        identity = EnclaveIdentity.generate()
        engines[name] = Engine(sealer, config=cfg, prime_source=source, policy=policy, identity=identity)
    return engines


def dkg(sid: str, protocol: int, parties: Sequence[str], threshold: int, me: str) -> pb.SessionStart:
    return pb.SessionStart(
        session_id=sid,
        protocol=protocol,  # type: ignore[arg-type]
        kind=pb.SESSION_KIND_DKG,
        party_ids=list(parties),
        self_party_id=me,
        threshold=threshold,
    )


def sign(
    sid: str,
    protocol: int,
    signers: Sequence[str],
    me: str,
    share: pb.SealedBlob,
    message: bytes,
    *,
    path: Sequence[int] = (),
    presignature: pb.SealedBlob | None = None,
    approval: pb.PolicyApproval | None = None,
    message_hash: int = pb.MESSAGE_HASH_UNSPECIFIED,
) -> pb.SessionStart:
    blobs = [share] + ([presignature] if presignature is not None else [])
    return pb.SessionStart(
        session_id=sid,
        protocol=protocol,  # type: ignore[arg-type]
        kind=pb.SESSION_KIND_SIGN,
        party_ids=list(signers),
        self_party_id=me,
        key_id=share.id,
        sealed_blobs=blobs,
        message=message,
        derivation_path=list(path),
        presignature_id=presignature.id if presignature is not None else "",
        policy_approval=approval,
        message_hash=message_hash,  # type: ignore[arg-type]
    )


def presign(
    sid: str, signers: Sequence[str], me: str, share: pb.SealedBlob, path: Sequence[int] = ()
) -> pb.SessionStart:
    return pb.SessionStart(
        session_id=sid,
        protocol=pb.PROTOCOL_GG20_SECP256K1,
        kind=pb.SESSION_KIND_PRESIGN,
        party_ids=list(signers),
        self_party_id=me,
        key_id=share.id,
        sealed_blobs=[share],
        derivation_path=list(path),
    )


def refresh(
    sid: str, protocol: int, parties: Sequence[str], threshold: int, me: str, share: pb.SealedBlob
) -> pb.SessionStart:
    return pb.SessionStart(
        session_id=sid,
        protocol=protocol,  # type: ignore[arg-type]
        kind=pb.SESSION_KIND_REFRESH,
        party_ids=list(parties),
        self_party_id=me,
        threshold=threshold,
        key_id=share.id,
        sealed_blobs=[share],
    )


def reshare(
    sid: str,
    protocol: int,
    source: tuple[Sequence[str], int, Sequence[str]],
    new: tuple[Sequence[str], int],
    me: str,
    share: pb.SealedBlob | None,
    key: tuple[str, bytes, bytes],
    new_party_keys: Mapping[str, bytes],
) -> pb.SessionStart:
    """`source`: the source key's (parties, threshold, dealers); `new`: (parties, threshold);
    `key`: the source (key id, public key, chain code); public key and chain code go only to a
    party with no share, as a host would send them; `new_party_keys`: see `listed`."""
    return pb.SessionStart(
        session_id=sid,
        protocol=protocol,  # type: ignore[arg-type]
        kind=pb.SESSION_KIND_RESHARE,
        party_ids=list(new[0]),
        threshold=new[1],
        self_party_id=me,
        key_id=key[0],
        sealed_blobs=[share] if share is not None else [],
        source_party_ids=list(source[0]),
        source_threshold=source[1],
        source_signers=list(source[2]),
        source_public_key=b"" if share is not None else key[1],
        source_chain_code=b"" if share is not None else key[2],
        new_party_keys=dict(new_party_keys),
    )


def repair(
    sid: str,
    protocol: int,
    key: tuple[Sequence[str], int, pb.SessionResult],
    helpers: Sequence[str],
    repaired: tuple[str, bytes],
    me: str,
    share: pb.SealedBlob | None,
) -> pb.SessionStart:
    """`key`: the key's (parties, threshold, a DKG result naming it); `repaired`: (the party whose
    share is rebuilt, its identity key). Public key and chain code go only to the repaired party,
    as a host would send them."""
    parties, threshold, result = key
    return pb.SessionStart(
        session_id=sid,
        protocol=protocol,  # type: ignore[arg-type]
        kind=pb.SESSION_KIND_REPAIR,
        party_ids=list(parties),
        threshold=threshold,
        self_party_id=me,
        key_id=result.key_id,
        sealed_blobs=[share] if share is not None else [],
        source_signers=list(helpers),
        repair_party_id=repaired[0],
        new_party_keys={repaired[0]: repaired[1]},
        source_public_key=b"" if share is not None else result.public_key,
        source_chain_code=b"" if share is not None else result.chain_code,
    )


def listed(engines: Mapping[str, Engine], parties: Sequence[str], dealers: Sequence[str]) -> dict[str, bytes]:
    """new_party_keys for a reshare: every new party that deals nothing, with its engine's
    identity key (what a host reads from InfoResponse.enclave_public_key)."""
    return {p: engines[p].identity.public_key for p in parties if p not in dealers}


async def run(
    engines: Mapping[str, Engine],
    starts: Mapping[str, pb.SessionStart],
    tamper: Tamper | None = None,
) -> dict[str, pb.SessionUpdate]:
    """Start every party's session, then relay until no message is left. Returns the last
    SessionUpdate of each party."""
    inbox: dict[str, list[pb.EnclaveMessage]] = {n: [] for n in starts}
    updates: dict[str, pb.SessionUpdate] = {}

    def post(sender: str, outgoing: Sequence[pb.EnclaveMessage]) -> None:
        for m in outgoing:
            assert m.sender == sender
            targets = [m.recipient] if m.recipient else [p for p in starts if p != sender]
            for t in targets:
                msg = tamper(t, m) if tamper is not None else m
                if msg is not None and t in inbox:
                    inbox[t].append(msg)

    first = await asyncio.gather(*(engines[n].start(s) for n, s in starts.items()))
    for n, u in zip(starts, first, strict=True):
        updates[n] = u
        post(n, u.outgoing)
    while any(inbox[n] and updates[n].state == RUNNING for n in starts):
        batch = {n: inbox[n] for n in starts if inbox[n] and updates[n].state == RUNNING}
        for n in batch:
            inbox[n] = []
        results = await asyncio.gather(
            *(
                engines[n].deliver(pb.SessionDeliver(session_id=starts[n].session_id, messages=msgs))
                for n, msgs in batch.items()
            )
        )
        for n, u in zip(batch, results, strict=True):
            updates[n] = u
            post(n, u.outgoing)
    return updates


def results(updates: Mapping[str, pb.SessionUpdate]) -> dict[str, pb.SessionResult]:
    for n, u in updates.items():
        assert u.state == DONE, f"{n}: state {u.state}, reason {u.reason!r}, culprits {list(u.culprits)}"
    return {n: u.result for n, u in updates.items()}
