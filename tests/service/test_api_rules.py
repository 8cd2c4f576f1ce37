"""Bad input over the API, session rules (idempotent starts, finished sessions, deadlines, the
session cap): each case gets its status, and a refused request changes no state (the session id
stays unknown, no key or presignature is stored or consumed)."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from mpc.v1 import signer_pb2 as pb
from signer.client.relay import Relay
from signer.client.spec import SessionSpec
from tests.service.conftest import FROST, GG20, KECCAK, check_signature, dkg, message_for, presign, sign

PARTIES = ("client", "signer-a")
Code = grpc.StatusCode


@pytest.fixture(scope="module")
def node(start_node):  # type: ignore[no-untyped-def]
    return start_node("signer-a")


async def expect(code: grpc.StatusCode, call, contains: str = "") -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    assert err.value.code() == code, err.value.details()
    assert contains in (err.value.details() or "")


def dkg_request(session_id: str, **kw) -> pb.StartDKGRequest:  # type: ignore[no-untyped-def]
    base = dict(session_id=session_id, protocol=FROST, threshold=2, party_ids=list(PARTIES), self_party_id="signer-a")
    base.update(kw)
    return pb.StartDKGRequest(**base)  # type: ignore[arg-type]


def sign_request(session_id: str, key_id: str, **kw) -> pb.StartSignRequest:  # type: ignore[no-untyped-def]
    base = dict(
        session_id=session_id,
        protocol=GG20,
        key_id=key_id,
        message=b"\x01" * 32,
        party_ids=list(PARTIES),
        self_party_id="signer-a",
    )
    base.update(kw)
    return pb.StartSignRequest(**base)  # type: ignore[arg-type]


def key_count(node) -> int:  # type: ignore[no-untyped-def]
    return int(node.raw_sql("SELECT count(*) FROM keys")[0][0])


async def test_bad_starts_change_nothing(node, local, connect) -> None:  # type: ignore[no-untyped-def]
    client = connect(node)
    relay = Relay({"client": local, "signer-a": client})
    key = await dkg(relay, GG20, PARTIES, 2)
    keys_before = key_count(node)
    bad_dkg = {
        "unknown protocol": dkg_request("bad-1", protocol=7),
        "unspecified protocol": dkg_request("bad-2", protocol=0),
        "threshold above n": dkg_request("bad-3", threshold=3),
        "threshold below 2": dkg_request("bad-4", threshold=1),
        "duplicate party ids": dkg_request("bad-5", party_ids=["client", "signer-a", "client"]),
        "own id missing": dkg_request("bad-6", self_party_id="signer-z"),
        "bad session id": dkg_request("bad 7"),
    }
    for case, request in bad_dkg.items():
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await client.start_dkg(request)
        assert err.value.code() == Code.INVALID_ARGUMENT, case
    bad_sign = {
        "wrong digest length": (Code.INVALID_ARGUMENT, sign_request("bad-s1", key.key_id, message=b"\x01" * 31)),
        "unknown key": (Code.NOT_FOUND, sign_request("bad-s2", "ab" * 32)),
        "malformed key id": (Code.INVALID_ARGUMENT, sign_request("bad-s3", "not-hex")),
        "protocol of another key": (Code.INVALID_ARGUMENT, sign_request("bad-s4", key.key_id, protocol=FROST)),
        "signer not of the key": (
            Code.INVALID_ARGUMENT,
            sign_request("bad-s5", key.key_id, party_ids=["stranger", "signer-a"]),
        ),
        "own id missing": (Code.INVALID_ARGUMENT, sign_request("bad-s6", key.key_id, self_party_id="client")),
        "unknown presignature": (
            Code.FAILED_PRECONDITION,
            sign_request("bad-s7", key.key_id, presignature_id="cd" * 32),
        ),
    }
    for case, (code, request) in bad_sign.items():
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await client.start_sign(request)
        assert err.value.code() == code, (case, err.value.details())
    await expect(
        Code.INVALID_ARGUMENT,
        client.start_presign(
            pb.StartPresignRequest(
                session_id="bad-p1",
                protocol=FROST,
                key_id=key.key_id,
                party_ids=list(PARTIES),
                self_party_id="signer-a",
                count=101,  # a FROST batch holds at most 100 nonces
            )
        ),
    )
    # Nothing of any of them exists: no session, no key, and the key still signs.
    for session_id in [r.session_id for r in bad_dkg.values() if r.session_id != "bad 7"]:
        await expect(Code.NOT_FOUND, client.dkg_status(session_id))
    for _code, request in bad_sign.values():
        await expect(Code.NOT_FOUND, client.sign_status(request.session_id))
    assert key_count(node) == keys_before
    message = message_for(GG20, b"still signs")
    await sign(relay, GG20, PARTIES, key.key_id, message)


async def test_idempotent_start_and_conflicting_reuse(node, connect) -> None:  # type: ignore[no-untyped-def]
    client = connect(node)
    first = await client.start_dkg(dkg_request("idem-1"))
    again = await client.start_dkg(dkg_request("idem-1"))
    assert again == first and first.state == pb.SESSION_STATE_RUNNING and len(first.outgoing) > 0
    await expect(Code.ALREADY_EXISTS, client.start_dkg(dkg_request("idem-1", protocol=GG20)), "different request")
    status = await client.dkg_status("idem-1")
    assert status.state == pb.SESSION_STATE_RUNNING


async def test_submissions_bad_finished_unknown(node, local, connect) -> None:  # type: ignore[no-untyped-def]
    client = connect(node)
    response = await client.start_dkg(dkg_request("sub-1"))
    assert response.state == pb.SESSION_STATE_RUNNING

    def message(seq: int, payload: bytes, session_id: str = "sub-1") -> pb.ProtocolMessage:
        m = pb.ProtocolMessage(session_id=session_id, sender="client", recipient="", round=1, seq=seq, payload=payload)
        return client.sign_outgoing(m)

    await expect(Code.NOT_FOUND, client.submit([message(1, b"x", session_id="nobody")]))
    await expect(Code.NOT_FOUND, client.dkg_status("nobody"))
    oversized = message(1, b"\x00" * (1024 * 1024 + 1))
    await expect(Code.INVALID_ARGUMENT, client.submit([oversized]), "payload larger")
    forged = message(1, b"x")
    forged.payload = b"y"  # changed after the HMAC
    await expect(Code.UNAUTHENTICATED, client.submit([forged]), "HMAC")
    await expect(Code.INVALID_ARGUMENT, client.submit([]))
    assert (await client.dkg_status("sub-1")).state == pb.SESSION_STATE_RUNNING  # none of that touched it

    # A malformed protocol payload from an authenticated party aborts the session naming it.
    result = await client.submit([message(1, b"\x00garbage")])
    assert result.state == pb.SESSION_STATE_FAILED and list(result.failure.culprits) == ["client"]
    status = await client.dkg_status("sub-1")
    assert status.state == pb.SESSION_STATE_FAILED and list(status.failure.culprits) == ["client"]
    await expect(Code.FAILED_PRECONDITION, client.submit([message(2, b"late")]), "already finished")

    # Messages for a session that finished successfully.
    relay = Relay({"client": local, "signer-a": client})
    key = await dkg(relay, FROST, PARTIES, 2)
    assert len(key.key_id) == 64
    outcomes = await relay.run(SessionSpec("sign", "done-1", FROST, PARTIES, key_id=key.key_id, message=b"m"))
    assert all(o.ok for o in outcomes.values())
    await expect(Code.FAILED_PRECONDITION, client.submit([message(100, b"more", session_id="done-1")]))
    status = await client.sign_status("done-1")
    assert status.state == pb.SESSION_STATE_DONE and len(status.result.signature) == 64


async def test_presignature_is_consumed_once(node, local, connect) -> None:  # type: ignore[no-untyped-def]
    client = connect(node)
    relay = Relay({"client": local, "signer-a": client})
    key = await dkg(relay, GG20, PARTIES, 2)
    presignature_id = await presign(relay, PARTIES, key.key_id)
    rows = node.raw_sql("SELECT state FROM presignatures WHERE presig_id = ?", (presignature_id,))
    assert rows == [("available",)]
    # Two signing sessions race for the same named presignature: exactly one gets it.
    requests = [
        sign_request(f"race-{i}", key.key_id, presignature_id=presignature_id, message=b"race", message_hash=KECCAK)
        for i in range(2)
    ]
    outcomes = await asyncio.gather(*(client.start_sign(r) for r in requests), return_exceptions=True)
    winners = [o for o in outcomes if isinstance(o, pb.StartSignResponse)]
    losers = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
    assert len(winners) == 1 and len(losers) == 1
    assert losers[0].code() == Code.FAILED_PRECONDITION
    assert node.raw_sql("SELECT state FROM presignatures WHERE presig_id = ?", (presignature_id,)) == [("consumed",)]


async def test_deadline_and_session_cap(start_node, connect) -> None:  # type: ignore[no-untyped-def]
    node = start_node(
        "signer-a", sessions={"deadline_seconds": 1.0, "sweep_interval_seconds": 0.2, "max_concurrent": 2}
    )
    client = connect(node)
    await client.start_dkg(dkg_request("slow-1"))
    await client.start_dkg(dkg_request("slow-2"))
    await expect(Code.RESOURCE_EXHAUSTED, client.start_dkg(dkg_request("slow-3")), "too many sessions")

    async def failed() -> bool:
        return (await client.dkg_status("slow-1")).state == pb.SESSION_STATE_FAILED

    for _ in range(50):
        if await failed():
            break
        await asyncio.sleep(0.1)
    status = await client.dkg_status("slow-1")
    assert status.state == pb.SESSION_STATE_FAILED and status.failure.reason == "session deadline exceeded"
    message = client.sign_outgoing(
        pb.ProtocolMessage(session_id="slow-1", sender="client", round=1, seq=1, payload=b"x")
    )
    await expect(Code.FAILED_PRECONDITION, client.submit([message]), "deadline")
    # Expired sessions no longer count against the cap.
    response = await client.start_dkg(dkg_request("slow-3"))
    assert response.state == pb.SESSION_STATE_RUNNING


async def test_start_with_initial_messages(node, local, connect) -> None:  # type: ignore[no-untyped-def]
    """A start may carry the other parties' first messages: checked like a submit, all or nothing."""
    client = connect(node)
    relay = Relay({"client": local, "signer-a": client})
    key = await dkg(relay, GG20, PARTIES, 2)
    presignature_id = await presign(relay, PARTIES, key.key_id)
    # The local party starts first; its online-round message goes with the signer's start.
    digest = message_for(GG20, b"one call")
    spec = SessionSpec(
        "sign",
        "one-call",
        GG20,
        PARTIES,
        key_id=key.key_id,
        message=b"one call",
        presignature_id=presignature_id,
        message_hash=KECCAK,
    )
    mine = local.party("client")
    first = await mine.start(spec)
    request = sign_request(
        "one-call",
        key.key_id,
        message=b"one call",
        presignature_id=presignature_id,
        messages=first,
        message_hash=KECCAK,
    )

    forged = pb.StartSignRequest()
    forged.CopyFrom(request)
    forged.messages[0].payload = forged.messages[0].payload + b"x"
    await expect(Code.UNAUTHENTICATED, client.start_sign(forged), "HMAC")
    elsewhere = pb.StartSignRequest()
    elsewhere.CopyFrom(request)
    elsewhere.session_id = "one-call-other"
    await expect(Code.INVALID_ARGUMENT, client.start_sign(elsewhere), "session being started")
    await expect(Code.NOT_FOUND, client.sign_status("one-call"))  # neither started anything
    assert node.raw_sql("SELECT state FROM presignatures WHERE presig_id = ?", (presignature_id,)) == [("available",)]

    response = await client.start_sign(request)
    assert response.state == pb.SESSION_STATE_DONE  # one call: the online round completed in the start
    check_signature(GG20, key.public_key, digest, response.result)
    assert response.result.presignature_id == presignature_id
    again = await client.start_sign(request)  # idempotent, result included
    assert again == response
