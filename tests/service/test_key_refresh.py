"""StartRefresh / GetRefreshStatus through real processes: two signers over mTLS with the real
enclave, one on SQLite and one on PostgreSQL, and the caller's party in process.

Each key is made by a relayed DKG and refreshed by a relayed refresh of all three parties. The
successor has a new key id and the same public key, chain code, parties and threshold; it signs
(every signature checked by libsodium / libsecp256k1 and, for GG20, by eth_keys address
recovery), the old key still signs until it is retired everywhere, then is refused with
FAILED_PRECONDITION while the successor signs on. Refusals (unknown, retired, mismatched or
malformed requests, a retirement while a refresh of the key runs) carry precise statuses and
leave the store as it was. For every suite, the chain code is kept: derived keys do not change."""

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
from signer.client.spec import SessionSpec
from signer.client.verify import verify
from tests.conftest import free_port
from tests.ops.test_metrics_and_logs import check_labels, scrape, value
from tests.service.conftest import (
    FROST,
    GG20,
    PROTOCOLS,
    Node,
    all_ok,
    check_signature,
    dkg,
    message_for,
    sid,
    sign,
    status_of,
)

PARTIES = ("client", "signer-a", "signer-b")
METRICS_PORT = free_port()


@pytest.fixture(scope="module")
def nodes(start_node: Callable[..., Node]) -> tuple[Node, Node]:
    metrics = {"metrics": {"listen": f"127.0.0.1:{METRICS_PORT}"}}
    return start_node("signer-a", store="sqlite", config=metrics), start_node("signer-b", store="postgresql")


def relay_for(local: LocalNode, a: SignerClient, b: SignerClient) -> Relay:
    return Relay({"client": local, "signer-a": a, "signer-b": b})


async def refresh(relay: Relay, key: pb.DKGResult, threshold: int = 0) -> pb.DKGResult:
    spec = SessionSpec("refresh", sid("refresh"), key.protocol, PARTIES, threshold=threshold, key_id=key.key_id)
    results = all_ok(await relay.run(spec))
    assert {p: r.WhichOneof("result") for p, r in results.items()} == dict.fromkeys(PARTIES, "dkg")
    first = results["client"].dkg
    assert all(r.dkg == first for r in results.values()), "every party reports the same successor"
    return first


def refresh_request(key: pb.DKGResult, **changes: object) -> pb.StartRefreshRequest:
    fields: dict[str, object] = dict(
        session_id=sid("bad"),
        protocol=key.protocol,
        key_id=key.key_id,
        party_ids=PARTIES,
        self_party_id="signer-a",
    )
    fields.update(changes)
    return pb.StartRefreshRequest(**fields)  # type: ignore[arg-type]


def key_rows(node: Node) -> int:
    return int(node.raw_sql("SELECT count(*) FROM keys")[0][0])


