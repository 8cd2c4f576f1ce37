"""GetKey, ListKeys and RetireKey through real processes: two signers over mTLS with the real
enclave, one on SQLite and one on PostgreSQL, and the caller's party in process.

Each key is made by a relayed DKG; its records are checked against the DKG result on both
nodes; it signs before retirement (every signature checked by libsodium / libsecp256k1 and, for
GG20, by eth_keys address recovery) and is refused after it with FAILED_PRECONDITION, its
presignatures gone; the calls work on the Exchange stream too."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import grpc
import pytest

from mpc.v1 import signer_pb2 as pb
from signer.client.client import SignerClient
from signer.client.local import LocalNode
from signer.client.relay import Relay
from tests.conftest import free_port
from tests.ops.test_metrics_and_logs import check_labels, scrape, value
from tests.service.conftest import (
    FROST,
    GG20,
    KECCAK,
    PROTOCOLS,
    Node,
    check_signature,
    dkg,
    message_for,
    presign,
    sid,
    sign,
    status_of,
)

PARTIES = ("client", "signer-a", "signer-b")
SIGNERS = ("client", "signer-a")


METRICS_PORT = free_port()


@pytest.fixture(scope="module")
def nodes(start_node: Callable[..., Node]) -> tuple[Node, Node]:
    metrics = {"metrics": {"listen": f"127.0.0.1:{METRICS_PORT}", "pool_refresh_seconds": 0.2}}
    return start_node("signer-a", store="sqlite", config=metrics), start_node("signer-b", store="postgresql")


def relay_for(local: LocalNode, a: SignerClient, b: SignerClient) -> Relay:
    return Relay({"client": local, "signer-a": a, "signer-b": b})


def check_record(info: pb.KeyInfo, key: pb.DKGResult, self_party: str, state: int, since_ms: int) -> None:
    assert (info.key_id, info.protocol, info.public_key, info.chain_code) == (
        key.key_id,
        key.protocol,
        key.public_key,
        key.chain_code,
    )
    assert info.threshold == key.threshold and list(info.party_ids) == list(key.party_ids) == list(PARTIES)
    assert info.self_party_id == self_party and info.state == state
    assert since_ms <= info.created_at_unix_ms <= int(time.time() * 1000)
    assert info.predecessor_key_id == "" and key.predecessor_key_id == ""
    if state == pb.KEY_STATE_ACTIVE:
        assert info.retired_at_unix_ms == 0
    else:
        assert info.created_at_unix_ms <= info.retired_at_unix_ms <= int(time.time() * 1000)


def start_sign_request(protocol: int, key_id: str, message: bytes, presignature_id: str = "") -> pb.StartSignRequest:
    return pb.StartSignRequest(
        session_id=sid("late"),
        protocol=protocol,  # type: ignore[arg-type]
        key_id=key_id,
        message=message,
        party_ids=SIGNERS,
        self_party_id="signer-a",
        presignature_id=presignature_id,
        message_hash=KECCAK if presignature_id else pb.MESSAGE_HASH_UNSPECIFIED,
    )


def available_presignatures(node: Node, key_id: str) -> int:
    rows = node.raw_sql("SELECT count(*) FROM presignatures WHERE key_id = ? AND state = 'available'", (key_id,))
    return int(rows[0][0])


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_lookup_then_retire(nodes, local, connect, protocol: int) -> None:  # type: ignore[no-untyped-def]
    a_node, b_node = nodes
    a, b = connect(a_node), connect(b_node)
    relay = relay_for(local, a, b)
    since = int(time.time() * 1000) - 1
    key = await dkg(relay, protocol, PARTIES, 2)
    for client, party in ((a, "signer-a"), (b, "signer-b")):
        check_record(await client.get_key(key.key_id), key, party, pb.KEY_STATE_ACTIVE, since)

    # it signs before retirement
    message = message_for(protocol, b"before retirement")
    check_signature(protocol, key.public_key, message, await sign(relay, protocol, SIGNERS, key.key_id, message))
    presig = ""
    if protocol == GG20:
        presig = await presign(relay, SIGNERS, key.key_id)
        assert available_presignatures(a_node, key.key_id) == 1

    # retire on both nodes; a repeat answers the same
    retired = {}
    for client, party in ((a, "signer-a"), (b, "signer-b")):
        info = await client.retire_key(key.key_id)
        check_record(info, key, party, pb.KEY_STATE_RETIRED, since)
        assert await client.retire_key(key.key_id) == info
        assert await client.get_key(key.key_id) == info
        retired[party] = info

    # refused after it, with a clear status, through every door that would use the share
    code, message_text = await status_of(a.start_sign(start_sign_request(protocol, key.key_id, message)))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert f"key {key.key_id} is retired (at " in message_text
    if protocol == GG20:
        assert available_presignatures(a_node, key.key_id) == 0
        request = start_sign_request(protocol, key.key_id, b"with the presignature", presig)
        code, message_text = await status_of(a.start_sign(request))
        assert code == grpc.StatusCode.FAILED_PRECONDITION and "is retired" in message_text
        blobs = a_node.raw_sql("SELECT state, length(sealed) FROM presignatures WHERE presig_id = ?", (presig,))
        assert blobs == [("consumed", 0)]
        presign_request = pb.StartPresignRequest(
            session_id=sid("pre"), protocol=GG20, key_id=key.key_id, party_ids=SIGNERS, self_party_id="signer-a"
        )
        code, message_text = await status_of(a.start_presign(presign_request))
        assert code == grpc.StatusCode.FAILED_PRECONDITION and "is retired" in message_text
    code, message_text = await status_of(a.validate_key(key.key_id))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "is retired" in message_text
    for node in nodes:
        assert node.raw_sql("SELECT length(sealed_share) FROM keys WHERE key_id = ?", (key.key_id,)) == [(0,)]
        audit = node.raw_sql(
            "SELECT result, caller FROM audit WHERE key_id = ? AND operation = 'retire'", (key.key_id,)
        )
        assert len(audit) == 1 and audit[0][0] == "ok" and "sub=" in audit[0][1]  # the repeat wrote none


async def test_unknown_and_malformed_requests(nodes, connect) -> None:  # type: ignore[no-untyped-def]
    client = connect(nodes[0])
    unknown = "ab" * 32
    for call in (client.get_key(unknown), client.retire_key(unknown)):
        code, message = await status_of(call)
        assert code == grpc.StatusCode.NOT_FOUND and f"key {unknown} is not known on this node" in message
    for call in (client.get_key("nope"), client.retire_key("AB" * 32)):
        code, message = await status_of(call)
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "key_id" in message
    code, message = await status_of(client.list_keys(page_token="not a token"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "page_token" in message
    code, message = await status_of(client.list_keys(page_size=1001))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "page_size" in message
    code, message = await status_of(client.list_keys(state=7))  # type: ignore[arg-type]
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "state" in message


async def test_list_keys_pages_and_filters(nodes, local, connect) -> None:  # type: ignore[no-untyped-def]
    a_node, b_node = nodes
    a, b = connect(a_node), connect(b_node)
    relay = relay_for(local, a, b)
    made = [await dkg(relay, FROST, PARTIES, 2) for _ in range(3)]
    await a.retire_key(made[0].key_id)

    everything = await a.all_keys()
    ids = [k.key_id for k in everything]
    assert ids == sorted(ids) and {k.key_id for k in made} <= set(ids)
    walked: list[str] = []
    token = ""
    while True:
        page = await a.list_keys(page_size=1, page_token=token)
        assert len(page.keys) <= 1
        walked += [k.key_id for k in page.keys]
        token = page.next_page_token
        if not token:
            break
    assert walked == ids

    retired = {k.key_id for k in await a.all_keys(state=pb.KEY_STATE_RETIRED)}
    active = {k.key_id for k in await a.all_keys(state=pb.KEY_STATE_ACTIVE)}
    assert made[0].key_id in retired and {made[1].key_id, made[2].key_id} <= active and not retired & active
    assert retired | active == set(ids)
    gg20 = await a.all_keys(protocol=GG20)
    assert all(k.protocol == GG20 for k in gg20) and not {k.key_id for k in made} & {k.key_id for k in gg20}
    # signer-b retired nothing
    assert made[0].key_id in {k.key_id for k in await b.all_keys(state=pb.KEY_STATE_ACTIVE)}


async def test_retirement_waits_for_running_sessions(nodes, local, connect) -> None:  # type: ignore[no-untyped-def]
    a_node, b_node = nodes
    a, b = connect(a_node), connect(b_node)
    key = await dkg(relay_for(local, a, b), FROST, PARTIES, 2)
    # a signing session started on signer-a alone stays running (nobody relays its messages)
    request = start_sign_request(FROST, key.key_id, b"pending")
    started = await a.start_sign(request)
    assert started.state == pb.SESSION_STATE_RUNNING
    code, message = await status_of(a.retire_key(key.key_id))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and request.session_id in message
    assert (await a.get_key(key.key_id)).state == pb.KEY_STATE_ACTIVE
    refused = a_node.raw_sql("SELECT result FROM audit WHERE key_id = ? AND operation = 'retire'", (key.key_id,))
    assert refused == [("failed",)]
    # the key still signs
    message = message_for(FROST, b"still active")
    result = await sign(relay_for(local, a, b), FROST, SIGNERS, key.key_id, message)
    check_signature(FROST, key.public_key, message, result)


async def test_exchange_stream_variants(nodes, local, clients) -> None:  # type: ignore[no-untyped-def]
    a_node, b_node = nodes
    a, b = clients(a_node), clients(b_node)
    key = await dkg(relay_for(local, a, b), FROST, PARTIES, 2)
    info = await a.get_key(key.key_id)
    assert info.state == pb.KEY_STATE_ACTIVE and info.public_key == key.public_key
    page = await a.list_keys(page_size=1000)
    assert key.key_id in {k.key_id for k in page.keys}
    retired = await a.retire_key(key.key_id)
    assert retired.state == pb.KEY_STATE_RETIRED and await a.retire_key(key.key_id) == retired
    code, message = await status_of(a.get_key("cd" * 32))
    assert code == grpc.StatusCode.NOT_FOUND and "not known" in message
    code, message = await status_of(a.start_sign(start_sign_request(FROST, key.key_id, b"late")))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "is retired" in message


async def test_retirements_are_counted(nodes, local, connect) -> None:  # type: ignore[no-untyped-def]
    a_node, b_node = nodes
    a, b = connect(a_node), connect(b_node)
    key = await dkg(relay_for(local, a, b), FROST, PARTIES, 2)
    before = value(scrape(METRICS_PORT), "mpc_signer_keys_retired_total")
    await a.retire_key(key.key_id)
    await a.retire_key(key.key_id)  # a repeat destroys nothing and counts nothing
    samples = scrape(METRICS_PORT)
    check_labels(samples)
    assert value(samples, "mpc_signer_keys_retired_total") == before + 1
    retired = len(await a.all_keys(state=pb.KEY_STATE_RETIRED))
    active = len(await a.all_keys(state=pb.KEY_STATE_ACTIVE))
    deadline = time.monotonic() + 10
    while (
        value(samples, "mpc_signer_keys", state="retired"),
        value(samples, "mpc_signer_keys", state="active"),
    ) != (retired, active):
        assert time.monotonic() < deadline, "the key gauges never caught up"
        await asyncio.sleep(0.2)
        samples = scrape(METRICS_PORT)
