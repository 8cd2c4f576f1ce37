"""SignerService.Exchange: the session calls on one bidirectional stream, against a real signer
node (its own enclave process) over mTLS.

The relay's sessions run over the stream for both protocols and every signature is verified
independently; a failing call gets in its response exactly the status and message the unary
call gets, and the stream goes on; the stream's own rules (call ids, a request with no call,
half-close, cancellation, authentication at open, the token's expiry ending it) and the SDK's
move to a new stream when it mints a new token.
"""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2

from mpc.v1 import signer_pb2 as pb
from mpc.v1 import signer_pb2_grpc
from signer.client.client import SignerClient, TokenSource
from signer.client.relay import Relay
from signer.ops.devcerts import write_dev_certs
from tests.service.conftest import (
    FROST,
    GG20,
    KECCAK,
    PROTOCOLS,
    FixtureEnclave,
    Node,
    check_signature,
    dkg,
    jwt_for,
    message_for,
    presign,
    sid,
    sign,
    status_of,
)

PARTIES = ("client", "signer-a")
Code = grpc.StatusCode


@pytest.fixture(scope="module")
def node(start_node) -> Node:  # type: ignore[no-untyped-def]
    return start_node("signer-a")


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_sessions_over_the_stream(protocol, node, local, clients) -> None:  # type: ignore[no-untyped-def]
    client = clients(node)
    relay = Relay({"client": local, "signer-a": client})
    key = await dkg(relay, protocol, PARTIES, 2)
    message = message_for(protocol, b"over one stream")
    check_signature(protocol, key.public_key, message, await sign(relay, protocol, PARTIES, key.key_id, message))
    if protocol == GG20:
        presignature_id = await presign(relay, PARTIES, key.key_id)
        message = message_for(protocol, b"with a presignature")
        result = await sign(
            relay, protocol, PARTIES, key.key_id, b"with a presignature", presignature_id, message_hash=KECCAK
        )
        assert result.presignature_id == presignature_id
        check_signature(protocol, key.public_key, message, result)
    stream = client._exchange._stream  # type: ignore[union-attr]
    assert stream is not None and stream.ended is None, "every call went on the one stream"


async def test_concurrent_sessions_share_one_stream(node, local, clients) -> None:  # type: ignore[no-untyped-def]
    client = clients(node)
    relay = Relay({"client": local, "signer-a": client})
    key = await dkg(relay, FROST, PARTIES, 2)
    stream = client._exchange._stream  # type: ignore[union-attr]
    messages = [f"concurrent {i}".encode() for i in range(8)]
    results = await asyncio.gather(*(sign(relay, FROST, PARTIES, key.key_id, m) for m in messages))
    for message, result in zip(messages, results, strict=True):
        check_signature(FROST, key.public_key, message, result)
    assert client._exchange._stream is stream  # type: ignore[union-attr]


async def test_failures_carry_the_unary_status_and_the_stream_goes_on(node, local, clients) -> None:  # type: ignore[no-untyped-def]
    streamed, unary = clients(node), clients(node, exchange=False)
    key = await dkg(Relay({"client": local, "signer-a": unary}), GG20, PARTIES, 2)

    def bad_calls(client: SignerClient):  # type: ignore[no-untyped-def]
        base = dict(protocol=GG20, party_ids=list(PARTIES), self_party_id="signer-a")
        return {
            "unknown key": client.start_sign(
                pb.StartSignRequest(session_id=sid("nokey"), key_id="ab" * 32, message=b"\x01" * 32, **base)
            ),  # type: ignore[arg-type]
            "short digest": client.start_sign(
                pb.StartSignRequest(session_id=sid("short"), key_id=key.key_id, message=b"\x01" * 31, **base)
            ),  # type: ignore[arg-type]
            "unknown session": client.sign_status("no-such-session"),
            "threshold above n": client.start_dkg(pb.StartDKGRequest(session_id=sid("thr"), threshold=3, **base)),  # type: ignore[arg-type]
        }

    expected = {name: await status_of(call) for name, call in bad_calls(unary).items()}
    assert expected["unknown key"][0] == Code.NOT_FOUND
    assert expected["short digest"][0] == Code.INVALID_ARGUMENT
    assert expected["unknown session"][0] == Code.NOT_FOUND
    assert expected["threshold above n"][0] == Code.INVALID_ARGUMENT
    for name, call in bad_calls(streamed).items():
        assert await status_of(call) == expected[name], name
    stream = streamed._exchange._stream  # type: ignore[union-attr]
    # The stream goes on, and a start is idempotent across the two transports.
    request = pb.StartSignRequest(
        session_id=sid("same"),
        protocol=GG20,
        key_id=key.key_id,
        message=b"\x02" * 32,
        party_ids=list(PARTIES),
        self_party_id="signer-a",
    )
    started = await streamed.start_sign(request)
    again = await unary.start_sign(request)
    assert started.outgoing and list(again.outgoing) == list(started.outgoing)
    assert streamed._exchange._stream is stream, "failed calls did not end the stream"  # type: ignore[union-attr]


