"""Host sessions against a real enclave channel (in-process FrameServer on a unix socket) whose
EnclaveService has a toy SessionEngine plugged in: the same seam the protocol engines use.

The toy engine is a test double for the protocol, not a protocol: it answers a start with one
broadcast, a delivered b"finish" with DONE, and a delivered b"bad" with FAILED naming the sender.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from enclave.errors import RequestRejected
from enclave.service import EnclaveService
from enclave.transport.server import FrameServer
from mpc.v1 import enclave_pb2 as epb
from mpc.v1 import signer_pb2 as pb
from signer.auth.envelope import HmacKeyRing
from signer.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unauthenticated,
)
from signer.link.client import EnclaveClient, EnclaveTimeout, parse_address
from signer.sessions import convert
from signer.sessions.registry import Sessions

KEYS = HmacKeyRing({"k": b"k" * 32}, "k")


class ToyEngine:
    def __init__(self) -> None:
        self.sessions: dict[str, epb.SessionStart] = {}
        self.delay = 0.0

    def protocols(self) -> Sequence[epb.Protocol]:
        return [epb.PROTOCOL_FROST_ED25519]

    async def start(self, request: epb.SessionStart) -> epb.SessionUpdate:
        if request.session_id in self.sessions:
            raise RequestRejected(epb.ERROR_CODE_ALREADY_EXISTS, "session exists")
        self.sessions[request.session_id] = request
        update = epb.SessionUpdate(
            session_id=request.session_id,
            state=epb.SESSION_STATE_RUNNING,
            outgoing=[epb.EnclaveMessage(round=1, payload=b"commitments")],
        )
        if request.messages:  # applied right after the start, as the real engine does
            after = await self.deliver(epb.SessionDeliver(session_id=request.session_id, messages=request.messages))
            first = list(update.outgoing) + list(after.outgoing)
            del after.outgoing[:]
            after.outgoing.extend(first)
            return after
        return update

    async def deliver(self, request: epb.SessionDeliver) -> epb.SessionUpdate:
        await asyncio.sleep(self.delay)
        start = self.sessions.get(request.session_id)
        if start is None:
            raise RequestRejected(epb.ERROR_CODE_NOT_FOUND, "no session")
        sid = request.session_id
        for message in request.messages:
            if message.payload == b"bad":
                return epb.SessionUpdate(
                    session_id=sid, state=epb.SESSION_STATE_FAILED, culprits=[message.sender], reason="invalid share"
                )
            if message.payload == b"finish":
                result = epb.SessionResult(
                    key_id="ab" * 32,
                    public_key=b"\x02" + b"\x11" * 32,
                    signature=b"\x01" * 32 + b"\x02" * 32 + b"\x01",
                    recovery_id=1,
                )
                if start.kind == epb.SESSION_KIND_DKG:
                    result.sealed_share.CopyFrom(
                        epb.SealedBlob(kind=epb.SEALED_BLOB_KIND_KEY_SHARE, id="ab" * 32, data=b"sealed")
                    )
                return epb.SessionUpdate(session_id=sid, state=epb.SESSION_STATE_DONE, result=result)
        return epb.SessionUpdate(
            session_id=sid,
            state=epb.SESSION_STATE_RUNNING,
            outgoing=[
                epb.EnclaveMessage(recipient=m.sender, round=m.round + 1, payload=b"reply") for m in request.messages
            ],
        )

    async def abort(self, request: epb.SessionAbort) -> epb.SessionUpdate:
        self.sessions.pop(request.session_id, None)
        return epb.SessionUpdate(session_id=request.session_id, state=epb.SESSION_STATE_FAILED, reason=request.reason)


@pytest.fixture
async def channel(tmp_path: Path) -> AsyncIterator[tuple[ToyEngine, EnclaveClient]]:
    engine = ToyEngine()
    server = FrameServer(EnclaveService(sessions=engine).handle)
    address = parse_address(f"unix://{tmp_path}/e.sock")
    await server.start(address)
    client = EnclaveClient(address, call_timeout=0.5)
    yield engine, client
    await client.close()
    await server.close()


def sessions_for(client: EnclaveClient, persisted: list | None = None, **kw: float) -> Sessions:
    async def persist(session, result) -> None:  # type: ignore[no-untyped-def]
        assert persisted is not None
        persisted.append((session.session_id, result.sealed_share.data))

    return Sessions(
        client,
        KEYS,
        deadline_seconds=kw.get("deadline", 60),
        max_concurrent=int(kw.get("max", 10)),
        persist=persist if persisted is not None else None,
    )


def dkg(session_id: str = "dkg-1") -> pb.StartDKGRequest:
    return pb.StartDKGRequest(
        session_id=session_id,
        protocol=pb.PROTOCOL_FROST_ED25519,
        threshold=2,
        party_ids=["client", "signer"],
        self_party_id="signer",
    )


def incoming(session_id: str, seq: int, payload: bytes, sender: str = "client") -> pb.ProtocolMessage:
    message = pb.ProtocolMessage(
        session_id=session_id, sender=sender, recipient="signer", round=1, seq=seq, payload=payload
    )
    KEYS.sign(message)
    return message


async def start(sessions: Sessions, request: pb.StartDKGRequest):  # type: ignore[no-untyped-def]
    return await sessions.start(convert.dkg_start(request), convert.fingerprint(request))


async def test_start_submit_done_with_signed_outgoing_messages(channel) -> None:
    _engine, client = channel
    persisted: list = []
    sessions = sessions_for(client, persisted)
    session, outgoing = await start(sessions, dkg())
    assert session.state == pb.SESSION_STATE_RUNNING
    assert [(m.sender, m.recipient, m.round, m.seq, m.payload) for m in outgoing] == [
        ("signer", "", 1, 1, b"commitments")
    ]
    KEYS.verify_all(outgoing)  # the caller can check the signer's HMACs

    session, outgoing = await sessions.submit([incoming("dkg-1", 1, b"share")])
    assert [(m.recipient, m.round, m.seq) for m in outgoing] == [("client", 2, 2)]
    KEYS.verify_all(outgoing)

    session, outgoing = await sessions.submit([incoming("dkg-1", 2, b"finish")])
    assert session.state == pb.SESSION_STATE_DONE and outgoing == []
    assert persisted == [("dkg-1", b"sealed")]  # stored before DONE was reported
    result = sessions.public_result(session)
    assert result is not None and result.dkg.key_id == "ab" * 32 and list(result.dkg.party_ids) == ["client", "signer"]
    with pytest.raises(FailedPrecondition):
        await sessions.submit([incoming("dkg-1", 3, b"late")])


async def test_dkg_without_a_store_fails_rather_than_report_an_unstored_key(channel) -> None:
    _engine, client = channel
    sessions = sessions_for(client)
    await start(sessions, dkg())
    session, _ = await sessions.submit([incoming("dkg-1", 1, b"finish")])
    assert session.state == pb.SESSION_STATE_FAILED and "key store" in session.reason


async def test_idempotent_start_and_conflicting_reuse(channel) -> None:
    _engine, client = channel
    sessions = sessions_for(client, [])
    first = await start(sessions, dkg())
    again = await start(sessions, dkg())
    assert again[0] is first[0] and again[1] == first[1]
    different = dkg()
    different.threshold = 2
    different.party_ids.append("third")
    with pytest.raises(AlreadyExists):
        await start(sessions, different)


async def test_concurrent_identical_starts_get_the_same_answer(channel) -> None:
    _engine, client = channel
    sessions = sessions_for(client, [])
    (a, out_a), (b, out_b) = await asyncio.gather(start(sessions, dkg()), start(sessions, dkg()))
    assert a is b and out_a == out_b and len(out_a) == 1


async def test_protocol_fault_names_the_culprit(channel) -> None:
    _engine, client = channel
    sessions = sessions_for(client, [])
    await start(sessions, dkg())
    session, _ = await sessions.submit([incoming("dkg-1", 1, b"bad")])
    assert session.state == pb.SESSION_STATE_FAILED
    failure = session.failure()
    assert failure is not None and list(failure.culprits) == ["client"] and failure.reason == "invalid share"


async def test_submission_rules(channel) -> None:
    _engine, client = channel
    sessions = sessions_for(client, [])
    await start(sessions, dkg())
    with pytest.raises(NotFound):
        await sessions.submit([incoming("other", 1, b"x")])
    with pytest.raises(InvalidArgument, match="sender"):
        await sessions.submit([incoming("dkg-1", 1, b"x", sender="signer")])  # from ourselves
    with pytest.raises(InvalidArgument, match="sender"):
        await sessions.submit([incoming("dkg-1", 1, b"x", sender="stranger")])
    # the rejected submissions consumed no sequence number
    session, _ = await sessions.submit([incoming("dkg-1", 1, b"x")])
    assert session.state == pb.SESSION_STATE_RUNNING
    with pytest.raises(AlreadyExists):
        await sessions.submit([incoming("dkg-1", 1, b"x")])


async def test_session_cap_and_deadline(channel) -> None:
    _engine, client = channel
    sessions = sessions_for(client, [], max=1, deadline=0.2)
    await start(sessions, dkg("a"))
    with pytest.raises(ResourceExhausted):
        await start(sessions, dkg("b"))
    await asyncio.sleep(0.3)
    assert sessions.get("a", epb.SESSION_KIND_DKG).reason == "session deadline exceeded"
    await start(sessions, dkg("b"))  # the expired one no longer counts


async def test_enclave_timeout_fails_the_session(channel) -> None:
    engine, client = channel
    sessions = sessions_for(client, [])
    await start(sessions, dkg())
    engine.delay = 1
    with pytest.raises(EnclaveTimeout):
        await sessions.submit([incoming("dkg-1", 1, b"x")])
    assert sessions.get("dkg-1", epb.SESSION_KIND_DKG).state == pb.SESSION_STATE_FAILED


async def test_info_lists_the_engine_protocols(channel) -> None:
    _engine, client = channel
    info = await client.info()
    assert list(info.protocols) == [epb.PROTOCOL_FROST_ED25519]


async def test_hmac_keys_bound_to_parties(channel) -> None:
    """With hmac.senders, a start as a party this node's key may not sign for is refused, and a
    message from a key bound to another party is refused; neither changes any state."""
    _engine, client = channel
    keys = {"signer-key": b"s" * 32, "client-key": b"c" * 32}
    bindings = {"signer-key": frozenset({"signer"}), "client-key": frozenset({"client"})}
    ring = HmacKeyRing(keys, "signer-key", senders=bindings)
    sessions = Sessions(client, ring, deadline_seconds=60, max_concurrent=10)

    as_client = dkg("dkg-x")
    as_client.self_party_id = "client"
    with pytest.raises(FailedPrecondition, match="may not sign for party 'client'"):
        await start(sessions, as_client)
    assert len(sessions) == 0

    await start(sessions, dkg("dkg-x"))
    client_ring = HmacKeyRing(keys, "client-key", senders=bindings)
    good = pb.ProtocolMessage(session_id="dkg-x", sender="client", recipient="signer", round=1, seq=1, payload=b"a")
    client_ring.sign(good)
    # The client's key writing as a third party of the session is refused before anything else.
    forged = pb.ProtocolMessage(session_id="dkg-x", sender="signer", recipient="signer", round=1, seq=2, payload=b"b")
    client_ring.sign(forged)
    with pytest.raises(Unauthenticated, match="may sign for"):
        await sessions.submit([forged])
    _session, outgoing = await sessions.submit([good])
    assert [m.recipient for m in outgoing] == ["client"]


async def test_local_party_refuses_to_act_for_a_party_its_key_may_not_sign_for() -> None:
    from signer.client.local import LocalNode
    from signer.client.spec import SessionSpec

    keys = {"client-key": b"c" * 32}
    node = LocalNode(HmacKeyRing(keys, "client-key", senders={"client-key": frozenset({"client"})}))
    try:
        spec = SessionSpec("dkg", "dkg-l", pb.PROTOCOL_FROST_ED25519, ("client", "signer"), threshold=2)
        with pytest.raises(FailedPrecondition, match="may not sign for party 'signer'"):
            await node.party("signer").start(spec)
        assert node.engine.running() == 0
    finally:
        await node.close()


async def test_local_party_start_refused_leaves_its_messages_usable_for_a_retry() -> None:
    from enclave.engine import Engine
    from signer.client.local import LocalNode
    from signer.client.spec import SessionSpec

    node = LocalNode(KEYS)
    try:
        spec = SessionSpec("dkg", "dkg-r", pb.PROTOCOL_FROST_ED25519, ("client", "signer"), threshold=2)
        first = pb.ProtocolMessage(session_id="dkg-r", sender="client", recipient="", round=1, seq=1, payload=b"x")
        KEYS.sign(first)
        real_start = Engine.start

        async def refuse(self: Engine, request: epb.SessionStart) -> epb.SessionUpdate:
            raise RequestRejected(epb.ERROR_CODE_UNAVAILABLE, "busy")

        Engine.start = refuse  # type: ignore[method-assign]
        try:
            with pytest.raises(FailedPrecondition, match="busy"):
                await node.party("signer").start(spec, [first])
        finally:
            Engine.start = real_start  # type: ignore[method-assign]
        # The same message again is not a replay: the refused start never used it (the engine
        # then judges the payload, which is not a real round-1 package).
        party = node.party("signer")
        await party.start(spec, [first])
        assert party.outcome.state == pb.SESSION_STATE_FAILED
        assert party.outcome.failure is not None and list(party.outcome.failure.culprits) == ["client"]
    finally:
        await node.close()


class MemoryIds:
    """The sessions layer's record of used ids, in memory (the store's is tested in tests/storage)."""

    def __init__(self) -> None:
        self.taken: set[str] = set()
        self.claims: list[str] = []

    async def claim(self, session_id: str, kind: int) -> bool:
        self.claims.append(session_id)
        if session_id in self.taken:
            return False
        self.taken.add(session_id)
        return True

    async def release(self, session_id: str) -> None:
        self.taken.discard(session_id)

    async def used(self, session_id: str) -> bool:
        return session_id in self.taken


def sign_start(session_id: str, presignature_id: str) -> epb.SessionStart:
    return epb.SessionStart(
        session_id=session_id,
        kind=epb.SESSION_KIND_SIGN,
        protocol=epb.PROTOCOL_FROST_ED25519,
        party_ids=["client", "signer"],
        self_party_id="signer",
        key_id="ab" * 32,
        message=b"m",
        presignature_id=presignature_id,
    )


async def test_a_start_that_consumes_a_presignature_is_claimed_by_its_prepare(channel) -> None:
    """Issue 17: the one-call signing path claims its id in the presignature's transaction (the
    prepare hook); the registry then claims nothing itself, and sends nothing unclaimed."""
    engine, client = channel
    ids = MemoryIds()
    sessions = Sessions(client, KEYS, deadline_seconds=60, max_concurrent=10, ids=ids)  # type: ignore[arg-type]

    async def forgets(session) -> None:  # type: ignore[no-untyped-def]
        pass  # a prepare hook that does not claim

    with pytest.raises(RuntimeError, match="did not claim"):
        await sessions.start(sign_start("s-1", "nonce-1"), b"f1", prepare=forgets)
    assert "s-1" not in engine.sessions and ids.claims == []

    async def claims(session) -> None:  # type: ignore[no-untyped-def]
        ids.taken.add(session.session_id)  # as Store.claim_and_consume does, with the take
        session.claimed = True

    session, _ = await sessions.start(sign_start("s-2", "nonce-2"), b"f2", prepare=claims)
    assert session.state == pb.SESSION_STATE_RUNNING and "s-2" in engine.sessions
    assert ids.claims == []  # the registry did not claim it a second time
    # a start without a presignature is still claimed by the registry, before its prepare
    session, _ = await sessions.start(sign_start("s-3", ""), b"f3", prepare=forgets)
    assert ids.claims == ["s-3"] and "s-3" in engine.sessions
