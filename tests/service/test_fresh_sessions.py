"""Issue 13, item 5: a session id runs once on a node, across restarts of its host and enclave.

The attack, step by step through the real processes: a relay records a finished signing
session's traffic (the client's HMAC'd messages), the node restarts (SIGKILL of the signer and
its enclave: memory gone, only the store survives), and the relay starts the same session id
again and replays the old messages. Before, the new session accepted them and then failed
"broadcast inconsistency" blaming the honest client. Now the start is refused (ALREADY_EXISTS),
every replayed message is refused before it reaches the enclave (FAILED_PRECONDITION), nothing
is blamed, and the node keeps signing fresh sessions. On SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc
import pytest
from grpc_health.v1 import health_pb2

from mpc.v1 import signer_pb2 as pb
from signer.client.client import RemoteParty, SignerClient
from signer.client.relay import Relay
from signer.client.spec import SessionSpec
from tests.conftest import wait_for
from tests.service.conftest import FROST, all_ok, check_signature, dkg, sid, sign

PARTIES = ("client", "signer-a")


class RecordingParty(RemoteParty):
    """The relay's view of the signer: what it sent there, as it sent it (HMAC'd by the client)."""

    def __init__(self, client: SignerClient, party_id: str, sent: list[list[pb.ProtocolMessage]]) -> None:
        super().__init__(client, party_id)
        self.sent = sent

    async def start(self, spec: SessionSpec, initial: Sequence[pb.ProtocolMessage] = ()) -> list[pb.ProtocolMessage]:
        self.sent.append([pb.ProtocolMessage().FromString(m.SerializeToString()) for m in initial])
        return await super().start(spec, initial)

    async def deliver(self, messages: Sequence[pb.ProtocolMessage]) -> list[pb.ProtocolMessage]:
        self.sent.append([pb.ProtocolMessage().FromString(m.SerializeToString()) for m in messages])
        return await super().deliver(messages)


class Recorder:
    def __init__(self, client: SignerClient) -> None:
        self.client = client
        self.sent: list[list[pb.ProtocolMessage]] = []

    def party(self, party_id: str) -> RecordingParty:
        return RecordingParty(self.client, party_id, self.sent)


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def test_restart_and_reuse_a_finished_session_id(store, start_node, local, connect) -> None:  # type: ignore[no-untyped-def]
    node = start_node("signer-a", store=store)
    relay = Relay({"client": local, "signer-a": connect(node)})
    key = await dkg(relay, FROST, PARTIES, 2)

    session_id = sid("sign")
    spec = SessionSpec("sign", session_id, FROST, PARTIES, key_id=key.key_id, message=b"pay 1")  # type: ignore[arg-type]
    recorder = Recorder(connect(node))
    results = all_ok(await Relay({"client": local, "signer-a": recorder}).run(spec))
    check_signature(FROST, key.public_key, b"pay 1", results["signer-a"].sign)
    old = [batch for batch in recorder.sent if batch]
    assert old, "the relay carried the client's messages to the signer"

    audit = "SELECT result FROM audit WHERE session_id = ?"
    wait_for(lambda: bool(node.raw_sql(audit, (session_id,))), 5, "the audit record (written in the background)")
    node.stop(crash=True)  # the signer and its enclave lose everything but the store
    node.start()
    signer = connect(node)

    # The same session id started again, with the old first messages: refused outright.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await signer.party("signer-a").start(spec, old[0])
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "already used on this node" in (err.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await signer.party("signer-a").start(spec)
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS

    # Every old message replayed: refused before it reaches the enclave.
    for batch in old:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await signer.submit(batch)
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION, err.value.details()
        assert "already run on this node" in (err.value.details() or "")

    # Nobody was blamed: the only record of the session is its success before the restart.
    assert node.raw_sql(audit, (session_id,)) == [("ok",)]
    assert "broadcast inconsistency" not in node.enclave.log() + node.signer.log()
    assert node.raw_sql("SELECT kind FROM session_ids WHERE session_id = ?", (session_id,)) == [("sign",)]

    # The honest parties are unharmed: a fresh session signs.
    relay = Relay({"client": local, "signer-a": signer})
    check_signature(FROST, key.public_key, b"pay 2", await sign(relay, FROST, PARTIES, key.key_id, b"pay 2"))


async def test_a_start_the_enclave_never_saw_keeps_its_id_free(start_node, local, connect) -> None:  # type: ignore[no-untyped-def]
    node = start_node("signer-a")
    relay = Relay({"client": local, "signer-a": connect(node)})
    key = await dkg(relay, FROST, PARTIES, 2)
    spec = SessionSpec("sign", sid("sign"), FROST, PARTIES, key_id="0" * 64, message=b"x")  # type: ignore[arg-type]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await connect(node).party("signer-a").start(spec)  # unknown key: refused before the enclave
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    retry = SessionSpec("sign", spec.session_id, FROST, PARTIES, key_id=key.key_id, message=b"x")  # type: ignore[arg-type]
    results = all_ok(await relay.run(retry))
    check_signature(FROST, key.public_key, b"x", results["signer-a"].sign)


async def test_a_rolled_back_store_meets_the_enclaves_own_record(start_node, local, connect) -> None:  # type: ignore[no-untyped-def]
    """A host that rolls its store back (forgets the id) and restarts still meets the enclave's own,
    bounded record of this boot's sessions. (Across an enclave restart too, that record is gone:
    the documented limit of what the enclave alone can enforce.)"""
    node = start_node("signer-a")
    relay = Relay({"client": local, "signer-a": connect(node)})
    key = await dkg(relay, FROST, PARTIES, 2)
    session_id = sid("sign")
    spec = SessionSpec("sign", session_id, FROST, PARTIES, key_id=key.key_id, message=b"once")  # type: ignore[arg-type]
    all_ok(await relay.run(spec))

    node.signer.stop()
    node.raw_sql("DELETE FROM session_ids WHERE session_id = ?", (session_id,))
    node.signer.start()
    node.signer.wait_health(health_pb2.HealthCheckResponse.SERVING, timeout=20)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await connect(node).party("signer-a").start(spec)
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert f"session {session_id} already exists" in (err.value.details() or "")