async def test_submission_to_a_finished_session(node, local, clients) -> None:  # type: ignore[no-untyped-def]
    streamed, unary = clients(node), clients(node, exchange=False)
    relay = Relay({"client": local, "signer-a": streamed})
    key = await dkg(relay, FROST, PARTIES, 2)
    seen: list[pb.ProtocolMessage] = []
    original = local.party

    def recording(party_id: str):  # type: ignore[no-untyped-def]
        party = original(party_id)
        deliver = party.deliver

        async def keep(messages):  # type: ignore[no-untyped-def]
            out = await deliver(messages)
            seen.extend(out)
            return out

        party.deliver = keep  # type: ignore[method-assign]
        return party

    local.party = recording  # type: ignore[method-assign]
    try:
        await sign(relay, FROST, PARTIES, key.key_id, b"finish me")
    finally:
        local.party = original  # type: ignore[method-assign]
    assert seen, "the local party sent its signature share to the signer"
    # Delivered again: the session has finished at the signer.
    for client in (streamed, unary):
        code, message = await status_of(client.submit(seen))
        assert code == Code.FAILED_PRECONDITION and "already finished" in message


async def test_stream_rules_at_the_wire(node, local, clients) -> None:  # type: ignore[no-untyped-def]
    client = clients(node, exchange=False)
    stub = signer_pb2_grpc.SignerServiceStub(client.channel)
    call = stub.Exchange(metadata=client._metadata())
    await call.write(pb.ExchangeRequest(call_id=7))
    answer = await call.read()
    assert answer.call_id == 7 and answer.code == Code.INVALID_ARGUMENT.value[0]
    assert "no call" in answer.message and answer.WhichOneof("response") is None
    # Two calls under one id while the first runs (a GG20 start with no presignature runs its
    # first presigning round, hundreds of milliseconds): the second is refused under that id.
    key = await dkg(Relay({"client": local, "signer-a": client}), GG20, PARTIES, 2)
    slow = pb.StartSignRequest(
        session_id=sid("slow"),
        protocol=GG20,
        key_id=key.key_id,
        message=b"\x03" * 32,
        party_ids=list(PARTIES),
        self_party_id="signer-a",
    )
    await call.write(pb.ExchangeRequest(call_id=9, start_sign=slow))
    await call.write(pb.ExchangeRequest(call_id=9, get_sign_status=pb.GetSignStatusRequest(session_id="x")))
    first, second = await call.read(), await call.read()
    assert {first.call_id, second.call_id} == {9}
    refused = first if first.code else second
    answered = second if first.code else first
    assert refused.code == Code.INVALID_ARGUMENT.value[0] and "already in flight" in refused.message
    assert answered.code == 0 and answered.WhichOneof("response") == "start_sign"
    assert answered.start_sign.session_id == slow.session_id
    # Half-closed: the calls in flight answer, then the stream ends with OK.
    await call.write(
        pb.ExchangeRequest(call_id=10, get_sign_status=pb.GetSignStatusRequest(session_id=slow.session_id))
    )
    await call.done_writing()
    last = await call.read()
    assert last.call_id == 10 and last.get_sign_status.session_id == slow.session_id
    assert await call.read() is grpc.aio.EOF
    assert await call.code() == Code.OK


