"""The framed channel in one process: a FrameServer on a unix socket, driven byte by byte from a
raw socket or through EnclaveClient. Limits, timeouts, ordering, back-pressure and failures."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from door import handshake
from door.address import Address
from enclave.transport.server import FrameServer
from mpc.v1 import enclave_pb2 as pb
from signer.link.client import EnclaveClient, EnclaveTimeout, EnclaveUnavailable, parse_address
from tests.conftest import free_port

Handler = Callable[[pb.Request], Awaitable[pb.Response]]


async def pong(request: pb.Request) -> pb.Response:
    return pb.Response(request_id=request.request_id, ping=pb.PingResponse())


def frame(request: pb.Request) -> bytes:
    body = request.SerializeToString()
    return struct.pack(">I", len(body)) + body


async def read_response(reader: asyncio.StreamReader) -> pb.Response:
    (length,) = struct.unpack(">I", await reader.readexactly(4))
    return pb.Response.FromString(await reader.readexactly(length))


async def closed_by_peer(reader: asyncio.StreamReader, within: float = 2.0) -> bool:
    try:
        return await asyncio.wait_for(reader.read(1), within) == b""
    except ConnectionResetError:
        return True


class Served:
    def __init__(self, tmp_path: Path) -> None:
        self.address = parse_address(f"unix://{tmp_path}/e.sock")
        self.server: FrameServer | None = None

    async def start(self, handler: Handler = pong, **options: float) -> Address:
        self.server = FrameServer(handler, **options)  # type: ignore[arg-type]
        await self.server.start(self.address)
        return self.address

    async def raw(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_unix_connection(self.address.path)


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    s = Served(tmp_path)
    yield s
    if s.server is not None:
        await s.server.close()


async def test_frame_split_into_single_bytes_is_answered(served: Served) -> None:
    await served.start()
    reader, writer = await served.raw()
    for byte in frame(pb.Request(request_id=5, ping=pb.PingRequest())):
        writer.write(bytes([byte]))
        await writer.drain()
        await asyncio.sleep(0.001)
    response = await asyncio.wait_for(read_response(reader), 2)
    assert response.request_id == 5 and response.HasField("ping")
    writer.close()


async def test_many_frames_in_one_write_are_answered_in_order(served: Served) -> None:
    started: list[int] = []

    async def record(request: pb.Request) -> pb.Response:
        started.append(request.request_id)
        return await pong(request)

    await served.start(record)
    reader, writer = await served.raw()
    writer.write(b"".join(frame(pb.Request(request_id=i, ping=pb.PingRequest())) for i in range(1, 101)))
    answered = [(await asyncio.wait_for(read_response(reader), 2)).request_id for _ in range(100)]
    assert started == list(range(1, 101))
    assert answered == list(range(1, 101))
    writer.close()


async def test_oversized_length_closes_before_any_body(served: Served, caplog: pytest.LogCaptureFixture) -> None:
    await served.start(max_frame_bytes=1000)
    reader, writer = await served.raw()
    writer.write(struct.pack(">I", 1001))  # header only: the body never comes
    assert await closed_by_peer(reader)
    assert "frame length 1001 exceeds the 1000-byte limit" in caplog.text
    writer.close()


async def test_stalled_body_times_out(served: Served, caplog: pytest.LogCaptureFixture) -> None:
    await served.start(body_timeout=0.2)
    reader, writer = await served.raw()
    writer.write(struct.pack(">I", 100) + b"abc")
    assert await closed_by_peer(reader)
    assert "frame body of 100 bytes not received within 0.2s" in caplog.text
    writer.close()


async def test_stalled_header_times_out(served: Served, caplog: pytest.LogCaptureFixture) -> None:
    await served.start(body_timeout=0.2)
    reader, writer = await served.raw()
    writer.write(b"\x00\x00")
    assert await closed_by_peer(reader)
    assert "frame header not received within 0.2s" in caplog.text
    writer.close()


async def test_slow_but_steady_frame_gets_its_own_timeout(served: Served) -> None:
    """The timeout is per frame: a frame started after a completed one has the full time."""
    await served.start(body_timeout=0.3)
    reader, writer = await served.raw()
    first, second = (frame(pb.Request(request_id=i, ping=pb.PingRequest())) for i in (1, 2))
    writer.write(first + second[:3])
    await asyncio.sleep(0.2)
    writer.write(second[3:])
    assert (await asyncio.wait_for(read_response(reader), 2)).request_id == 1
    assert (await asyncio.wait_for(read_response(reader), 2)).request_id == 2
    writer.write(second[:5])
    await asyncio.sleep(0.2)  # the next frame's time starts now, not with the first frame
    writer.write(second[5:])
    assert (await asyncio.wait_for(read_response(reader), 2)).request_id == 2
    writer.close()


async def test_truncated_frame_at_end_of_stream_is_logged(served: Served, caplog: pytest.LogCaptureFixture) -> None:
    await served.start()
    reader, writer = await served.raw()
    writer.write(struct.pack(">I", 100) + b"abc")
    writer.write_eof()
    assert await closed_by_peer(reader)
    await asyncio.sleep(0.05)
    assert "connection closed inside a 100-byte frame body" in caplog.text
    writer.close()


async def test_in_flight_bound_stops_reading(served: Served) -> None:
    gate = asyncio.Event()
    started: list[int] = []

    async def slow(request: pb.Request) -> pb.Response:
        started.append(request.request_id)
        await gate.wait()
        return await pong(request)

    await served.start(slow, max_in_flight=2)
    reader, writer = await served.raw()
    writer.write(b"".join(frame(pb.Request(request_id=i, ping=pb.PingRequest())) for i in range(1, 6)))
    await asyncio.sleep(0.2)
    assert started == [1, 2]
    gate.set()
    answered = sorted([(await asyncio.wait_for(read_response(reader), 2)).request_id for _ in range(5)])
    assert answered == [1, 2, 3, 4, 5]
    assert started == [1, 2, 3, 4, 5]
    writer.close()


async def test_peer_that_does_not_read_responses_is_not_read_either(served: Served) -> None:
    handled = 0

    async def big(request: pb.Request) -> pb.Response:
        nonlocal handled
        handled += 1
        update = pb.SessionUpdate(outgoing=[pb.EnclaveMessage(payload=b"x" * 200_000)])
        return pb.Response(request_id=request.request_id, session_update=update)

    await served.start(big)
    reader, writer = await served.raw()
    count = 300
    writer.write(b"".join(frame(pb.Request(request_id=i, ping=pb.PingRequest())) for i in range(1, count + 1)))
    await asyncio.sleep(0.3)
    assert 0 < handled < count  # stopped reading requests while responses pile up unread
    answered = [(await asyncio.wait_for(read_response(reader), 5)).request_id for _ in range(count)]
    assert answered == list(range(1, count + 1))
    assert handled == count
    writer.close()


async def test_garbage_then_a_fresh_connection_works(served: Served, caplog: pytest.LogCaptureFixture) -> None:
    await served.start()
    reader, writer = await served.raw()
    writer.write(struct.pack(">I", 4) + b"\xff\xff\xff\xff")
    assert await closed_by_peer(reader)
    assert "4-byte frame is not a valid Request" in caplog.text
    writer.close()
    client = EnclaveClient(served.address)
    await client.ping()
    await client.close()


async def test_client_timeout_then_late_answer_is_dropped(served: Served, caplog: pytest.LogCaptureFixture) -> None:
    delays = {"first": 0.3}

    async def late(request: pb.Request) -> pb.Response:
        await asyncio.sleep(delays.pop("first", 0.0))
        return await pong(request)

    await served.start(late)
    client = EnclaveClient(served.address, call_timeout=0.1)
    caplog.set_level(logging.INFO, logger="signer.link.client")
    with pytest.raises(EnclaveTimeout, match="did not answer request 1"):
        await client.ping()
    await asyncio.sleep(0.3)
    await client.ping()  # same connection, the late answer was dropped
    assert "dropping enclave response to request 1" in caplog.text
    assert client.connected
    await client.close()


async def test_concurrent_client_calls_are_matched_by_id(served: Served) -> None:
    async def echo(request: pb.Request) -> pb.Response:
        await asyncio.sleep((request.info.attestation_nonce[0] % 5) / 1000)
        info = pb.InfoResponse(attestation_mode=request.info.attestation_nonce.hex())
        return pb.Response(request_id=request.request_id, info=info)

    await served.start(echo)
    client = EnclaveClient(served.address)
    nonces = [bytes([i]) * 4 for i in range(64)]
    results = await asyncio.gather(*(client.info(n) for n in nonces))
    assert [r.attestation_mode for r in results] == [n.hex() for n in nonces]
    await client.close()


async def test_client_close_fails_pending_calls(served: Served) -> None:
    async def never(request: pb.Request) -> pb.Response:
        await asyncio.Event().wait()
        raise AssertionError

    await served.start(never)
    client = EnclaveClient(served.address)
    call = asyncio.ensure_future(client.ping())
    await asyncio.sleep(0.05)
    await client.close()
    with pytest.raises(EnclaveUnavailable, match="client closed"):
        await call


async def test_client_reconnects_after_the_server_restarts(served: Served) -> None:
    await served.start()
    client = EnclaveClient(served.address, retry_interval=0.05)
    await client.ping()
    assert served.server is not None
    await served.server.close()
    await asyncio.sleep(0.05)
    assert not client.connected
    with pytest.raises(EnclaveUnavailable):
        await client.ping()
    await served.start()
    await asyncio.sleep(0.06)
    await client.ping()
    await client.close()


async def test_bad_frame_from_the_server_fails_the_call(tmp_path: Path) -> None:
    async def answer_garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(4)
        writer.write(struct.pack(">I", 3) + b"\xff\xff\xff")

    path = f"{tmp_path}/g.sock"
    server = await asyncio.start_unix_server(answer_garbage, path)
    client = EnclaveClient(parse_address(f"unix://{path}"), retry_interval=0)
    with pytest.raises(EnclaveUnavailable, match="bad frame from the enclave"):
        await client.ping()
    assert not client.connected
    await client.close()
    server.close()


async def test_psk_handshake_then_frames_sent_in_the_same_write(tmp_path: Path) -> None:
    """Bytes that follow the handshake's last message in one segment are the first frame."""
    psk = b"k" * 32
    port = free_port()
    server = FrameServer(pong, psk=psk)
    await server.start(parse_address(f"tcp://127.0.0.1:{port}"))
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        client_nonce = b"c" * handshake.NONCE_BYTES
        writer.write(handshake.MAGIC + client_nonce)
        reply = await reader.readexactly(len(handshake.MAGIC) + handshake.NONCE_BYTES + handshake.MAC_BYTES)
        server_nonce = reply[len(handshake.MAGIC) : len(handshake.MAGIC) + handshake.NONCE_BYTES]
        proof = hmac.new(psk, handshake._LABEL_CLIENT + client_nonce + server_nonce, hashlib.sha256).digest()
        writer.write(proof + frame(pb.Request(request_id=9, ping=pb.PingRequest())))
        assert (await asyncio.wait_for(read_response(reader), 2)).request_id == 9
        writer.close()

        good = EnclaveClient(parse_address(f"tcp://127.0.0.1:{port}"), psk=psk)
        await asyncio.gather(*(good.ping() for _ in range(20)))
        await good.close()
        wrong = EnclaveClient(parse_address(f"tcp://127.0.0.1:{port}"), psk=b"w" * 32)
        with pytest.raises(EnclaveUnavailable, match="did not prove knowledge"):
            await wrong.ping()
        await wrong.close()
    finally:
        await server.close()