async def check_signs(relay: Relay, key: pb.DKGResult, signers: tuple[str, ...], text: bytes) -> None:
    message = message_for(key.protocol, text)
    result = await sign(relay, key.protocol, signers, key.key_id, message)
    assert result.key_id == key.key_id
    check_signature(key.protocol, key.public_key, message, result)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_refresh_then_retire_the_old_key(nodes, local, connect, protocol: int) -> None:  # type: ignore[no-untyped-def]
    a_node, b_node = nodes
    a, b = connect(a_node), connect(b_node)
    relay = relay_for(local, a, b)
    old = await dkg(relay, protocol, PARTIES, 2)
    since = int(time.time() * 1000) - 1

    new = await refresh(relay, old)
    assert new.key_id != old.key_id and new.predecessor_key_id == old.key_id
    assert (new.public_key, new.chain_code, new.protocol) == (old.public_key, old.chain_code, old.protocol)
    assert new.threshold == old.threshold == 2 and list(new.party_ids) == list(old.party_ids) == list(PARTIES)
    for client, party in ((a, "signer-a"), (b, "signer-b")):
        info = await client.get_key(new.key_id)
        assert (info.key_id, info.public_key, info.chain_code, info.predecessor_key_id) == (
            new.key_id,
            old.public_key,
            old.chain_code,
            old.key_id,
        )
        assert info.state == pb.KEY_STATE_ACTIVE and info.self_party_id == party
        assert list(info.party_ids) == list(PARTIES) and info.threshold == 2
        assert since <= info.created_at_unix_ms <= int(time.time() * 1000)
        assert (await client.get_key(old.key_id)).state == pb.KEY_STATE_ACTIVE
        assert (await client.validate_key(new.key_id)).validity == pb.KEY_VALIDITY_VALID
    for node in nodes:
        audit = node.raw_sql(
            "SELECT result, key_id, reason, caller FROM audit WHERE operation = 'refresh' AND key_id = ?",
            (old.key_id,),
        )
        assert len(audit) == 1 and audit[0][:3] == ("ok", old.key_id, f"successor {new.key_id}")
        assert "sub=" in audit[0][3]
    # the status call answers the same result
    status = await a.refresh_status(refresh_session_id(a_node, old.key_id))
    assert status.state == pb.SESSION_STATE_DONE and status.result == new

    # both keys sign, with different signer sets
    await check_signs(relay, new, ("client", "signer-a"), b"after refresh")
    await check_signs(relay, new, ("signer-a", "signer-b"), b"after refresh, the nodes")
    await check_signs(relay, old, ("client", "signer-b"), b"the old key until retired")

    # the relay's rule: every party shows the successor ACTIVE, then the old key is retired everywhere
    for client in (a, b):
        assert (await client.get_key(new.key_id)).state == pb.KEY_STATE_ACTIVE
    for client in (a, b):
        retired = await client.retire_key(old.key_id)
        assert retired.state == pb.KEY_STATE_RETIRED and retired.predecessor_key_id == ""
    local.retire_key(old.key_id)
    for client in (a, b):
        request = pb.StartSignRequest(
            session_id=sid("late"),
            protocol=protocol,  # type: ignore[arg-type]
            key_id=old.key_id,
            message=message_for(protocol, b"late"),
            party_ids=("signer-a", "signer-b"),
            self_party_id="signer-a" if client is a else "signer-b",
        )
        code, text = await status_of(client.start_sign(request))
        assert code == grpc.StatusCode.FAILED_PRECONDITION and f"key {old.key_id} is retired" in text
        assert (await client.get_key(new.key_id)).state == pb.KEY_STATE_ACTIVE
    await check_signs(relay, new, ("client", "signer-b"), b"the successor after retirement")

    # a retired key cannot be refreshed (nothing is stored, the session id stays free)
    request = refresh_request(old)
    before = key_rows(a_node)
    code, text = await status_of(a.start_refresh(request))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and f"key {old.key_id} is retired" in text
    assert key_rows(a_node) == before
    assert not a_node.raw_sql("SELECT 1 FROM session_ids WHERE session_id = ?", (request.session_id,))


def refresh_session_id(node: Node, key_id: str) -> str:
    """The session id of the refresh recorded in `node`'s audit trail for source `key_id`."""
    rows = node.raw_sql("SELECT session_id FROM audit WHERE operation = 'refresh' AND key_id = ?", (key_id,))
    return str(rows[0][0])


async def test_retirement_is_refused_while_a_refresh_of_the_key_runs(nodes, local, connect) -> None:  # type: ignore[no-untyped-def]
    a_node, b_node = nodes
    a, b = connect(a_node), connect(b_node)
    relay = relay_for(local, a, b)
    key = await dkg(relay, FROST, PARTIES, 2)
    # a refresh started on signer-a alone stays running (nobody relays its messages)
    request = refresh_request(key)
    started = await a.start_refresh(request)
    assert started.state == pb.SESSION_STATE_RUNNING and len(started.outgoing) > 0
    assert (await a.refresh_status(request.session_id)).state == pb.SESSION_STATE_RUNNING
    assert await a.start_refresh(request) == started  # an identical start answers the same
    code, text = await status_of(a.retire_key(key.key_id))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and request.session_id in text
    assert (await a.get_key(key.key_id)).state == pb.KEY_STATE_ACTIVE
    # another refresh of the same key, through the relay, completes; the old key still signs
    new = await refresh(relay, key)
    assert new.predecessor_key_id == key.key_id
    await check_signs(relay, key, ("client", "signer-a"), b"still active")
    await check_signs(relay, new, ("client", "signer-a"), b"and its successor")


async def test_refresh_over_the_exchange_stream(nodes, local, clients) -> None:  # type: ignore[no-untyped-def]
    a_node, b_node = nodes
    a, b = clients(a_node), clients(b_node)
    relay = relay_for(local, a, b)
    key = await dkg(relay, FROST, PARTIES, 2)
    new = await refresh(relay, key, threshold=2)
    assert new.predecessor_key_id == key.key_id and new.public_key == key.public_key
    await check_signs(relay, new, ("signer-a", "signer-b"), b"over the stream")
    code, text = await status_of(a.refresh_status("no-such-session"))
    assert code == grpc.StatusCode.NOT_FOUND and "unknown session" in text


