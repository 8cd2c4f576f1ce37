"""Fault injection with nothing lost: the store restarted or down during a key generation, the
enclave killed in the middle of a signature, Consul stopped. Faults are injected at a chosen point
of a session by a relay party hook (tests.ops.nodes.HookedNode), not by timing.

PostgreSQL here is a private cluster (initdb/pg_ctl into a temporary directory, free port), never
the machine's shared server: the test stops and restarts it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import psycopg
import pytest
from grpc_health.v1 import health_pb2

from mpc.v1 import signer_pb2 as pb
from signer.client.relay import Relay
from signer.client.spec import SessionSpec
from tests.conftest import SignerProcess, free_port
from tests.ops.consul_agent import start_agent
from tests.ops.nodes import HookedNode, PrivatePostgres, postgres_bin, start_node, wait_until
from tests.ops.test_metrics_and_logs import scrape, value
from tests.service.conftest import FROST, GG20, check_signature, dkg, message_for, sid, sign

PARTIES = ("client", "signer")


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql/*/bin")
    pg = PrivatePostgres(bin_dir).init()
    pg.start()
    yield pg
    pg.destroy()


def stored_keys(url: str) -> list[str]:
    with psycopg.connect(url, autocommit=True) as conn:
        return [row[0] for row in conn.execute(b"SELECT key_id FROM keys ORDER BY key_id").fetchall()]


@pytest.mark.postgres
async def test_postgres_restarted_or_down_during_key_generation(
    tmp_path: Path,
    private_postgres: PrivatePostgres,
    start_signer: Callable[..., SignerProcess],
    local,
    connect,  # type: ignore[no-untyped-def]
) -> None:
    pg = private_postgres
    node = start_node(start_signer, tmp_path / "node", "signer", pg.url, tmp_path / "sealing.key")
    signer_client = connect(node)

    # 1. Restarted between two rounds: the session completes (the store reconnects) or fails
    #    cleanly; either way the store holds the key exactly when the session reports it.
    async def restart_once(kind: str, delivery: int) -> None:
        if delivery == 1:
            await asyncio.to_thread(pg.stop, "fast")
            await asyncio.to_thread(pg.start)

    spec = SessionSpec("dkg", sid("dkg-restart"), GG20, PARTIES, threshold=2)
    outcomes = await Relay({"client": local, "signer": HookedNode(signer_client, restart_once)}).run(spec)
    signer_outcome = outcomes["signer"]
    assert signer_outcome.finished
    if signer_outcome.ok:
        assert signer_outcome.result is not None
        assert stored_keys(pg.url) == [signer_outcome.result.dkg.key_id]
    else:
        assert stored_keys(pg.url) == []
    before = stored_keys(pg.url)

    # 2. Down when the key would be stored: the session fails with a clear reason, nothing is written.
    async def stop_at_first_delivery(kind: str, delivery: int) -> None:
        if delivery == 1:
            await asyncio.to_thread(pg.stop, "immediate")

    spec = SessionSpec("dkg", sid("dkg-down"), GG20, PARTIES, threshold=2)
    outcomes = await Relay({"client": local, "signer": HookedNode(signer_client, stop_at_first_delivery)}).run(spec)
    failed = outcomes["signer"]
    assert failed.state == pb.SESSION_STATE_FAILED
    assert failed.failure is not None and "could not be stored" in failed.failure.reason
    status = await signer_client.dkg_status(spec.session_id)
    assert status.state == pb.SESSION_STATE_FAILED
    pg.start()
    assert stored_keys(pg.url) == before  # no half-written key
    node.signer.wait_health(health_pb2.HealthCheckResponse.SERVING)  # the outage never touched serving

    # 3. The next key generation works and its key signs.
    relay = Relay({"client": local, "signer": signer_client})
    key = await dkg(relay, FROST, PARTIES, 2)
    assert stored_keys(pg.url) == sorted([*before, key.key_id])
    message = message_for(FROST, b"after the store came back")
    check_signature(FROST, key.public_key, message, await sign(relay, FROST, PARTIES, key.key_id, message))
    node.stop()


@pytest.mark.parametrize("protocol", [pytest.param(FROST, id="frost"), pytest.param(GG20, id="gg20")])
async def test_enclave_killed_mid_signature(
    protocol: int,
    tmp_path: Path,
    start_signer: Callable[..., SignerProcess],
    local,
    connect,  # type: ignore[no-untyped-def]
) -> None:
    metrics_port = free_port()
    node = start_node(
        start_signer,
        tmp_path / "node",
        "signer",
        f"sqlite:{tmp_path}/signer.db",
        tmp_path / "sealing.key",
        config={"metrics": {"listen": f"127.0.0.1:{metrics_port}"}},
    )
    signer_client = connect(node)
    key = await dkg(Relay({"client": local, "signer": signer_client}), protocol, PARTIES, 2)

    async def kill_enclave(kind: str, delivery: int) -> None:
        if delivery == 1:  # the signer has started the session; its next round needs the enclave
            await asyncio.to_thread(node.enclave.kill)

    message = message_for(protocol, b"interrupted")
    spec = SessionSpec("sign", sid("sign-killed"), protocol, PARTIES, key_id=key.key_id, message=message)  # type: ignore[arg-type]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await Relay({"client": local, "signer": HookedNode(signer_client, kill_enclave)}).run(spec)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "enclave" in (err.value.details() or "")
    status = await signer_client.sign_status(spec.session_id)
    assert status.state == pb.SESSION_STATE_FAILED
    assert "enclave became unavailable" in status.failure.reason

    node.enclave.start()
    node.signer.wait_health(health_pb2.HealthCheckResponse.SERVING, timeout=20)
    message = message_for(protocol, b"after the enclave restarted")
    relay = Relay({"client": local, "signer": signer_client})
    check_signature(protocol, key.public_key, message, await sign(relay, protocol, PARTIES, key.key_id, message))
    name = "frost_ed25519" if protocol == FROST else "gg20_secp256k1"
    wait_until(
        lambda: value(scrape(metrics_port), "mpc_signer_sessions_total", protocol=name, kind="sign", state="done") == 1,
        10,
        "the signature counted",
    )
    samples = scrape(metrics_port)
    assert value(samples, "mpc_signer_sessions_total", protocol=name, kind="sign", state="failed") == 1
    assert value(samples, "mpc_signer_sessions_total", protocol=name, kind="sign", state="done") == 1
    assert value(samples, "mpc_signer_sessions_active", protocol=name, kind="sign") == 0
    node.stop()


@pytest.mark.consul
async def test_signing_continues_while_consul_is_down(
    tmp_path: Path,
    start_signer: Callable[..., SignerProcess],
    local,
    connect,  # type: ignore[no-untyped-def]
) -> None:
    agent = start_agent(tmp_path / "consul")
    try:
        node = start_node(
            start_signer,
            tmp_path / "node",
            "signer",
            f"sqlite:{tmp_path}/signer.db",
            tmp_path / "sealing.key",
            config={
                "consul": {
                    "enabled": True,
                    "address": agent.address,
                    "service_id": "signer-faults",
                    "ttl_seconds": 1.0,
                    "check_interval_seconds": 1.0,
                }
            },
        )
        wait_until(lambda: "signer-faults" in agent.services(), 15, "registration")
        relay = Relay({"client": local, "signer": connect(node)})
        key = await dkg(relay, FROST, PARTIES, 2)
    finally:
        agent.stop()

    wait_until(lambda: "consul: agent at" in node.signer.log(), 15, "the outage noticed")
    for text in (b"consul is down", b"still down"):
        message = message_for(FROST, text)
        check_signature(FROST, key.public_key, message, await sign(relay, FROST, PARTIES, key.key_id, message))
    gg20_key = await dkg(relay, GG20, PARTIES, 2)  # and key generation too
    digest = message_for(GG20, b"consul is down")
    check_signature(GG20, gg20_key.public_key, digest, await sign(relay, GG20, PARTIES, gg20_key.key_id, digest))
    node.signer.wait_health(health_pb2.HealthCheckResponse.SERVING)
    node.stop()
