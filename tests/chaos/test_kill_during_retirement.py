"""kill -9 of the signer host during and around RetireKey, on SQLite and PostgreSQL.

Retirement is one transaction (signer/api/keys.py). Whenever the host dies, the key must come
back either ACTIVE, with its share, no retirement audit record, and signing (each signature
checked with libsodium), or RETIRED cleanly: no share, no unused presignature, exactly one
retirement audit record, every start refused with FAILED_PRECONDITION, and a repeated RetireKey
answering the same record. Never a key that is neither.

Kills land at several delays after the request was sent (before, during or after the commit),
once right after RetireKey answered (it must be RETIRED: the answer means durable), and, on
PostgreSQL, deterministically inside the transaction: the key row is locked from outside so the
host's retirement waits in its SELECT ... FOR UPDATE, the host is killed there, then the lock is
released (it must be ACTIVE: the transaction never committed).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import grpc
import psycopg
import pytest
from grpc_health.v1 import health_pb2

from mpc.v1 import signer_pb2 as pb
from signer.client.relay import Relay
from tests.service.conftest import FROST, GG20, KECCAK, Node, check_signature, dkg, message_for, presign, sid, sign

PARTIES = ("client", "signer-a", "signer-b")
SIGNERS = ("client", "signer-a")
# The kill comes this many times RetireKey's measured latency after the request is sent.
DELAYS = (0.0, 0.3, 0.6, 0.9, 1.2, 2.0)
STORES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


async def restart_host(node: Node) -> None:
    assert node.signer.proc is not None
    node.signer.proc.kill()
    await asyncio.to_thread(node.signer.proc.wait, 10)
    await asyncio.to_thread(node.signer.start)
    await asyncio.to_thread(node.signer.wait_health, health_pb2.HealthCheckResponse.SERVING, 20)


def share_size(node: Node, key_id: str) -> int:
    return int(node.raw_sql("SELECT length(sealed_share) FROM keys WHERE key_id = ?", (key_id,))[0][0])


def retire_audits(node: Node, key_id: str) -> int:
    rows = node.raw_sql(
        "SELECT count(*) FROM audit WHERE key_id = ? AND operation = 'retire' AND result = 'ok'", (key_id,)
    )
    return int(rows[0][0])


def available(node: Node, key_id: str) -> int:
    rows = node.raw_sql("SELECT count(*) FROM presignatures WHERE key_id = ? AND state = 'available'", (key_id,))
    return int(rows[0][0])


async def check_whole(node: Node, relay: Relay, client: Any, key: pb.DKGResult, presignature_id: str = "") -> str:
    """The key is ACTIVE and signs, or RETIRED cleanly; which one."""
    info = await client.get_key(key.key_id)
    if info.state == pb.KEY_STATE_ACTIVE:
        assert share_size(node, key.key_id) > 0 and retire_audits(node, key.key_id) == 0
        assert info.retired_at_unix_ms == 0
        message = message_for(key.protocol, b"after the kill " + key.key_id.encode())
        if presignature_id:  # the unused presignature survived with the key, and signs once
            assert available(node, key.key_id) == 1
            result = await sign(
                relay, key.protocol, SIGNERS, key.key_id, b"with it", presignature_id, message_hash=KECCAK
            )
            check_signature(key.protocol, key.public_key, message_for(GG20, b"with it"), result)
        result = await sign(relay, key.protocol, SIGNERS, key.key_id, message)
        check_signature(key.protocol, key.public_key, message, result)
        return "active"
    assert info.state == pb.KEY_STATE_RETIRED and info.retired_at_unix_ms > 0
    assert share_size(node, key.key_id) == 0 and available(node, key.key_id) == 0
    assert retire_audits(node, key.key_id) == 1
    request = pb.StartSignRequest(
        session_id=sid("late"),
        protocol=key.protocol,
        key_id=key.key_id,
        message=message_for(key.protocol, b"late"),
        party_ids=SIGNERS,
        self_party_id="signer-a",
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await client.start_sign(request)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "is retired" in (
        refused.value.details() or ""
    )
    assert await client.retire_key(key.key_id) == info
    return "retired"


@pytest.mark.parametrize("store", STORES)
async def test_kill_around_retirement_leaves_the_key_whole(store: str, start_node, local, clients) -> None:  # type: ignore[no-untyped-def]
    a_node = start_node(f"retire-a-{store}", store=store)
    b_node = start_node(f"retire-b-{store}")
    b = clients(b_node, exchange=False)

    def relay_with(a: Any) -> Relay:
        return Relay({"client": local, "signer-a": a, "signer-b": b})

    a = clients(a_node, exchange=False)
    keys = [await dkg(relay_with(a), FROST, PARTIES, 2) for _ in DELAYS]
    gg20 = await dkg(relay_with(a), GG20, PARTIES, 2)
    presig = await presign(relay_with(a), SIGNERS, gg20.key_id)
    answered = await dkg(relay_with(a), FROST, PARTIES, 2)

    # An answered RetireKey is durable (and says how long one takes).
    began = time.perf_counter()
    assert (await a.retire_key(answered.key_id)).state == pb.KEY_STATE_RETIRED
    latency = time.perf_counter() - began
    await restart_host(a_node)
    a = clients(a_node, exchange=False)
    assert await check_whole(a_node, relay_with(a), a, answered) == "retired"

    outcomes: list[tuple[float, str]] = []
    for key, delay in [*zip(keys, DELAYS, strict=True), (gg20, 0.6)]:
        call = asyncio.ensure_future(clients(a_node, exchange=False).retire_key(key.key_id))
        await asyncio.sleep(delay * latency)
        await restart_host(a_node)
        with contextlib.suppress(grpc.aio.AioRpcError):
            await call  # answered before the kill, or cut off by it
        a = clients(a_node, exchange=False)
        outcomes.append((delay, await check_whole(a_node, relay_with(a), a, key, presig if key is gg20 else "")))
    print(f"retirement kills on {store} (RetireKey {latency * 1000:.1f} ms): {outcomes}")


@pytest.mark.postgres
async def test_kill_inside_the_retirement_transaction(start_node, local, clients) -> None:  # type: ignore[no-untyped-def]
    a_node = start_node("retire-tx-a", store="postgresql")
    b = clients(start_node("retire-tx-b"), exchange=False)
    a = clients(a_node, exchange=False)
    relay = Relay({"client": local, "signer-a": a, "signer-b": b})
    key = await dkg(relay, FROST, PARTIES, 2)

    with psycopg.connect(a_node.store_url) as blocker:
        blocker.execute(b"SELECT 1 FROM keys WHERE key_id = %s FOR UPDATE", (key.key_id,))
        (blocker_pid,) = blocker.execute(b"SELECT pg_backend_pid()").fetchone()  # type: ignore[misc]
        call = asyncio.ensure_future(clients(a_node, exchange=False).retire_key(key.key_id))
        with psycopg.connect(a_node.store_url, autocommit=True) as watch:
            deadline = time.monotonic() + 10
            while not watch.execute(
                b"SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", (blocker_pid,)
            ).fetchone()[0]:  # type: ignore[index]
                assert time.monotonic() < deadline, "the retirement never reached the locked row"
                await asyncio.sleep(0.01)
        await restart_host(a_node)  # killed while its transaction waits inside SELECT ... FOR UPDATE
        blocker.rollback()
    with contextlib.suppress(grpc.aio.AioRpcError):
        await call
    a = clients(a_node, exchange=False)
    relay = Relay({"client": local, "signer-a": a, "signer-b": b})
    assert await check_whole(a_node, relay, a, key) == "active"
