"""The server's shutdown order, observed in process on a real server (real enclave process, real
Consul agent, real store): health NOT_SERVING -> deregister -> stop with the grace period ->
close the store. Each step is recorded as it starts, with what the outside world sees then."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from grpc_health.v1 import health_pb2

from signer.config.loader import load_config
from signer.ops.devcerts import DevCertPaths
from signer.server import Credentials, SignerServer
from tests.conftest import EnclaveProcess, free_port, write_config
from tests.ops.consul_agent import ConsulAgent, start_agent
from tests.ops.test_consul_registration import wait_for

pytestmark = pytest.mark.consul


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[ConsulAgent]:
    a = start_agent(tmp_path / "consul")
    yield a
    a.stop()


async def test_shutdown_steps_in_order(
    tmp_path: Path, dev_certs: DevCertPaths, agent: ConsulAgent, start_enclave: Callable[..., EnclaveProcess]
) -> None:
    enclave = start_enclave()
    c = dev_certs
    path = write_config(
        tmp_path / "signer.toml",
        {
            "server": {"listen": f"127.0.0.1:{free_port()}", "node_id": "signer-order", "grace_seconds": 0.7},
            "tls": {"ca_file": c.ca, "cert_file": c.server_cert, "key_file": c.server_key},
            "jwt": {"keys": {"dev": c.jwt_pub}},
            "hmac": {"keys": {"dev": c.hmac_key}, "active_key_id": "dev"},
            "enclave": {"mode": "external", "address": enclave.address, "health_interval_seconds": 0.2},
            "storage": {"url": f"sqlite:{tmp_path}/signer.db"},
            "consul": {"enabled": True, "address": agent.address, "ttl_seconds": 1.0, "check_interval_seconds": 5.0},
        },
    )
    config = load_config(path, environ={})
    server = await SignerServer.open(config, Credentials.load(config))
    await server.start()
    await wait_for(lambda: "signer-order" in agent.services())
    status = await server.health.Check(health_pb2.HealthCheckRequest(service=""), None)  # type: ignore[arg-type]
    assert status.status == health_pb2.HealthCheckResponse.SERVING

    steps: list[tuple[str, Any]] = []

    async def health_status() -> int:
        response = await server.health.Check(health_pb2.HealthCheckRequest(service=""), None)  # type: ignore[arg-type]
        return int(response.status)

    def wrap(obj: Any, name: str, label: str, observe: Callable[..., Any]) -> None:
        inner = getattr(obj, name)

        async def recorded(*args: Any, **kw: Any) -> Any:
            steps.append((label, await observe(*args, **kw)))
            return await inner(*args, **kw)

        setattr(obj, name, recorded)

    async def at_deregister() -> tuple[int, bool]:
        return await health_status(), "signer-order" in agent.services()

    async def at_stop(grace: float) -> tuple[float, bool]:
        return grace, "signer-order" in agent.services()

    async def at_close() -> bool:
        # The gRPC port no longer accepts connections when the store closes.
        try:
            socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
        except OSError:
            return True
        return False

    assert server.registrar is not None and server.store is not None
    wrap(server.health, "enter_graceful_shutdown", "health", lambda: _none())
    wrap(server.registrar, "stop", "deregister", at_deregister)
    wrap(server.server, "stop", "stop", at_stop)
    wrap(server.store, "close", "close store", at_close)
    await server.stop()

    assert [label for label, _ in steps] == ["health", "deregister", "stop", "close store"]
    observed = dict(steps)
    # Deregistration comes after health turned NOT_SERVING and while the service was still listed.
    assert observed["deregister"] == (health_pb2.HealthCheckResponse.NOT_SERVING, True)
    # The server stops with the configured grace period, once the service is gone from Consul.
    assert observed["stop"] == (0.7, False)
    assert observed["close store"] is True  # the server no longer listens
    enclave.stop()


async def _none() -> None:
    return None
