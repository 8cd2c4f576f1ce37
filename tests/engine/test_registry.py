"""The engine's session rules: ids, cap, deadline, routing checks, faults confined to a session,
the policy hook, and pings answered while protocol math runs."""

from __future__ import annotations

import asyncio
import hashlib
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from nacl.signing import VerifyKey

from door.digests import frost_digest
from enclave.crypto.primes import FixtureSource
from enclave.engine.approval import encode_approval
from enclave.errors import RequestRejected
from enclave.policy import ApprovalSubject, PolicyVerifier, approval_message
from enclave.service import EnclaveService
from mpc.v1 import enclave_pb2 as pb
from tests.engine import relay
from tests.engine.conftest import FROST, GG20, Key

PAIR = ("alice", "bob")


@pytest.fixture
def engines(tmp_path: Path, prime_source: FixtureSource):  # type: ignore[no-untyped-def]
    made = relay.make_engines(PAIR, tmp_path, prime_source, max_sessions=2)
    yield made
    for e in made.values():
        e.close()


async def rejected(call, code: int) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(RequestRejected) as exc:
        await call
    assert exc.value.code == code, exc.value.message
    return exc.value.message


async def test_ids_cap_and_finished_sessions(engines) -> None:  # type: ignore[no-untyped-def]
    alice = engines["alice"]
    u = await alice.start(relay.dkg("one", FROST, PAIR, 2, "alice"))
    assert u.state == relay.RUNNING and len(u.outgoing) == 1
    assert u.outgoing[0].sender == "alice" and u.outgoing[0].recipient == "" and u.outgoing[0].round == 1
    await rejected(alice.start(relay.dkg("one", FROST, PAIR, 2, "alice")), pb.ERROR_CODE_ALREADY_EXISTS)
    await alice.start(relay.dkg("two", FROST, PAIR, 2, "alice"))
    await rejected(alice.start(relay.dkg("three", FROST, PAIR, 2, "alice")), pb.ERROR_CODE_RESOURCE_EXHAUSTED)
    aborted = await alice.abort(pb.SessionAbort(session_id="two", reason="host gave up"))
    assert aborted.state == relay.FAILED and "host gave up" in aborted.reason
    assert alice.running() == 1
    await alice.start(relay.dkg("three", FROST, PAIR, 2, "alice"))  # a slot is free again
    await rejected(alice.start(relay.dkg("two", FROST, PAIR, 2, "alice")), pb.ERROR_CODE_ALREADY_EXISTS)
    await rejected(alice.deliver(pb.SessionDeliver(session_id="nope")), pb.ERROR_CODE_NOT_FOUND)
    await rejected(alice.abort(pb.SessionAbort(session_id="nope")), pb.ERROR_CODE_NOT_FOUND)
    msg = await rejected(alice.deliver(pb.SessionDeliver(session_id="two")), pb.ERROR_CODE_FAILED_PRECONDITION)
    assert "failed" in msg


async def test_bad_starts_change_nothing(engines) -> None:  # type: ignore[no-untyped-def]
    alice = engines["alice"]
    bad = [
        relay.dkg("", FROST, PAIR, 2, "alice"),
        relay.dkg("x y", FROST, PAIR, 2, "alice"),
        relay.dkg("s", 0, PAIR, 2, "alice"),
        relay.dkg("s", FROST, PAIR, 3, "alice"),
        relay.dkg("s", FROST, PAIR, 1, "alice"),
        relay.dkg("s", FROST, ("alice", "alice"), 2, "alice"),
        relay.dkg("s", FROST, PAIR, 2, "carol"),
        relay.dkg("s", GG20, ("alice",), 1, "alice"),
        pb.SessionStart(
            session_id="s", protocol=FROST, kind=pb.SESSION_KIND_PRESIGN, party_ids=PAIR, self_party_id="alice"
        ),
    ]
    for start in bad:
        await rejected(alice.start(start), pb.ERROR_CODE_INVALID_ARGUMENT)
    assert alice.running() == 0
    # the id of a refused start is free
    assert (await alice.start(relay.dkg("s", FROST, PAIR, 2, "alice"))).state == relay.RUNNING


async def test_deadline_drops_the_session(engines) -> None:  # type: ignore[no-untyped-def]
    alice = engines["alice"]
    start = relay.dkg("slow", FROST, PAIR, 2, "alice")
    start.timeout_ms = 150
    await alice.start(start)
    assert alice.running() == 1
    await asyncio.sleep(0.4)
    assert alice.running() == 0
    msg = await rejected(alice.deliver(pb.SessionDeliver(session_id="slow")), pb.ERROR_CODE_FAILED_PRECONDITION)
    assert "deadline exceeded" in msg
    assert (await alice.abort(pb.SessionAbort(session_id="slow"))).reason == "deadline exceeded"


