"""kill -9 of the enclave and of the signer host under a mixed load, on SQLite and PostgreSQL.

While FROST and GG20 key generations, FROST signatures, GG20 presignatures and GG20 online
signatures run (tests.chaos.load), the victim process is killed with SIGKILL and started again
at once, as its supervisor would. Then:
- the service is back within RECOVERY_BOUND seconds: health SERVING on a fresh channel and a
  FROST signature through the load's own client; every operation started after that succeeds;
- while it was down, calls failed with a status from the table (never INTERNAL or UNKNOWN);
- no key reported DONE is lost: every key the client saw DONE is in the store and signs after the
  restart (each signature checked with libsodium / libsecp256k1);
- no presignature signs twice: at most one signature per presignature id, every GG20 signature
  has its own r, every presignature that signed is consumed in the store and refused when asked
  for again; after an enclave restart, the earlier boot's unused presignatures are refused too.
"""

from __future__ import annotations

import asyncio
import collections
import time
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2

from mpc.v1 import signer_pb2 as pb
from signer.client.relay import Relay
from signer.client.spec import SessionSpec
from tests.chaos.load import PARTIES, ChaosLoad
from tests.service.conftest import FROST, GG20, Node, check_signature, dkg, message_for, presign, sid, sign

RECOVERY_BOUND = 30.0  # seconds from the kill to the service answering again
LOAD_BEFORE = 4.0  # seconds of load before the kill
LOAD_AFTER = 3.0  # seconds of load after the service is back
# What a call may fail with while a process is down or just back; never INTERNAL or UNKNOWN.
OUTAGE_CODES = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.CANCELLED,
}
STORES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def healthy(node: Node) -> bool:
    try:
        return node.signer.health() == health_pb2.HealthCheckResponse.SERVING
    except grpc.RpcError:
        return False


async def kill_and_restart(node: Node, victim: str, load: ChaosLoad) -> None:
    """SIGKILL the victim and start it again at once, as its supervisor would."""
    if victim == "enclave":
        load.epoch += 1  # presignatures started from now on belong to the next boot
        await asyncio.to_thread(node.enclave.kill)
        await asyncio.to_thread(node.enclave.start)
    else:
        assert node.signer.proc is not None
        node.signer.proc.kill()
        await asyncio.to_thread(node.signer.proc.wait, 10)
        await asyncio.to_thread(node.signer.start)


async def refused(client: Any, key_id: str, presignature_id: str) -> grpc.StatusCode | None:
    """StartSign on the signer alone with this presignature: the refusal's code, None if accepted."""
    spec = SessionSpec(
        "sign",
        sid("again"),
        GG20,
        PARTIES,
        key_id=key_id,
        message=b"again",  # type: ignore[arg-type]
        message_hash=pb.MESSAGE_HASH_SHA256,
        presignature_id=presignature_id,
    )
    try:
        await client.party("signer").start(spec)
    except grpc.aio.AioRpcError as exc:
        return exc.code()
    return None


@pytest.mark.parametrize("victim", ["enclave", "host"])
@pytest.mark.parametrize("store", STORES)
async def test_kill_under_load_loses_no_key_and_reuses_no_presignature(  # type: ignore[no-untyped-def]
    store: str, victim: str, start_node, local, clients
) -> None:
    node = start_node(f"chaos-{victim}", store=store)
    client = clients(node)
    relay = Relay({"client": local, "signer": client})
    load = ChaosLoad(relay, await dkg(relay, FROST, PARTIES, 2), await dkg(relay, GG20, PARTIES, 2))
    load.start()
    await asyncio.sleep(LOAD_BEFORE)

    killed_at = time.monotonic()
    await kill_and_restart(node, victim, load)
    # Back: health SERVING on a fresh channel, then a FROST signature started since then succeeds
    # through the load's own client (whose channel may still be waiting to reconnect).
    while not await asyncio.to_thread(healthy, node):
        assert time.monotonic() - killed_at < RECOVERY_BOUND, f"not serving {RECOVERY_BOUND}s after the kill"
        await asyncio.sleep(0.1)
    serving_at = time.monotonic()
    while (back_at := load.first_success("frost_sign", serving_at)) is None:
        assert time.monotonic() - killed_at < RECOVERY_BOUND, f"not signing {RECOVERY_BOUND}s after the kill"
        await asyncio.sleep(0.1)
    await asyncio.sleep(LOAD_AFTER)
    await load.stop()
    rec = load.record
    print(
        f"{victim} kill on {store}: back after {back_at - killed_at:.1f}s; {len(rec.ops)} operations, "
        f"{sum(op.failure is not None for op in rec.ops)} failed"
    )

    # Calls failed only around the outage, and only with the table's statuses.
    late = [op for op in rec.ops if op.failure is not None and op.started >= back_at]
    assert not late, late[:5]
    codes = {op.code for op in rec.ops if op.code is not None}
    assert codes <= OUTAGE_CODES, codes
    assert any(op.failure is None and op.ended < killed_at for op in rec.ops), "the load ran before the kill"
    assert rec.bad_signatures == 0

    # No presignature signed twice: one signature per id, distinct r, consumed and refused again.
    gg20_signed = [s for s in rec.signed if s.presignature_id]
    per_id = collections.Counter(s.presignature_id for s in gg20_signed)
    assert gg20_signed and max(per_id.values()) == 1, per_id.most_common(3)
    assert len({s.signature[:32] for s in gg20_signed}) == len(gg20_signed), "two GG20 signatures share r"
    states = dict(node.raw_sql("SELECT presig_id, state FROM presignatures"))
    for s in gg20_signed:
        assert states.get(s.presignature_id) == "consumed", (s.presignature_id, states.get(s.presignature_id))
        code = await refused(client, load.gg20_key.key_id, s.presignature_id)
        assert code in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND), code
    if victim == "enclave":
        for presignature_id in rec.earlier_boot:
            code = await refused(client, load.gg20_key.key_id, presignature_id)
            assert code in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND), code

    # No key reported DONE is lost: each is stored and signs after the restart.
    stored = {row[0] for row in node.raw_sql("SELECT key_id FROM keys")}
    keys = [*rec.frost_keys, *rec.gg20_keys]
    # (FROST keys are made many times a second; a GG20 one takes seconds, so it may not finish
    # within the load on a busy machine: those made are checked all the same)
    assert len(rec.frost_keys) >= 3, len(rec.frost_keys)
    assert {k.key_id for k in keys} <= stored
    for key in keys:
        if key.key_id == load.gg20_key.key_id:
            continue  # it has presignatures in the signer's store: signed below with a named one
        message = message_for(key.protocol, b"after the kill " + key.key_id.encode())
        check_signature(
            key.protocol, key.public_key, message, await sign(relay, key.protocol, PARTIES, key.key_id, message)
        )
    # And GG20 presigning works on the new boot, one signature per presignature.
    fresh = await presign(relay, PARTIES, load.gg20_key.key_id)
    check_signature(
        GG20,
        load.gg20_key.public_key,
        message_for(GG20, b"a fresh presignature"),
        await sign(
            relay,
            GG20,
            PARTIES,
            load.gg20_key.key_id,
            b"a fresh presignature",
            fresh,
            message_hash=pb.MESSAGE_HASH_KECCAK256,
        ),
    )
    assert await refused(client, load.gg20_key.key_id, fresh) in (
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.NOT_FOUND,
    )
    assert node.enclave.alive() and node.signer.proc is not None and node.signer.proc.poll() is None
