"""ConsulRegistrar against a real Consul 1.8.7 agent: registration, TTL flip, outage, deregistration."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from signer.discovery import ConsulRegistrar, ConsulSettings
from tests.ops.consul_agent import ConsulAgent, free_port, start_agent

pytestmark = pytest.mark.consul


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[ConsulAgent]:
    a = start_agent(tmp_path / "consul")
    yield a
    a.stop()


def settings(agent_address: str, **kw: object) -> ConsulSettings:
    base: dict[str, object] = dict(
        address=agent_address,
        service_id="signer-a",
        advertise_host="127.0.0.1",
        advertise_port=free_port(),
        ttl_seconds=1.0,
        grpc_interval_seconds=1.0,
        retry_initial_seconds=0.1,
        retry_max_seconds=0.5,
    )
    base.update(kw)
    return ConsulSettings(**base)  # type: ignore[arg-type]


async def wait_for(pred: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():
                return
        except OSError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError("condition not reached in time")


async def test_registers_with_api_key_names_and_follows_enclave(agent: ConsulAgent) -> None:
    alive = True

    async def enclave_alive() -> bool:
        return alive

    s = settings(agent.address)
    reg = ConsulRegistrar(s, enclave_alive)
    await reg.start()
    try:
        await wait_for(lambda: "signer-a" in agent.services())
        svc = agent.services()["signer-a"]
        assert svc["Service"] == "mpc-signer" and svc["Port"] == s.advertise_port
        checks = agent.checks()
        # Both checks exist with the types we asked for: Consul 1.8 accepted the API key names.
        assert checks[s.grpc_check_id]["Type"] == "grpc"
        assert checks[s.ttl_check_id]["Type"] == "ttl"
        await wait_for(lambda: agent.checks()[s.ttl_check_id]["Status"] == "passing")
        alive = False
        await wait_for(lambda: agent.checks()[s.ttl_check_id]["Status"] == "critical")
        assert "does not answer" in str(agent.checks()[s.ttl_check_id]["Output"])
        alive = True
        await wait_for(lambda: agent.checks()[s.ttl_check_id]["Status"] == "passing")
    finally:
        await reg.stop()
    assert "signer-a" not in agent.services()
    assert s.ttl_check_id not in agent.checks()


async def test_outage_is_retried_and_registration_returns(tmp_path: Path) -> None:
    port = free_port()

    async def enclave_alive() -> bool:
        return True

    s = settings(f"http://127.0.0.1:{port}")
    reg = ConsulRegistrar(s, enclave_alive)
    await reg.start()  # no agent yet: the registrar keeps trying, never raises
    try:
        await wait_for(lambda: reg.attempts >= 2)
        assert not reg.registered
        agent = start_agent(tmp_path / "late", http_port=port)
        try:
            await wait_for(lambda: "signer-a" in agent.services())
            agent.stop()
            await wait_for(lambda: not reg.registered)  # TTL updates fail -> back to registering
            agent2 = start_agent(tmp_path / "again", http_port=port)
            try:
                await wait_for(lambda: "signer-a" in agent2.services())
            finally:
                agent2.stop()
        finally:
            agent.stop()
    finally:
        await asyncio.wait_for(reg.stop(), 20)


async def test_refused_definition_is_logged_as_refused(agent: ConsulAgent, caplog: pytest.LogCaptureFixture) -> None:
    """Consul 1.8 rejects a gRPC check with TLSServerName (added in 1.10): the registrar says the
    agent refused it, with Consul's reason, instead of calling the agent unavailable."""

    async def enclave_alive() -> bool:
        return True

    reg = ConsulRegistrar(settings(agent.address, grpc_tls_server_name="signer.internal"), enclave_alive)
    with caplog.at_level("ERROR", logger="signer.discovery"):
        await reg.start()
        try:
            await wait_for(lambda: reg.attempts >= 2)
        finally:
            await reg.stop()
    assert "signer-a" not in agent.services()
    refused = [r.getMessage() for r in caplog.records if "refused the registration" in r.getMessage()]
    assert refused and "BadRequest" in refused[0] and "400" in refused[0]
