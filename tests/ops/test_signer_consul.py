"""A real `mpc-signer serve` process registered in a real Consul 1.8.7 agent.

The agent runs its gRPC health check over mTLS with the dev client certificate (an identity on the
signer's allowlist), so a passing gRPC check proves the whole chain: Consul's TLS client, the
signer's client-certificate check and allowlist, and the health service.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from grpc_health.v1 import health_pb2

from signer.ops.devcerts import DevCertPaths
from tests.conftest import EnclaveProcess, SignerProcess, wait_for
from tests.ops.consul_agent import ConsulAgent, start_agent

pytestmark = pytest.mark.consul


def tls_agent_config(certs: DevCertPaths) -> dict[str, Any]:
    """Agent settings for checks over mTLS. Consul 1.8 verifies the signer's certificate against
    `ca_file` under the name `server_name` (else its node name), and presents cert_file/key_file."""
    return {
        "ca_file": str(certs.ca),
        "cert_file": str(certs.client_cert),
        "key_file": str(certs.client_key),
        "enable_agent_tls_for_checks": True,
        "server_name": "localhost",
    }


@pytest.fixture
def tls_agent(tmp_path: Path, dev_certs: DevCertPaths) -> Iterator[ConsulAgent]:
    agent = start_agent(tmp_path / "consul", tls=tls_agent_config(dev_certs))
    yield agent
    agent.stop()


def consul_section(agent: ConsulAgent, service_id: str) -> dict[str, Any]:
    return {
        "enabled": True,
        "address": agent.address,
        "service_id": service_id,
        "ttl_seconds": 1.0,
        "check_interval_seconds": 1.0,
    }


def check_status(agent: ConsulAgent, check_id: str) -> str | None:
    try:
        check = agent.checks().get(check_id)
    except OSError:  # a loaded machine may make the agent's HTTP API slow to answer
        return None
    return None if check is None else str(check["Status"])


def passing_ids(agent: ConsulAgent) -> list[str] | None:
    """Service ids from the health-filtered query mpc-service uses."""
    try:
        entries = agent.get("/v1/health/service/mpc-signer?passing=1")
    except OSError:
        return None
    assert isinstance(entries, list)
    return [e["Service"]["ID"] for e in entries]


def test_signer_registers_follows_enclave_and_deregisters_on_sigterm(
    tls_agent: ConsulAgent,
    start_enclave: Callable[..., EnclaveProcess],
    start_signer: Callable[..., SignerProcess],
) -> None:
    enclave = start_enclave()
    signer = start_signer(enclave, {"consul": consul_section(tls_agent, "signer-consul-1")})
    grpc_check, ttl_check = "signer-consul-1:grpc", "signer-consul-1:enclave"

    wait_for(lambda: check_status(tls_agent, ttl_check) is not None, 15, "registration")
    service = tls_agent.services()["signer-consul-1"]
    assert service["Service"] == "mpc-signer"
    assert service["Port"] == signer.port and service["Address"] == "127.0.0.1"
    assert service["Meta"] == {"node_id": "signer-test"}
    # Consul's own mTLS call to grpc.health.v1.Health/Check succeeds, and the host passes the TTL.
    wait_for(lambda: check_status(tls_agent, grpc_check) == "passing", 20, "gRPC check passing")
    wait_for(lambda: check_status(tls_agent, ttl_check) == "passing", 10, "TTL check passing")

    enclave.kill()
    wait_for(lambda: check_status(tls_agent, ttl_check) == "critical", 10, "TTL check critical")
    assert "does not answer" in str(tls_agent.checks()[ttl_check]["Output"])
    # The signer reports NOT_SERVING too, so Consul's gRPC check follows.
    wait_for(lambda: check_status(tls_agent, grpc_check) == "critical", 15, "gRPC check critical")
    # A health-filtered query (what mpc-service uses) no longer returns the instance.
    wait_for(lambda: passing_ids(tls_agent) == [], 10, "no passing instance")

    enclave.start()
    wait_for(lambda: check_status(tls_agent, ttl_check) == "passing", 10, "TTL check passing again")
    wait_for(lambda: check_status(tls_agent, grpc_check) == "passing", 15, "gRPC check passing again")
    # (Consul's gRPC check times out after 1 s here, so a loaded machine may flip it for a moment.)
    wait_for(lambda: passing_ids(tls_agent) == ["signer-consul-1"], 15, "the instance passing again")

    assert signer.proc is not None
    signer.proc.send_signal(signal.SIGTERM)
    assert signer.proc.wait(20) == 0
    assert "signer-consul-1" not in tls_agent.services()
    assert grpc_check not in tls_agent.checks() and ttl_check not in tls_agent.checks()
    log = signer.log()
    assert log.index("shutting down") < log.index("consul: deregistered service signer-consul-1")
    enclave.stop()


def test_consul_outage_never_stops_serving(
    tmp_path: Path,
    dev_certs: DevCertPaths,
    start_enclave: Callable[..., EnclaveProcess],
    start_signer: Callable[..., SignerProcess],
) -> None:
    agent = start_agent(tmp_path / "consul", tls=tls_agent_config(dev_certs))
    try:
        enclave = start_enclave()
        signer = start_signer(enclave, {"consul": consul_section(agent, "signer-consul-2")})
        wait_for(lambda: "signer-consul-2" in agent.services(), 15, "registration")
    finally:
        agent.stop()
    # No agent: the signer keeps serving (health and authenticated calls) and retries in the background.
    signer.wait_health(health_pb2.HealthCheckResponse.SERVING)
    from mpc.v1 import signer_pb2

    with signer.channel() as channel:
        reply = signer.stub(channel).Ping(signer_pb2.PingRequest(), timeout=5)
    assert reply.enclave_state == signer_pb2.ENCLAVE_STATE_READY
    wait_for(lambda: "unavailable" in signer.log() and "retrying" in signer.log(), 15, "retry logged")
    # The agent comes back on the same port: the registrar registers again by itself.
    again = start_agent(tmp_path / "consul-again", http_port=agent.http_port, tls=tls_agent_config(dev_certs))
    try:
        wait_for(lambda: "signer-consul-2" in again.services(), 20, "registration after the outage")
    finally:
        again.stop()
    signer.stop()
    enclave.stop()