async def test_unknown_sender_is_rejected_and_the_session_continues(engines) -> None:  # type: ignore[no-untyped-def]
    starts = {p: relay.dkg("route", FROST, PAIR, 2, p) for p in PAIR}
    first = {p: await engines[p].start(s) for p, s in starts.items()}
    from_bob = first["bob"].outgoing[0]
    forged = pb.EnclaveMessage(sender="mallory", round=1, payload=from_bob.payload)
    msg = await rejected(
        engines["alice"].deliver(pb.SessionDeliver(session_id="route", messages=[from_bob, forged])),
        pb.ERROR_CODE_INVALID_ARGUMENT,
    )
    assert "'mallory'" in msg
    own = pb.EnclaveMessage(sender="alice", round=1, payload=from_bob.payload)
    await rejected(
        engines["alice"].deliver(pb.SessionDeliver(session_id="route", messages=[own])), pb.ERROR_CODE_INVALID_ARGUMENT
    )
    misrouted = pb.EnclaveMessage(sender="bob", recipient="carol", round=1, payload=from_bob.payload)
    assert "'carol'" in await rejected(
        engines["alice"].deliver(pb.SessionDeliver(session_id="route", messages=[misrouted])),
        pb.ERROR_CODE_INVALID_ARGUMENT,
    )
    # nothing of the rejected batches was applied: the genuine message is still accepted and the DKG completes
    a1 = await engines["alice"].deliver(pb.SessionDeliver(session_id="route", messages=[from_bob]))
    b1 = await engines["bob"].deliver(pb.SessionDeliver(session_id="route", messages=list(first["alice"].outgoing)))
    a = await engines["alice"].deliver(pb.SessionDeliver(session_id="route", messages=list(b1.outgoing)))
    b = await engines["bob"].deliver(pb.SessionDeliver(session_id="route", messages=list(a1.outgoing)))
    assert a.state == relay.DONE and b.state == relay.DONE
    assert a.result.key_id == b.result.key_id
    msg = await rejected(
        engines["alice"].deliver(pb.SessionDeliver(session_id="route", messages=[from_bob])),
        pb.ERROR_CODE_FAILED_PRECONDITION,
    )
    assert "is done" in msg
    await rejected(engines["alice"].abort(pb.SessionAbort(session_id="route")), pb.ERROR_CODE_FAILED_PRECONDITION)


async def test_garbage_aborts_naming_the_sender_and_other_sessions_go_on(engines) -> None:  # type: ignore[no-untyped-def]
    def garble(recipient: str, m: pb.EnclaveMessage) -> pb.EnclaveMessage:
        if m.sender == "bob" and m.round == 1:
            return pb.EnclaveMessage(sender=m.sender, recipient=m.recipient, round=m.round, payload=b"\x01garbage")
        return m

    bad = {p: relay.dkg("bad", FROST, PAIR, 2, p) for p in PAIR}
    good = {p: relay.dkg("good", FROST, PAIR, 2, p) for p in PAIR}
    bad_run, good_run = await asyncio.gather(relay.run(engines, bad, garble), relay.run(engines, good))
    assert bad_run["alice"].state == relay.FAILED
    assert list(bad_run["alice"].culprits) == ["bob"]
    relay.results(good_run)
    assert all(e.running() == 0 or e.running() == 1 for e in engines.values())


