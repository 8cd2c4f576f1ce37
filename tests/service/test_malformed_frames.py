"""A frame on the Exchange stream that is not a valid `ExchangeRequest` ends the stream with
INVALID_ARGUMENT "malformed request" (as a unary body that does not parse is answered), counted
in `mpc_signer_rpc_total`, with no traceback in the log and never UNKNOWN; calls already in
flight on that stream still answer first, and the node goes on serving.

Against a real signer node and its enclave process over mTLS; the frames are raw bytes written
on the HTTP/2 stream, as a hostile or broken client would send them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2

from mpc.v1 import signer_pb2 as pb
from signer.client.relay import Relay
from tests.conftest import free_port
from tests.service.conftest import FROST, Node, check_signature, dkg, sign
from tests.service.test_exchange import rpc_count, scrape

PARTIES = ("client", "signer-a")
EXCHANGE = "/mpc.v1.SignerService/Exchange"
# Not a protobuf message: a truncated varint, a length running past the end, a bad wire type.
GARBAGE = [b"\xff\xff\xff", b"\x0a\x05ab", b"\x08" + b"\xff" * 11, b"\x0f"]


@pytest.fixture(scope="module")
def metered(start_node) -> Iterator[tuple[Node, int]]:  # type: ignore[no-untyped-def]
    port = free_port()
    node = start_node("signer-a", config={"metrics": {"listen": f"127.0.0.1:{port}"}})
    yield node, port


def raw_stream(client, metadata):  # type: ignore[no-untyped-def]
    """An Exchange call whose requests are bytes as given (no serializer) and whose answers parse."""
    method = client.channel.stream_stream(
        EXCHANGE, request_serializer=None, response_deserializer=pb.ExchangeResponse.FromString
    )
    return method(metadata=metadata)


@pytest.mark.parametrize("frame", GARBAGE)
async def test_a_frame_that_does_not_parse_ends_the_stream_invalid_argument(  # type: ignore[no-untyped-def]
    metered, clients, frame
) -> None:
    node, port = metered
    client = clients(node, exchange=False)
    before = rpc_count(scrape(port), "Exchange", "INVALID_ARGUMENT")
    call = raw_stream(client, client._metadata())
    # A good call first: it answers before the stream ends.
    good = pb.ExchangeRequest(call_id=1, get_dkg_status=pb.GetDKGStatusRequest(session_id="nobody"))
    await call.write(good.SerializeToString())
    answer = await call.read()
    assert answer.call_id == 1 and answer.code == grpc.StatusCode.NOT_FOUND.value[0]
    await call.write(frame)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        while True:
            response = await call.read()
            if response is grpc.aio.EOF:
                break
    # grpc raises from read() when the stream ended with a non-OK status.
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    assert (err.value.details() or "").startswith("malformed request")
    assert "DecodeError" not in (err.value.details() or "")
    # Counted when the server's handler returns, which may be just after the client saw the end.
    deadline = time.monotonic() + 5
    while (after := scrape(port)) and rpc_count(after, "Exchange", "INVALID_ARGUMENT") == before:
        assert time.monotonic() < deadline, "the stream's end was not counted"
        await asyncio.sleep(0.05)
    assert rpc_count(after, "Exchange", "INVALID_ARGUMENT") == before + 1
    assert rpc_count(after, "Exchange", "UNKNOWN") == 0
    assert "Traceback" not in node.signer.log()


async def test_the_node_serves_after_malformed_frames(metered, local, clients) -> None:  # type: ignore[no-untyped-def]
    node, _port = metered
    assert node.signer.health() == health_pb2.HealthCheckResponse.SERVING
    relay = Relay({"client": local, "signer-a": clients(node)})
    key = await dkg(relay, FROST, PARTIES, 2)
    check_signature(FROST, key.public_key, b"after", await sign(relay, FROST, PARTIES, key.key_id, b"after"))


@pytest.mark.parametrize(
    "method", ["/grpc.health.v1.Health/Watch", "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"]
)
async def test_other_streams_answer_malformed_bodies_invalid_argument(metered, clients, method) -> None:  # type: ignore[no-untyped-def]
    """The health watch (one request, a stream of answers) and reflection (a request stream)."""
    node, _port = metered
    client = clients(node, exchange=False)
    if "Watch" in method:
        call = client.channel.unary_stream(method, request_serializer=None, response_deserializer=None)(b"\xff\xff")
    else:
        call = client.channel.stream_stream(method, request_serializer=None, response_deserializer=None)()
        await call.write(b"\xff\xff")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call.read()
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    assert (err.value.details() or "").startswith("malformed request")
    assert "Traceback" not in node.signer.log()
