"""Host state a caller can make grow is bounded, against real signer nodes and enclave processes
over mTLS.

- Replay state lives in the session it protects: a validly HMAC'd message for a session the node
  does not hold is NOT_FOUND before anything is recorded, so a flood of them (before: 64,000
  filled the node-wide table and every new session's first message was refused) leaves new
  sessions starting; a replayed sequence number in a running session is still refused.
"""

from __future__ import annotations

import grpc
import pytest

from mpc.v1 import signer_pb2 as pb
from signer.client.relay import Relay
from signer.client.spec import SessionSpec
from tests.service.conftest import FROST, Node, check_signature, dkg, sid, sign, status_of

PARTIES = ("client", "signer-a")
Code = grpc.StatusCode
# The node-wide table of the previous design held sessions.max_concurrent * 64 entries.
FLOOD = 1000 * 64 + 1
BATCH = 64  # messages per request, the most a request may carry


@pytest.fixture(scope="module")
def node(start_node) -> Node:  # type: ignore[no-untyped-def]
    return start_node("signer-a")  # default sessions settings


def flood_batch(client, session_id: str, start: int, count: int) -> list[pb.ProtocolMessage]:  # type: ignore[no-untyped-def]
    """`count` validly HMAC'd messages for one unknown session, each from its own sender."""
    return [
        client.sign_outgoing(pb.ProtocolMessage(session_id=session_id, sender=f"p{i}", recipient="signer-a",
                                                round=1, seq=1, payload=b"x"))
        for i in range(start, start + count)
    ]


async def test_a_flood_for_unknown_sessions_records_nothing(node, local, connect) -> None:  # type: ignore[no-untyped-def]
    client = connect(node)
    sent, first = 0, sid("nobody")
    while sent < FLOOD:
        batch = flood_batch(client, first if sent == 0 else sid("nobody"), sent, min(BATCH, FLOOD - sent))
        code, message = await status_of(client.submit(batch))
        assert code == Code.NOT_FOUND and message == "unknown session", (sent, code, message)
        sent += len(batch)
    # The same messages again are not replays: nothing of them was recorded.
    code, _ = await status_of(client.submit(flood_batch(client, first, 0, BATCH)))
    assert code == Code.NOT_FOUND
    # New sessions start, their first messages included (the relay piggybacks them on the start).
    relay = Relay({"client": local, "signer-a": client})
    key = await dkg(relay, FROST, PARTIES, 2)
    check_signature(FROST, key.public_key, b"after the flood",
                    await sign(relay, FROST, PARTIES, key.key_id, b"after the flood"))


async def test_replay_in_a_running_session_is_still_refused(node, local, connect) -> None:  # type: ignore[no-untyped-def]
    client = connect(node)
    relay = Relay({"client": local, "signer-a": client})
    key = await dkg(relay, FROST, PARTIES, 2)
    spec = SessionSpec("sign", sid("replayed"), FROST, PARTIES, key_id=key.key_id, message=b"m")
    mine = local.party("client")
    first = await mine.start(spec)  # the client's round-1 commitments
    response = await client.start_sign(pb.StartSignRequest(
        session_id=spec.session_id, protocol=FROST, key_id=key.key_id, message=b"m", party_ids=list(PARTIES),
        self_party_id="signer-a", messages=first,
    ))
    assert response.state == pb.SESSION_STATE_RUNNING
    code, message = await status_of(client.submit(first))  # accepted with the start already
    assert code == Code.ALREADY_EXISTS and "replay" in message
    status = await client.sign_status(spec.session_id)
    assert status.state == pb.SESSION_STATE_RUNNING  # the replay never reached the enclave
