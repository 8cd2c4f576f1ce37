"""Mutated protocol messages, validly HMAC'd, into every round of every protocol.

For each protocol and round (FROST, Ed25519 and secp256k1: key generation 1-2 and signing 1-2;
GG20 key generation 1-3, presigning 1-4 and online signing 1), Hypothesis runs sessions between the caller's local party
and a real signer node in which one message the local party sends in that round is mutated
(tests.fuzz.mutations) and HMAC'd with the caller's key. Whatever the bytes:
- the signer answers with a status from the table for bad input (never INTERNAL, UNKNOWN or
  UNAVAILABLE: no process died), or the session fails naming the sender ("client") as its only
  culprit, or it waits (a message for a later round is queued) until its deadline;
- a session that still finishes gives a correct result (a signature that verifies, the same key
  at both parties);
- both processes are alive after every target, neither logged a traceback, and the node signs
  (FROST and GG20, checked with libsodium / libsecp256k1) when the module is done.
`make test` runs a few examples per round (GG20 rounds cost up to a second each); `make fuzz`
runs MPC_FUZZ_EXAMPLES, scaled by cost.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mpc.v1 import signer_pb2 as pb
from signer.client.relay import Relay
from signer.client.spec import Outcome, SessionSpec
from signer.client.verify import verify
from tests.fuzz.conftest import Fuzzing, examples, no_traceback
from tests.fuzz.mutations import Mutation, mutations
from tests.fuzz.parties import MutatingNode
from tests.service.conftest import FROST, GG20, KECCAK, check_signature, dkg, message_for, presign, sid, sign

PARTIES = ("client", "signer")
# What the signer may answer a hostile but authenticated message with.
REFUSALS = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.ALREADY_EXISTS,
    grpc.StatusCode.NOT_FOUND,
}


@dataclass(frozen=True)
class Target:
    name: str
    protocol: int
    kind: str  # dkg, presign, sign
    round_no: int
    in_make_test: int  # examples in `make test`
    cost: int  # relative cost of one example (MPC_FUZZ_EXAMPLES / cost examples in `make fuzz`)


FROST_SECP256K1 = pb.PROTOCOL_FROST_SECP256K1
TARGETS = [
    *(
        Target(f"{name}-{kind}-r{r}", protocol, kind, r, 800, 1)
        for name, protocol in (("frost", FROST), ("frost-secp256k1", FROST_SECP256K1))
        for kind in ("dkg", "sign")
        for r in (1, 2)
    ),
    Target("gg20-keygen-r1", GG20, "dkg", 1, 3, 100),
    Target("gg20-keygen-r2", GG20, "dkg", 2, 3, 100),
    Target("gg20-keygen-r3", GG20, "dkg", 3, 3, 100),
    Target("gg20-presign-r1", GG20, "presign", 1, 10, 25),
    Target("gg20-presign-r2", GG20, "presign", 2, 10, 25),
    Target("gg20-presign-r3", GG20, "presign", 3, 6, 25),
    Target("gg20-presign-r4", GG20, "presign", 4, 6, 25),
    Target("gg20-sign-r1", GG20, "sign", 1, 6, 25),
]
KEYS: dict[int, pb.DKGResult] = {}  # one key per protocol for the module's signing targets


def spec_for(target: Target, fz: Fuzzing) -> tuple[SessionSpec, bytes]:
    if target.kind == "dkg":
        return SessionSpec("dkg", sid("fuzz-dkg"), target.protocol, PARTIES, threshold=2), b""  # type: ignore[arg-type]
    key = KEYS[target.protocol]
    if target.kind == "presign":
        return SessionSpec("presign", sid("fuzz-pre"), GG20, PARTIES, key_id=key.key_id), b""  # type: ignore[arg-type]
    text = sid("fuzz message").encode()
    if target.protocol != GG20:
        spec = SessionSpec(
            "sign",
            sid("fuzz-sign"),
            target.protocol,
            PARTIES,
            key_id=key.key_id,  # type: ignore[arg-type]
            message=text,
        )
        return spec, text
    # Each GG20 example signs with a presignature of its own, on a message the enclave hashes.
    presignature_id = fz.run(presign(Relay({"client": fz.local, "signer": fz.client}), PARTIES, key.key_id))
    spec = SessionSpec(
        "sign",
        sid("fuzz-sign"),
        GG20,
        PARTIES,
        key_id=key.key_id,
        message=text,  # type: ignore[arg-type]
        message_hash=KECCAK,
        presignature_id=presignature_id,
    )
    return spec, message_for(GG20, text)


def judge(
    target: Target,
    spec: SessionSpec,
    message: bytes,
    outcomes: dict[str, Outcome],
    changed: bool,
    seen: collections.Counter[str],
) -> None:
    signer, client = outcomes["signer"], outcomes["client"]
    if signer.state == pb.SESSION_STATE_FAILED:
        assert signer.failure is not None
        if "deadline" not in signer.failure.reason:
            assert list(signer.failure.culprits) == ["client"], (signer.failure, changed)
        seen["failed naming client"] += 1
    elif signer.state == pb.SESSION_STATE_DONE:
        assert signer.result is not None
        if spec.kind == "sign":
            key = KEYS[target.protocol]
            assert verify(target.protocol, key.public_key, message, signer.result.sign.signature)
        elif spec.kind == "dkg" and client.ok and client.result is not None:
            assert client.result.dkg.public_key == signer.result.dkg.public_key
        seen["done" + (" (changed)" if changed else " (no-op mutation)")] += 1
    else:
        assert signer.state == pb.SESSION_STATE_RUNNING, signer
        seen["left waiting"] += 1


def fuzz_target(target: Target, fz: Fuzzing) -> collections.Counter[str]:
    seen: collections.Counter[str] = collections.Counter()

    @settings(
        max_examples=examples(target.in_make_test, target.cost),
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
        print_blob=True,
    )
    @given(index=st.integers(0, 7), chosen=mutations)
    def one(index: int, chosen: list[Mutation]) -> None:
        spec, message = spec_for(target, fz)
        party = MutatingNode(fz.local, fz.ring, target.round_no, index, chosen)
        relay = Relay({"client": party, "signer": fz.client})
        try:
            outcomes: dict[str, Any] = fz.run(relay.run(spec, timeout=60))
        except grpc.aio.AioRpcError as exc:
            assert exc.code() in REFUSALS, (exc.code(), exc.details(), chosen)
            seen[f"refused {exc.code().name}"] += 1
        else:
            judge(target, spec, message, outcomes, party.changed, seen)
        finally:
            fz.run(party.abort_all())
        assert party.sent is not None, f"no message of round {target.round_no} was sent"

    one()
    return seen


@pytest.fixture(scope="module")
def keyed(fuzzing: Fuzzing) -> Fuzzing:
    relay = Relay({"client": fuzzing.local, "signer": fuzzing.client})
    for protocol in (FROST, FROST_SECP256K1, GG20):
        KEYS[protocol] = fuzzing.run(dkg(relay, protocol, PARTIES, 2))
    return fuzzing


@pytest.mark.parametrize("target", [pytest.param(t, id=t.name) for t in TARGETS])
def test_mutated_messages_are_refused_cleanly(target: Target, keyed: Fuzzing) -> None:
    seen = fuzz_target(target, keyed)
    print(target.name, dict(seen))
    assert keyed.alive(), "a process died"
    assert sum(seen.values()) >= target.in_make_test


def test_the_node_still_signs_and_logged_no_traceback(keyed: Fuzzing) -> None:
    relay = Relay({"client": keyed.local, "signer": keyed.client})
    for protocol in (FROST, FROST_SECP256K1, GG20):
        key = KEYS[protocol]
        text = b"after the fuzzing"
        # (GG20 with a presignature named: the signer may hold some the fuzzing left unused)
        presignature_id = keyed.run(presign(relay, PARTIES, key.key_id)) if protocol == GG20 else ""
        rule = KECCAK if protocol == GG20 else pb.MESSAGE_HASH_UNSPECIFIED
        result = keyed.run(sign(relay, protocol, PARTIES, key.key_id, text, presignature_id, message_hash=rule))
        if protocol == FROST_SECP256K1:  # (check_signature knows its 64-byte siblings only)
            assert verify(protocol, key.public_key, text, result.signature)
        else:
            check_signature(protocol, key.public_key, message_for(protocol, text), result)
    assert keyed.alive()
    no_traceback(keyed.node)