async def test_cancelled_stream_leaves_the_node_working(node, local, clients) -> None:  # type: ignore[no-untyped-def]
    client = clients(node, exchange=False)
    stub = signer_pb2_grpc.SignerServiceStub(client.channel)
    gg20 = await dkg(Relay({"client": local, "signer-a": client}), GG20, PARTIES, 2)
    call = stub.Exchange(metadata=client._metadata())
    await call.write(
        pb.ExchangeRequest(
            call_id=1,
            start_presign=pb.StartPresignRequest(
                session_id=sid("cancelled"),
                protocol=GG20,
                key_id=gg20.key_id,
                party_ids=list(PARTIES),
                self_party_id="signer-a",
            ),
        )
    )
    await asyncio.sleep(0.05)
    call.cancel()
    assert await call.code() == Code.CANCELLED
    relay = Relay({"client": local, "signer-a": clients(node)})
    key = await dkg(relay, FROST, PARTIES, 2)
    check_signature(FROST, key.public_key, b"after", await sign(relay, FROST, PARTIES, key.key_id, b"after"))


async def test_opening_needs_a_valid_token(node, clients, dev_certs, tmp_path) -> None:  # type: ignore[no-untyped-def]
    client = clients(node, exchange=False)
    stub = signer_pb2_grpc.SignerServiceStub(client.channel)
    other = write_dev_certs(tmp_path / "other")  # a JWT key the node does not know
    for metadata in ((), (("authorization", f"Bearer {jwt_for(dev_certs, key_file=other.jwt_key)}"),)):
        call = stub.Exchange(metadata=metadata)
        # Refused at open, before any request (a write racing the refusal may fail inside the
        # grpc client on its own terms): read only.
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call.read()
        assert err.value.code() == Code.UNAUTHENTICATED
    # Through the SDK: the same refusal, as an AioRpcError from the call.
    bad = clients(node, token=jwt_for(dev_certs, key_file=other.jwt_key))
    code, _message = await status_of(bad.sign_status("x"))
    assert code == Code.UNAUTHENTICATED


@pytest.fixture(scope="module")
def strict_node(tmp_path_factory, start_signer) -> Node:  # type: ignore[no-untyped-def]
    """A node with no clock-skew leeway on tokens, so a stream ends right at its token's exp."""
    workdir = tmp_path_factory.mktemp("node-strict")
    enclave = FixtureEnclave(f"unix://{workdir}/e.sock", workdir)
    enclave.prime_slice = 2
    enclave.start()
    signer = start_signer(enclave, {"server": {"node_id": "signer-a"}, "jwt": {"leeway_seconds": 0}})
    node = Node("signer-a", enclave, signer, "")
    signer.wait_health(health_pb2.HealthCheckResponse.SERVING, timeout=20)
    yield node
    node.stop()


async def test_the_token_expiry_ends_the_stream(strict_node, clients, dev_certs) -> None:  # type: ignore[no-untyped-def]
    client = clients(strict_node, token=jwt_for(dev_certs, lifetime=3))
    code, _ = await status_of(client.sign_status("nothing-here"))
    assert code == Code.NOT_FOUND  # the stream is open and answers
    stream = client._exchange._stream  # type: ignore[union-attr]
    assert stream is not None
    deadline = time.monotonic() + 10
    while stream.ended is None and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert stream.ended is not None, "the node ended the stream when the token expired"
    assert stream.ended.code() == Code.UNAUTHENTICATED and "expired" in (stream.ended.details() or "")
    # The next call opens a new stream with the same, now expired, token: refused at open.
    code, _ = await status_of(client.sign_status("nothing-here"))
    assert code == Code.UNAUTHENTICATED


async def test_a_new_token_moves_calls_to_a_new_stream(node, clients, dev_certs) -> None:  # type: ignore[no-untyped-def]
    client = clients(node)
    code, _ = await status_of(client.sign_status("nothing-here"))
    assert code == Code.NOT_FOUND
    first = client._exchange._stream  # type: ignore[union-attr]
    client._tokens = TokenSource(token=jwt_for(dev_certs, lifetime=200))  # as if the old one neared expiry
    code, _ = await status_of(client.sign_status("nothing-here"))
    assert code == Code.NOT_FOUND
    second = client._exchange._stream  # type: ignore[union-attr]
    assert second is not first and second is not None
    deadline = time.monotonic() + 5
    while first.ended is None and time.monotonic() < deadline:  # type: ignore[union-attr]
        await asyncio.sleep(0.05)
    # The old stream was half-closed and ended normally (the node saw the end of its calls).
    assert first.ended is not None and first.half_closed  # type: ignore[union-attr]
