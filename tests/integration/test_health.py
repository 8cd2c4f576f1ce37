"""Health follows the enclave: NOT_SERVING while it is down, SERVING again once it is back,
without restarting the host; calls in between fail fast with UNAVAILABLE."""

from __future__ import annotations

import time

import grpc
import pytest
from grpc_health.v1 import health_pb2

from mpc.v1 import signer_pb2 as pb

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING

DKG = pb.StartDKGRequest(
    session_id="health-dkg",
    protocol=pb.PROTOCOL_FROST_ED25519,
    threshold=2,
    party_ids=["client", "signer-test"],
    self_party_id="signer-test",
)


def test_health_flips_with_the_enclave(start_enclave, start_signer) -> None:
    enclave = start_enclave()
    signer = start_signer(enclave)
    signer.wait_health(SERVING)
    assert signer.health("mpc.v1.SignerService") == SERVING
    host_pid = signer.proc.pid

    enclave.kill()
    signer.wait_health(NOT_SERVING, timeout=5)
    assert signer.health("mpc.v1.SignerService") == NOT_SERVING
    with signer.channel() as ch:
        stub = signer.stub(ch)
        ping = stub.Ping(pb.PingRequest(), timeout=5)
        assert ping.enclave_state == pb.ENCLAVE_STATE_UNAVAILABLE
        assert ping.attestation_mode == "none"  # last known
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as info:
            stub.StartDKG(DKG, metadata=signer.auth(), timeout=10)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "enclave" in info.value.details() and "unavailable" in info.value.details()
        assert time.monotonic() - started < 3

    enclave.start()
    signer.wait_health(SERVING, timeout=10)
    assert signer.proc.pid == host_pid and signer.proc.poll() is None
    with signer.channel() as ch:
        stub = signer.stub(ch)
        assert stub.Ping(pb.PingRequest(), timeout=5).enclave_state == pb.ENCLAVE_STATE_READY
        # reaches the enclave again: its session engine starts the key generation
        assert stub.StartDKG(DKG, metadata=signer.auth(), timeout=10).state == pb.SESSION_STATE_RUNNING
    signer.stop()
    enclave.stop()


def test_late_pings_must_repeat_before_health_turns(start_enclave, start_signer) -> None:
    """A paused enclave (SIGSTOP: the socket stays open, answers stop) is a late answer, not a
    dead one: a pause shorter than `health_misses` pings leaves the node SERVING, a longer one
    turns it NOT_SERVING, and it is SERVING again as soon as the enclave answers."""
    import os
    import signal

    enclave = start_enclave()
    signer = start_signer(enclave, config={"enclave": {"health_interval_seconds": 0.2, "health_misses": 6}})
    signer.wait_health(SERVING)
    pid = enclave.proc.pid
    seen = []
    os.kill(pid, signal.SIGSTOP)
    try:
        until = time.monotonic() + 0.5  # at most two late pings of 0.2 s each
        while time.monotonic() < until:
            seen.append(signer.health())
            time.sleep(0.05)
    finally:
        os.kill(pid, signal.SIGCONT)
    until = time.monotonic() + 1.0
    while time.monotonic() < until:
        seen.append(signer.health())
        time.sleep(0.05)
    assert set(seen) == {SERVING}, "one late ping must not flip health"

    os.kill(pid, signal.SIGSTOP)
    try:
        signer.wait_health(NOT_SERVING, timeout=10)
        assert "ping" in signer.log() and "missed" in signer.log()
    finally:
        os.kill(pid, signal.SIGCONT)
    signer.wait_health(SERVING, timeout=10)
    signer.stop()
    enclave.stop()
