"""Issue 13, item 4: the host↔enclave channel is authenticated on every transport.

Real enclave processes over real sockets. vsock is not available on this machine, so what vsock
would do is shown on TCP (the same FrameServer and handshake), and the vsock refusal without a
key is checked where it is made: at argument checking and in `FrameServer.start`, before any
socket exists.

* a process that connects without the key is refused before any request is served;
* the enclave refuses to start on vsock:// or tcp:// without a key unless the loudly named
  development flag is given (and then says so in its log);
* attested provisioning (the Nitro image's default): the host delivers its key only to an enclave
  whose attestation verifies (test CA chain standing in for AWS's), a host with other PCRs
  delivers nothing, and a key claimed first by someone else makes the legitimate host fail closed.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from door.address import Address
from enclave.transport.server import FrameServer
from mpc.v1 import enclave_pb2 as epb
from signer.link.client import EnclaveClient, EnclaveUnavailable
from signer.link.provisioning import attested_offer_verifier, load_expected_pcrs
from tests.conftest import REPO, free_port
from tests.tee.conftest import TeeEnclave
from tests.tee.fixture_enclave import write_chain
from tests.tee.nitro_docs import PCR0, PCR1, PCR2, CaChain, make_chain

EXPECTED = {0: PCR0, 1: PCR1, 2: PCR2}


@pytest.fixture(scope="module")
def chain() -> CaChain:
    now = datetime.now(UTC)
    return make_chain(leaf_not_before=now - timedelta(hours=1), leaf_not_after=now + timedelta(hours=3))


def start_enclave(workdir: Path, args: list[str], env: dict[str, str] | None = None) -> TeeEnclave:
    return TeeEnclave(f"tcp://127.0.0.1:{free_port()}", workdir, args, env or {}).start()


@pytest.fixture
def attested_enclave(chain: CaChain, tmp_path: Path) -> Iterator[TeeEnclave]:
    directory = write_chain(chain, tmp_path / "chain")
    enclave = start_enclave(
        tmp_path,
        ["--attestation", "nitro", "--psk-provisioning", "attested"],
        {"MPC_TEST_ATTESTATION_DIR": str(directory)},
    )
    yield enclave
    enclave.stop()


def raw_ping(address: str) -> bytes:
    """Connect as a local process that has no key would, send a Ping frame, read what comes back."""
    host, _, port = address[len("tcp://") :].rpartition(":")
    body = epb.Request(request_id=1, ping=epb.PingRequest()).SerializeToString()
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(struct.pack(">I", len(body)) + body)
        received = b""
        while True:
            try:
                chunk = sock.recv(4096)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            received += chunk
    return received


def client(enclave: TeeEnclave, psk: bytes, chain: CaChain | None, pcrs: dict[int, bytes] = EXPECTED) -> EnclaveClient:
    host, _, port = enclave.address[len("tcp://") :].rpartition(":")
    verify = attested_offer_verifier(pcrs, root=chain.root) if chain is not None else None
    return EnclaveClient(
        Address("tcp", host=host, port=int(port)), psk=psk, verify_offer=verify, connect_timeout=5.0, retry_interval=0.0
    )


def run_enclave(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "enclave", *args], cwd=REPO, capture_output=True, text=True, timeout=60
    )


# --- refusing to listen without a key -------------------------------------------------------


@pytest.mark.parametrize("listen", ["vsock://any:5000", "tcp://127.0.0.1:{port}"])
def test_enclave_refuses_to_listen_without_channel_auth(listen: str, tmp_path: Path) -> None:
    result = run_enclave(
        [
            "--listen",
            listen.format(port=free_port()),
            "--sealing-key-file",
            str(tmp_path / "k"),
            "--generate-sealing-key",
        ]
    )
    assert result.returncode == 2, result.stderr
    assert "needs channel authentication" in result.stderr
    assert "--insecure-no-channel-auth-for-development" in result.stderr


def test_attested_provisioning_needs_attestation(tmp_path: Path) -> None:
    result = run_enclave(["--listen", "vsock://any:5000", "--psk-provisioning", "attested"])
    assert result.returncode == 2
    assert "needs --attestation nitro" in result.stderr


async def test_frame_server_refuses_an_unauthenticated_vsock_listener() -> None:
    async def never(request: epb.Request) -> epb.Response:
        raise AssertionError("no request may be served")

    with pytest.raises(ValueError, match="vsock listener needs channel authentication"):
        await FrameServer(never).start(Address("vsock", cid=0xFFFFFFFF, port=5000))


def test_development_flag_listens_and_says_so(tmp_path: Path) -> None:
    enclave = start_enclave(tmp_path, ["--insecure-no-channel-auth-for-development"])
    try:
        assert raw_ping(enclave.address)  # answered: nothing authenticates this channel
        assert "INSECURE" in enclave.log() and "never use this in production" in enclave.log()
    finally:
        enclave.stop()


# --- connecting without the key -------------------------------------------------------------


async def test_connection_without_the_psk_is_refused_before_any_request(tmp_path: Path) -> None:
    psk = secrets.token_bytes(32)
    (tmp_path / "psk").write_text(psk.hex())
    enclave = start_enclave(tmp_path, ["--psk-file", str(tmp_path / "psk")])
    try:
        assert raw_ping(enclave.address) == b""  # closed without a single Response frame
        assert "handshake failed" in enclave.log()
        wrong = client(enclave, secrets.token_bytes(32), None)
        with pytest.raises(EnclaveUnavailable, match="did not prove knowledge"):
            await wrong.ping()
        await wrong.close()
        right = client(enclave, psk, None)
        await right.ping()
        await right.close()
    finally:
        enclave.stop()


# --- attested provisioning ------------------------------------------------------------------


async def test_host_delivers_its_key_only_to_the_attested_enclave(
    attested_enclave: TeeEnclave, chain: CaChain, tmp_path: Path
) -> None:
    assert raw_ping(attested_enclave.address) == b""  # no key yet, and still nothing is served
    psk = secrets.token_bytes(32)

    # A host without a provisioning verifier does not hand its key to a keyless enclave.
    plain = client(attested_enclave, psk, None)
    with pytest.raises(EnclaveUnavailable, match="has no channel key yet"):
        await plain.ping()
    await plain.close()

    # Another image (other PCR0): the attestation is refused and nothing is delivered.
    other = client(attested_enclave, psk, chain, {**EXPECTED, 0: bytes(48)})
    with pytest.raises(EnclaveUnavailable, match="PCR_MISMATCH"):
        await other.ping()
    await other.close()

    host = client(attested_enclave, psk, chain)
    info = await host.info()
    assert info.attestation_mode == "nitro"
    await host.close()
    assert "channel key delivered" in attested_enclave.log()

    # From now on the key is fixed: a restarted host with the same key connects by plain handshake,
    # a process without it is refused before any request, and a second delivery is never asked for.
    again = client(attested_enclave, psk, None)
    assert (await again.info()).enclave_public_key == info.enclave_public_key
    await again.close()
    assert raw_ping(attested_enclave.address) == b""


async def test_a_key_claimed_first_by_someone_else_fails_closed(
    attested_enclave: TeeEnclave, chain: CaChain, caplog: pytest.LogCaptureFixture
) -> None:
    # A local attacker reaches the fresh enclave first and delivers a key of its own.
    attacker = client(attested_enclave, secrets.token_bytes(32), chain)
    await attacker.ping()
    await attacker.close()
    # The legitimate host then refuses the enclave: its proof is made with the other key.
    host = client(attested_enclave, secrets.token_bytes(32), chain)
    with pytest.raises(EnclaveUnavailable, match="someone else claimed its channel"):
        await host.ping()
    with pytest.raises(EnclaveUnavailable, match="someone else claimed its channel"):
        await host.ping()  # stays refused: fail closed
    await host.close()
    alarms = [r for r in caplog.records if "someone else claimed" in r.getMessage()]
    assert len(alarms) == 1 and alarms[0].levelname == "ERROR"  # logged once, as an alarm


async def test_concurrent_deliveries_keep_only_the_first(attested_enclave: TeeEnclave, chain: CaChain) -> None:
    keys = [secrets.token_bytes(32) for _ in range(4)]
    clients = [client(attested_enclave, k, chain) for k in keys]
    results = await asyncio.gather(*(c.ping() for c in clients), return_exceptions=True)
    for c in clients:
        await c.close()
    assert sum(r is None for r in results) == 1, results
    assert all(isinstance(r, EnclaveUnavailable) for r in results if r is not None)


def test_enclave_ping_delivers_only_to_an_aws_attested_enclave(attested_enclave: TeeEnclave, tmp_path: Path) -> None:
    """`make run-enclave`'s delivery step is `enclave-ping --expected-pcrs-file`: the product's
    verifier, pinned to the AWS Nitro root, refuses the test CA's document and sends nothing."""
    (tmp_path / "psk").write_text(secrets.token_hex(32))
    pcrs = tmp_path / "pcrs.json"
    pcrs.write_text(json.dumps({f"PCR{i}": v.hex() for i, v in EXPECTED.items()}))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "signer.cli",
            "enclave-ping",
            "--address",
            attested_enclave.address,
            "--psk-file",
            str(tmp_path / "psk"),
            "--expected-pcrs-file",
            str(pcrs),
            "--timeout",
            "5",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "attestation was refused" in result.stderr and "key not delivered" in result.stderr
    assert "channel key delivered" not in attested_enclave.log()


def test_expected_pcrs_file(tmp_path: Path) -> None:
    path = tmp_path / "pcrs.json"
    path.write_text(json.dumps({"HashAlgorithm": "Sha384 { ... }", "PCR0": PCR0.hex(), "PCR1": PCR1.hex()}))
    assert load_expected_pcrs(path) == {0: PCR0, 1: PCR1}
    path.write_text('{"PCR1": "00"}')
    with pytest.raises(ValueError, match="no PCR0"):
        load_expected_pcrs(path)
