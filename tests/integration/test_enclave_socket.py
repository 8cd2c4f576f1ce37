"""The enclave channel against the real enclave process: framing limits, garbage, PSK handshake,
socket permissions, typed errors, and the host client's reconnect behaviour."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from door.framing import DEFAULT_MAX_FRAME_BYTES
from mpc.v1 import enclave_pb2 as epb
from signer.link.client import EnclaveClient, EnclaveRequestError, EnclaveUnavailable, parse_address
from tests.conftest import REPO, EnclaveProcess, free_port, wait_for


def _raw(enclave: EnclaveProcess) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(enclave.socket_path)
    return s


def _closed_by_peer(s: socket.socket) -> bool:
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True


def _roundtrip(s: socket.socket, request: epb.Request) -> epb.Response:
    body = request.SerializeToString()
    s.sendall(struct.pack(">I", len(body)) + body)
    header = b""
    while len(header) < 4:
        header += s.recv(4 - len(header))
    (length,) = struct.unpack(">I", header)
    data = b""
    while len(data) < length:
        data += s.recv(length - len(data))
    return epb.Response.FromString(data)


def _still_answers(enclave: EnclaveProcess) -> None:
    with _raw(enclave) as s:
        response = _roundtrip(s, epb.Request(request_id=7, ping=epb.PingRequest()))
    assert response.request_id == 7 and response.HasField("ping")
    assert enclave.alive()


def test_socket_file_is_private(enclave: EnclaveProcess) -> None:
    mode = os.stat(enclave.socket_path).st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o600


def test_ping_info_and_unimplemented_sessions(enclave: EnclaveProcess) -> None:
    with _raw(enclave) as s:
        info = _roundtrip(s, epb.Request(request_id=1, info=epb.InfoRequest()))
        assert info.info.attestation_mode == "none"
        assert info.info.state == epb.ENCLAVE_STATE_READY
        start = _roundtrip(s, epb.Request(request_id=2, session_start=epb.SessionStart(session_id="s")))
        assert start.request_id == 2
        assert start.error.code == epb.ERROR_CODE_INVALID_ARGUMENT  # no kind, protocol or parties
        empty = _roundtrip(s, epb.Request(request_id=3))
        assert empty.error.code == epb.ERROR_CODE_INVALID_ARGUMENT
        # the connection survives typed errors
        assert _roundtrip(s, epb.Request(request_id=4, ping=epb.PingRequest())).request_id == 4


def test_oversized_frame_closes_the_connection_before_the_body(enclave: EnclaveProcess) -> None:
    with _raw(enclave) as s:
        s.sendall(struct.pack(">I", DEFAULT_MAX_FRAME_BYTES + 1))  # header only: no body is ever sent
        assert _closed_by_peer(s)
    wait_for(lambda: "exceeds the" in enclave.log(), 5, "the logged reason")
    _still_answers(enclave)


def test_garbage_closes_the_connection(enclave: EnclaveProcess) -> None:
    with _raw(enclave) as s:
        s.sendall(struct.pack(">I", 6) + b"\xff\xff\xff\xff\xff\xff")
        assert _closed_by_peer(s)
    wait_for(lambda: "not a valid Request" in enclave.log(), 5, "the logged reason")
    with _raw(enclave) as s:  # text where a length should be: an absurd length
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _closed_by_peer(s)
    with _raw(enclave) as s:  # a frame cut short
        s.sendall(struct.pack(">I", 100) + b"abc")
        s.shutdown(socket.SHUT_WR)
        assert _closed_by_peer(s)
    wait_for(lambda: "inside a 100-byte frame body" in enclave.log(), 5, "the logged reason")
    _still_answers(enclave)
    assert "Traceback" not in enclave.log()


def test_lower_frame_limit_is_enforced(start_enclave) -> None:
    enclave = start_enclave(extra_args=["--max-frame-bytes", "2048"])
    with _raw(enclave) as s:
        nonce = b"n" * 400
        assert _roundtrip(s, epb.Request(request_id=1, info=epb.InfoRequest(attestation_nonce=nonce))).HasField("info")
        s.sendall(struct.pack(">I", 2049) + b"x" * 2049)
        assert _closed_by_peer(s)
    _still_answers(enclave)
    enclave.stop()


def _run(coro):
    return asyncio.run(coro)


def test_tcp_requires_the_psk_handshake(start_enclave, dev_certs, tmp_path: Path) -> None:
    port = free_port()
    enclave = start_enclave(address=f"tcp://127.0.0.1:{port}", psk_file=dev_certs.enclave_psk)
    good = bytes.fromhex(dev_certs.enclave_psk.read_text().strip())

    async def with_key(psk: bytes) -> str:
        client = EnclaveClient(parse_address(enclave.address), psk=psk, connect_timeout=3)
        try:
            return (await client.info()).attestation_mode
        finally:
            await client.close()

    assert _run(with_key(good)) == "none"
    with pytest.raises(EnclaveUnavailable, match="did not prove knowledge"):
        _run(with_key(bytes(32)))
    wait_for(lambda: "handshake failed" in enclave.log(), 5, "the logged handshake failure")

    # A frame without the handshake is not a handshake: closed, nothing answered.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        body = epb.Request(request_id=1, ping=epb.PingRequest()).SerializeToString()
        s.sendall(struct.pack(">I", len(body)) + body + b"\x00" * 64)
        assert _closed_by_peer(s)
    assert _run(with_key(good)) == "none"
    enclave.stop()


def _enclave_exit(args: list[str]) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "enclave", *args], cwd=REPO, capture_output=True, text=True, timeout=30
    )
    return proc.returncode, proc.stderr


def test_refuses_tcp_without_psk_and_non_loopback(tmp_path: Path) -> None:
    code, err = _enclave_exit(["--listen", f"tcp://127.0.0.1:{free_port()}"])
    assert code != 0 and "pre-shared key" in err
    code, err = _enclave_exit(["--listen", "tcp://0.0.0.0:5000"])
    assert code == 2 and "loopback" in err
    regular = tmp_path / "not-a-socket"
    regular.write_text("keep me")
    code, err = _enclave_exit(["--listen", f"unix://{regular}"])
    assert code != 0 and "not a socket" in err
    assert regular.read_text() == "keep me"


def test_client_fails_fast_during_an_outage_and_reconnects(enclave: EnclaveProcess) -> None:
    async def scenario() -> None:
        client = EnclaveClient(parse_address(enclave.address), connect_timeout=1, retry_interval=0.1)
        await client.ping()
        enclave.kill()
        started = time.monotonic()
        with pytest.raises(EnclaveUnavailable):
            await client.ping()
        with pytest.raises(EnclaveUnavailable, match="unavailable"):
            await client.ping()
        assert time.monotonic() - started < 1.0  # fails fast, no hanging
        enclave.start()
        await asyncio.sleep(0.15)
        await client.ping()  # reconnected without a new client
        with pytest.raises(EnclaveRequestError) as info:
            await client.session_start(epb.SessionStart(session_id="x"))
        assert info.value.code == epb.ERROR_CODE_INVALID_ARGUMENT
        await client.close()

    _run(scenario())


def test_concurrent_requests_on_one_connection(enclave: EnclaveProcess) -> None:
    async def scenario() -> None:
        client = EnclaveClient(parse_address(enclave.address))
        results = await asyncio.gather(*(client.info(bytes([i]) * 8) for i in range(50)))
        assert all(r.attestation_mode == "none" for r in results)
        await client.close()

    _run(scenario())


def _vsock_bindable(port: int) -> bool:
    if not hasattr(socket, "AF_VSOCK"):
        return False
    try:
        with socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM) as s:
            s.bind((socket.VMADDR_CID_ANY, port))
            return True
    except OSError:
        return False


def test_vsock_listener(tmp_path: Path) -> None:
    port = 20000 + free_port() % 10000
    if not _vsock_bindable(port):
        pytest.skip("this machine has no usable AF_VSOCK")
    # on vsock (Nitro) there is no development key default: the sealing key is explicit
    sealing = ["--sealing-key-file", str(tmp_path / "sealing.key"), "--generate-sealing-key"]
    # and no listening without channel authentication (any local process can reach vsock)
    refused = subprocess.run(
        [sys.executable, "-m", "enclave", "--listen", f"vsock://any:{port}", *sealing],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2 and "needs channel authentication" in refused.stderr
    psk = bytes(range(32))
    (tmp_path / "psk").write_text(psk.hex())
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "enclave",
            "--listen",
            f"vsock://any:{port}",
            *sealing,
            "--psk-file",
            str(tmp_path / "psk"),
        ],
        cwd=REPO,
        stderr=subprocess.PIPE,
    )
    try:
        time.sleep(1.0)
        assert proc.poll() is None, "the enclave could not listen on vsock"

        async def ping(cid: int, key: bytes | None) -> bool:
            client = EnclaveClient(
                parse_address(f"vsock://{cid}:{port}"), psk=key, allow_unauthenticated=True, connect_timeout=0.5
            )
            try:
                await client.ping()
                return True
            except EnclaveUnavailable:
                return False
            finally:
                await client.close()

        reachable = [cid for cid in (1, 2, 3) if _run(ping(cid, psk))]
        if not reachable:
            pytest.skip("listening on vsock works; no vsock loopback here to connect through")
        assert not _run(ping(reachable[0], None))  # without the key: refused before any request
    finally:
        proc.terminate()
        proc.wait(10)