async def test_refused_refresh_requests(nodes, local, connect) -> None:  # type: ignore[no-untyped-def]
    a_node, b_node = nodes
    a, b = connect(a_node), connect(b_node)
    key = await dkg(relay_for(local, a, b), FROST, PARTIES, 2)
    unknown = "ab" * 32
    cases: list[tuple[pb.StartRefreshRequest, grpc.StatusCode, str]] = [
        (refresh_request(key, key_id=unknown), grpc.StatusCode.NOT_FOUND, f"key {unknown} is not known on this node"),
        (refresh_request(key, key_id="AB" * 32), grpc.StatusCode.INVALID_ARGUMENT, "key_id must be 64 lowercase hex"),
        (refresh_request(key, session_id="no spaces"), grpc.StatusCode.INVALID_ARGUMENT, "session_id must be"),
        (refresh_request(key, protocol=pb.PROTOCOL_UNSPECIFIED), grpc.StatusCode.INVALID_ARGUMENT, "protocol must"),
        (refresh_request(key, protocol=GG20), grpc.StatusCode.INVALID_ARGUMENT, "protocol does not match key"),
        (
            refresh_request(key, party_ids=("signer-a", "client", "signer-b")),
            grpc.StatusCode.INVALID_ARGUMENT,
            f"party_ids must be the full party set of key {key.key_id} in its order (client, signer-a, signer-b)",
        ),
        (
            refresh_request(key, party_ids=("client", "signer-a")),
            grpc.StatusCode.INVALID_ARGUMENT,
            "party_ids must be the full party set",
        ),
        (
            refresh_request(key, party_ids=(*PARTIES, "signer-c")),
            grpc.StatusCode.INVALID_ARGUMENT,
            "party_ids must be the full party set",
        ),
        (
            refresh_request(key, self_party_id="signer-b"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "self_party_id is not this node's party in the key",
        ),
        (
            refresh_request(key, self_party_id="signer-c"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "self_party_id must be one of party_ids",
        ),
        (
            refresh_request(key, threshold=3),
            grpc.StatusCode.INVALID_ARGUMENT,
            "threshold must be the key's (2) or 0: a refresh keeps the threshold",
        ),
        (refresh_request(key, threshold=1), grpc.StatusCode.INVALID_ARGUMENT, "threshold must be 0 (the key's)"),
    ]
    before = key_rows(a_node)
    for request, code, text in cases:
        got, message = await status_of(a.start_refresh(request))
        assert (got, text in message) == (code, True), (request, got, message)
        assert key_rows(a_node) == before
        assert not a_node.raw_sql("SELECT 1 FROM session_ids WHERE session_id = ?", (request.session_id,))
    # the refusals left the key as it was: it refreshes and signs
    new = await refresh(relay_for(local, a, b), key)
    await check_signs(relay_for(local, a, b), new, ("client", "signer-a"), b"after the refusals")


async def test_refresh_sessions_are_counted_under_their_kind(nodes, local, connect) -> None:  # type: ignore[no-untyped-def]
    a_node, b_node = nodes
    a, b = connect(a_node), connect(b_node)
    relay = relay_for(local, a, b)
    key = await dkg(relay, FROST, PARTIES, 2)
    labels = {"protocol": "frost_ed25519", "kind": "refresh", "state": "done"}
    before = value(scrape(METRICS_PORT), "mpc_signer_sessions_total", **labels)
    await refresh(relay, key)
    deadline = time.monotonic() + 10
    samples = scrape(METRICS_PORT)
    while value(samples, "mpc_signer_sessions_total", **labels) != before + 1:
        assert time.monotonic() < deadline, "the refresh was never counted"
        await asyncio.sleep(0.1)
        samples = scrape(METRICS_PORT)
    check_labels(samples)


SUITES = [
    pytest.param(FROST, id="frost-ed25519"),
    pytest.param(pb.PROTOCOL_FROST_SECP256K1, id="frost-secp256k1"),
    pytest.param(pb.PROTOCOL_FROST_SECP256K1_TR, id="frost-taproot"),
    pytest.param(GG20, id="gg20"),
]


@pytest.mark.parametrize("protocol", SUITES)
async def test_derived_keys_survive_a_refresh(nodes, local, connect, protocol: int) -> None:  # type: ignore[no-untyped-def]
    """The chain code is kept: a child key of the successor is the child of the source key, and
    the successor's signatures under it verify with an independent verifier."""
    a_node, b_node = nodes
    relay = relay_for(local, connect(a_node), connect(b_node))
    old = await dkg(relay, protocol, PARTIES, 2)
    new = await refresh(relay, old)
    assert new.chain_code == old.chain_code and len(new.chain_code) == 32
    path = (3, 7)
    children = []
    for key in (old, new):
        message = message_for(protocol, b"child of " + key.key_id.encode())
        result = await sign(relay, protocol, ("client", "signer-b"), key.key_id, message, path=path)
        if protocol == pb.PROTOCOL_FROST_SECP256K1:  # 65 bytes: compressed R || z (RFC 9591)
            assert verify(protocol, result.public_key, message, result.signature)
        else:
            check_signature(protocol, result.public_key, message, result)
        children.append(result.public_key)
    assert children[0] == children[1] != old.public_key