async def test_policy_approval(tmp_path: Path, prime_source: FixtureSource) -> None:
    policy_key = ec.generate_private_key(ec.SECP256R1())
    engines = relay.make_engines(PAIR, tmp_path, prime_source)
    try:
        key = relay.results(await relay.run(engines, {p: relay.dkg("pk", FROST, PAIR, 2, p) for p in PAIR}))
        for e in engines.values():  # configured after the DKG: key generation needs no approval
            e.policy = PolicyVerifier(policy_key.public_key())
        kid = key["alice"].key_id
        message = b"pay 1 coin to bob"

        def approve(
            sid: str, msg: bytes = message, signer: ec.EllipticCurvePrivateKey = policy_key
        ) -> pb.PolicyApproval:
            expires = int(time.time()) + 60
            signed = approval_message(ApprovalSubject(kid, "sha256", frost_digest(msg), (), "", sid), expires)
            return encode_approval(expires, signer.sign(signed, ec.ECDSA(hashes.SHA256())))

        def start(sid: str, p: str, approval: pb.PolicyApproval | None) -> pb.SessionStart:
            return relay.sign(sid, FROST, PAIR, p, key[p].sealed_share, message, approval=approval)

        assert "required" in await rejected(
            engines["alice"].start(start("s0", "alice", None)), pb.ERROR_CODE_PERMISSION_DENIED
        )
        forged = approve("s1", signer=ec.generate_private_key(ec.SECP256R1()))
        assert "does not verify" in await rejected(
            engines["alice"].start(start("s1", "alice", forged)), pb.ERROR_CODE_PERMISSION_DENIED
        )
        other_message = approve("s2", msg=b"pay 100 coins to mallory")
        await rejected(engines["alice"].start(start("s2", "alice", other_message)), pb.ERROR_CODE_PERMISSION_DENIED)
        other_session = approve("s3-other")
        await rejected(engines["alice"].start(start("s3", "alice", other_session)), pb.ERROR_CODE_PERMISSION_DENIED)
        await rejected(
            engines["alice"].start(start("s4", "alice", pb.PolicyApproval(version=1))), pb.ERROR_CODE_PERMISSION_DENIED
        )
        assert engines["alice"].running() == 0
        good = approve("s5")
        out = relay.results(await relay.run(engines, {p: start("s5", p, good) for p in PAIR}))
        VerifyKey(key["alice"].public_key).verify(message, out["alice"].signature)
        # replayed to the same enclave under a new session id: refused (the session id is signed)
        await rejected(engines["alice"].start(start("s6", "alice", good)), pb.ERROR_CODE_PERMISSION_DENIED)
    finally:
        for e in engines.values():
            e.close()


async def test_gg20_policy_digest(gg20_2of2: Key) -> None:
    policy_key = ec.generate_private_key(ec.SECP256R1())
    digest = hashlib.sha256(b"policy on ecdsa").digest()
    path = (1, 2)
    expires = int(time.time()) + 60
    signed = approval_message(ApprovalSubject(gg20_2of2.key_id, "raw", digest, path, "", "gg20-pol"), expires)
    approval = encode_approval(expires, policy_key.sign(signed, ec.ECDSA(hashes.SHA256())))
    saved = {p: e.policy for p, e in gg20_2of2.engines.items()}
    try:
        for e in gg20_2of2.engines.values():
            e.policy = PolicyVerifier(policy_key.public_key())
        starts = {
            p: relay.sign(
                "gg20-pol", GG20, gg20_2of2.parties, p, gg20_2of2.shares[p], digest, path=path, approval=approval
            )
            for p in gg20_2of2.parties
        }
        out = relay.results(await relay.run(gg20_2of2.engines, starts))
        assert len(out["alice"].signature) == 65
        # same approval, another path: refused before anything is computed
        with pytest.raises(RequestRejected) as exc:
            await gg20_2of2.engines["alice"].start(
                relay.sign(
                    "gg20-pol2",
                    GG20,
                    gg20_2of2.parties,
                    "alice",
                    gg20_2of2.shares["alice"],
                    digest,
                    path=(1, 3),
                    approval=approval,
                )
            )
        assert exc.value.code == pb.ERROR_CODE_PERMISSION_DENIED
    finally:
        for p, e in gg20_2of2.engines.items():
            e.policy = saved[p]


async def test_pings_answered_while_a_session_computes(gg20_2of3: Key) -> None:
    engine = gg20_2of3.engines["alice"]
    service = EnclaveService(sessions=engine, preparams=engine)
    pair = ("alice", "bob")
    starts = {p: relay.presign("busy", pair, p, gg20_2of3.shares[p]) for p in pair}
    work = asyncio.create_task(relay.run(gg20_2of3.engines, starts))
    worst = 0.0
    while not work.done():
        t = time.perf_counter()
        r = await service.handle(pb.Request(request_id=1, ping=pb.PingRequest()))
        worst = max(worst, time.perf_counter() - t)
        assert r.HasField("ping")
        await asyncio.sleep(0.01)
    relay.results(await work)
    assert worst < 0.25, f"a ping waited {worst:.3f}s"
    info = await service.handle(pb.Request(request_id=2, info=pb.InfoRequest()))
    assert set(info.info.protocols) == {GG20, FROST, pb.PROTOCOL_FROST_SECP256K1, pb.PROTOCOL_FROST_SECP256K1_TR}
    assert info.info.preparams_ready == gg20_2of3.engines["alice"].pool.ready()
