"""Host state a caller can make grow is bounded, against real signer nodes and enclave processes
over mTLS.

- Replay state lives in the session it protects: a validly HMAC'd message for a session the node
  does not hold is NOT_FOUND before anything is recorded, so a flood of them (before: 64,000
  filled the node-wide table and every new session's first message was refused) leaves new
  sessions starting; a replayed sequence number in a running session is still refused.
- Finished sessions are kept in count and bytes as well as time: beyond
  `sessions.retained_max` / `sessions.retained_max_bytes` the oldest are forgotten, a status
  query for one of them answers NOT_FOUND saying it is no longer kept, and the metrics show the
  retained count and bytes staying within the bounds.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from mpc.v1 import signer_pb2 as pb
from signer.client.relay import Relay
from signer.client.spec import SessionSpec
from tests.conftest import free_port
from tests.service.conftest import FROST, Node, all_ok, check_signature, dkg, sid, sign, status_of
from tests.service.test_exchange import scrape

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
        client.sign_outgoing(
            pb.ProtocolMessage(
                session_id=session_id, sender=f"p{i}", recipient="signer-a", round=1, seq=1, payload=b"x"
            )
        )
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
    check_signature(
        FROST, key.public_key, b"after the flood", await sign(relay, FROST, PARTIES, key.key_id, b"after the flood")
    )


async def test_replay_in_a_running_session_is_still_refused(node, local, connect) -> None:  # type: ignore[no-untyped-def]
    client = connect(node)
    relay = Relay({"client": local, "signer-a": client})
    key = await dkg(relay, FROST, PARTIES, 2)
    spec = SessionSpec("sign", sid("replayed"), FROST, PARTIES, key_id=key.key_id, message=b"m")
    mine = local.party("client")
    first = await mine.start(spec)  # the client's round-1 commitments
    response = await client.start_sign(
        pb.StartSignRequest(
            session_id=spec.session_id,
            protocol=FROST,
            key_id=key.key_id,
            message=b"m",
            party_ids=list(PARTIES),
            self_party_id="signer-a",
            messages=first,
        )
    )
    assert response.state == pb.SESSION_STATE_RUNNING
    code, message = await status_of(client.submit(first))  # accepted with the start already
    assert code == Code.ALREADY_EXISTS and "replay" in message
    status = await client.sign_status(spec.session_id)
    assert status.state == pb.SESSION_STATE_RUNNING  # the replay never reached the enclave


# --- retention ----------------------------------------------------------------------------------

RETAINED_MAX = 5


@pytest.fixture(scope="module")
def small_memory(start_node) -> Iterator[tuple[Node, int]]:  # type: ignore[no-untyped-def]
    port = free_port()
    node = start_node(
        "signer-a", sessions={"retained_max": RETAINED_MAX}, config={"metrics": {"listen": f"127.0.0.1:{port}"}}
    )
    yield node, port


def retention_metrics(port: int) -> tuple[float, float, float]:
    samples = scrape(port)
    evicted = sum(v for (name, _labels), v in samples.items() if name == "mpc_signer_finished_sessions_evicted_total")
    return (
        samples[("mpc_signer_finished_sessions_retained", ())],
        samples[("mpc_signer_finished_sessions_retained_bytes", ())],
        evicted,
    )


async def test_finished_sessions_are_bounded_in_count(small_memory, local, connect) -> None:  # type: ignore[no-untyped-def]
    node, port = small_memory
    client = connect(node)
    relay = Relay({"client": local, "signer-a": client})
    key = await dkg(relay, FROST, PARTIES, 2)
    ids = []
    for i in range(4 * RETAINED_MAX):
        spec = SessionSpec("sign", sid(f"kept-{i}"), FROST, PARTIES, key_id=key.key_id, message=b"m%d" % i)
        results = all_ok(await relay.run(spec))
        check_signature(FROST, key.public_key, spec.message, results["signer-a"].sign)
        ids.append(spec.session_id)
        retained, retained_bytes, _evicted = retention_metrics(port)
        assert retained <= RETAINED_MAX and retained_bytes > 0
    retained, retained_bytes, evicted = retention_metrics(port)
    assert retained == RETAINED_MAX
    assert evicted == 4 * RETAINED_MAX + 1 - RETAINED_MAX  # the signatures and the key generation
    # The newest still answer, with their signatures.
    for session_id in ids[-RETAINED_MAX:]:
        status = await client.sign_status(session_id)
        assert status.state == pb.SESSION_STATE_DONE and len(status.result.signature) == 64
    # The oldest are forgotten, and the answer says so.
    code, message = await status_of(client.sign_status(ids[0]))
    assert code == Code.NOT_FOUND and "no longer kept" in message, message
    code, message = await status_of(client.sign_status(sid("never")))
    assert code == Code.NOT_FOUND and message == "unknown session"
    # About a kilobyte per signing session, not the full session state.
    assert retained_bytes / retained < 2048, retained_bytes


async def test_finished_sessions_are_bounded_in_bytes(start_node, local, connect) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    node = start_node(
        "signer-a", sessions={"retained_max_bytes": 4096}, config={"metrics": {"listen": f"127.0.0.1:{port}"}}
    )
    client = connect(node)
    relay = Relay({"client": local, "signer-a": client})
    key = await dkg(relay, FROST, PARTIES, 2)
    for i in range(20):
        await sign(relay, FROST, PARTIES, key.key_id, b"b%d" % i)
        retained, retained_bytes, _evicted = retention_metrics(port)
        assert retained_bytes <= 4096
    retained, retained_bytes, evicted = retention_metrics(port)
    assert 0 < retained < 20 and evicted >= 21 - retained