async def test_call_timeout_covers_a_peer_that_does_not_read(tmp_path: Path) -> None:
    stalled = asyncio.Event()

    async def never_reads(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await stalled.wait()

    path = f"{tmp_path}/s.sock"
    server = await asyncio.start_unix_server(never_reads, path)
    client = EnclaveClient(parse_address(f"unix://{path}"), call_timeout=0.3)
    big = b"n" * (8 * 1024 * 1024)  # far more than the socket buffers hold
    with pytest.raises(EnclaveTimeout):
        await asyncio.wait_for(client.info(big), 5)
    await asyncio.wait_for(client.close(), 2)
    stalled.set()
    server.close()


def test_channel_key_context_is_the_transcript_the_enclave_would_draw() -> None:
    """The door may not import the enclave, so door/provisioning.py spells out the transcript
    bytes it binds the channel key to; they must stay those of enclave.crypto.transcript."""
    from door import provisioning
    from enclave.crypto.transcript import Transcript

    for _ in range(8):
        nonce, enclave_pub, ephemeral_pub = (os.urandom(n) for n in (32, 65, 65))
        t = Transcript(provisioning._DOMAIN, session_id=nonce, protocol="channel-key", round=0, party="host")
        t.append("enclave-public-key", enclave_pub)
        t.append("ephemeral-public-key", ephemeral_pub)
        assert provisioning._context(nonce, enclave_pub, ephemeral_pub) == t.challenge_bytes("context", 32)
