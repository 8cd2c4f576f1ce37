"""StartRepair / GetRepairStatus through real processes: two signers over mTLS with the real
enclave, "signer" on SQLite and "backup" on PostgreSQL, and the caller's party in process.

FROST share repair (ZF frost's repairable threshold scheme) through the service: the client of
a 2-of-3 key loses its share and signer and backup rebuild it for a fresh local party under the
SAME key id, for every FROST suite; a dead signer node is replaced by a node with an empty store
that gets its share back from the client and the backup, stores it as an ACTIVE record of the
key and signs. Every signature is checked by libsodium, libsecp256k1 (BIP340 for Taproot) or
ZF frost's own verifier (RFC 9591 secp256k1).
Helpers keep their shares and store nothing; a wrong public key for the repaired party aborts
the session everywhere and stores nothing; refused requests carry precise statuses and leave
the store and the session id as they were; a helper whose enclave may not give shares away
without a policy refuses at the start."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest

from enclave.engine import EngineConfig
from mpc.v1 import signer_pb2 as pb
from signer.auth.envelope import HmacKeyRing
from signer.client.client import SignerClient
from signer.client.local import LocalNode
from signer.client.relay import Relay
from signer.client.spec import SessionSpec, repair_spec
from tests.conftest import free_port
from tests.ops.test_metrics_and_logs import scrape, value
from tests.service.conftest import (
    FROST,
    GG20,
    Node,
    all_ok,
    check_signature,
    dkg,
    message_for,
    sid,
    sign,
    status_of,
)
from tests.service.fixture_enclave import prime_slice
from tests.service.test_frost_secp256k1 import check as check_secp256k1

PARTIES = ("client", "signer", "backup")
HELPERS = ("signer", "backup")
FROST_SUITES = [
    pytest.param(FROST, id="ed25519"),
    pytest.param(pb.PROTOCOL_FROST_SECP256K1, id="secp256k1"),
    pytest.param(pb.PROTOCOL_FROST_SECP256K1_TR, id="taproot"),
]
METRICS_PORT = free_port()
# No policy service here: the operator's explicit consent that the relay decides who receives a
# rebuilt share (README "Repair (FROST)"); test_a_helper_without_a_policy_refuses shows the default.
UNSAFE = ["--allow-reshare-without-policy"]
UNSAFE_LOCAL = EngineConfig(preparams_pool_size=1, allow_reshare_without_policy=True)


@pytest.fixture(scope="module")
def nodes(start_node: Callable[..., Node]) -> tuple[Node, Node]:
    metrics = {"metrics": {"listen": f"127.0.0.1:{METRICS_PORT}"}}
    return (
        start_node("signer", store="sqlite", config=metrics, enclave_args=UNSAFE),
        start_node("backup", store="postgresql", enclave_args=UNSAFE),
    )


@pytest.fixture
async def local(ring: HmacKeyRing) -> AsyncIterator[LocalNode]:
    node = LocalNode(ring, prime_source=prime_slice(0), config=UNSAFE_LOCAL)
    yield node
    await node.close()


async def repair(relay: Relay, spec: SessionSpec, key: pb.DKGResult) -> dict[str, pb.SessionResult]:
    results = all_ok(await relay.run(spec))
    assert set(results) == set(spec.session_parties)
    for r in results.values():  # the same key: its own id, public key, chain code, no predecessor
        assert r.dkg.key_id == key.key_id
        assert (r.dkg.public_key, r.dkg.chain_code, r.dkg.threshold) == (key.public_key, key.chain_code, 2)
        assert list(r.dkg.party_ids) == list(PARTIES) and not r.dkg.predecessor_key_id
    return results


async def check_signs(relay: Relay, key: pb.DKGResult, signers: tuple[str, ...], text: bytes) -> None:
    message = message_for(key.protocol, text)
    result = await sign(relay, key.protocol, signers, key.key_id, message)
    assert result.key_id == key.key_id
    if key.protocol == FROST:
        check_signature(key.protocol, key.public_key, message, result)
    else:  # libsecp256k1's BIP340 verifier, or ZF frost and libsecp256k1's point arithmetic
        check_secp256k1(key.protocol, key.public_key, message, result)


def key_rows(node: Node) -> int:
    return int(node.raw_sql("SELECT count(*) FROM keys")[0][0])


def repair_audit(node: Node, key_id: str) -> list[tuple[str, str, str]]:
    rows = node.raw_sql(
        "SELECT result, reason, session_id FROM audit WHERE operation = 'repair' AND key_id = ?", (key_id,)
    )
    return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]


@pytest.mark.parametrize("protocol", FROST_SUITES)
async def test_a_lost_client_share_is_repaired(nodes, local, connect, ring: HmacKeyRing, protocol: int) -> None:  # type: ignore[no-untyped-def]
    s_node, b_node = nodes
    s, b = connect(s_node), connect(b_node)
    key = await dkg(Relay({"client": local, "signer": s, "backup": b}), protocol, PARTIES, 2)
    rows = (key_rows(s_node), key_rows(b_node))
    # the client's share is lost: a fresh local party takes its place under the same id
    client = LocalNode(ring, prime_source=prime_slice(0), config=UNSAFE_LOCAL)
    try:
        relay = Relay({"client": client, "signer": s, "backup": b})
        began = time.perf_counter()
        await repair(relay, repair_spec(sid("repair"), key, HELPERS, "client"), key)
        latency = time.perf_counter() - began
        held = client.keys[key.key_id]
        assert (held.public_key, held.party_ids, held.threshold) == (key.public_key, PARTIES, 2)
        assert not held.predecessor_key_id
        # the helpers keep their shares of the same key and store nothing new
        assert (key_rows(s_node), key_rows(b_node)) == rows
        for c, node, party in ((s, s_node, "signer"), (b, b_node, "backup")):
            info = await c.get_key(key.key_id)
            assert (info.state, info.self_party_id, info.public_key) == (pb.KEY_STATE_ACTIVE, party, key.public_key)
            audit = repair_audit(node, key.key_id)
            assert [(r, reason) for r, reason, _ in audit] == [("ok", "helped rebuild the share of client")]
        # the rebuilt share signs with either helper, under the unchanged key
        await check_signs(relay, key, ("client", "signer"), b"the repaired client signs with the signer")
        await check_signs(relay, key, ("backup", "client"), b"and with the backup")
        status = await s.repair_status(repair_audit(s_node, key.key_id)[0][2])
        assert status.state == pb.SESSION_STATE_DONE and status.result.key_id == key.key_id
        print(f"repair of a lost client share, {pb.Protocol.Name(protocol)}: {latency * 1000:.0f} ms")
    finally:
        await client.close()


async def test_a_dead_signer_node_is_repaired(start_node, nodes, local, connect) -> None:  # type: ignore[no-untyped-def]
    """The signer node is lost with its store; a new node with an empty store takes its party id
    and gets the SAME share back from the client and the backup, as an ACTIVE record of the key."""
    s_node, b_node = nodes
    s, b = connect(s_node), connect(b_node)
    key = await dkg(Relay({"client": local, "signer": s, "backup": b}), FROST, PARTIES, 2)
    replacement_node = start_node("repaired-signer", store="postgresql", enclave_args=UNSAFE)
    replacement = connect(replacement_node)
    code, _ = await status_of(replacement.get_key(key.key_id))
    assert code == grpc.StatusCode.NOT_FOUND
    relay = Relay({"client": local, "signer": replacement, "backup": b})
    await repair(relay, repair_spec(sid("repair-node"), key, ("client", "backup"), "signer"), key)
    info = await replacement.get_key(key.key_id)
    assert (info.state, info.self_party_id, info.public_key, info.predecessor_key_id) == (
        pb.KEY_STATE_ACTIVE,
        "signer",
        key.public_key,
        "",
    )
    assert list(info.party_ids) == list(PARTIES) and info.threshold == 2
    assert (await replacement.validate_key(key.key_id)).validity == pb.KEY_VALIDITY_VALID
    assert [(r, reason) for r, reason, _ in repair_audit(replacement_node, key.key_id)] == [
        ("ok", "share rebuilt and stored")
    ]
    await check_signs(relay, key, ("client", "signer"), b"the repaired node signs with the client")
    await check_signs(relay, key, ("signer", "backup"), b"and with the backup")
    # a second repair of the same party finds the share there and is refused before the enclave
    again = repair_spec(sid("repair-again"), key, ("client", "backup"), "signer")
    again = dataclasses.replace(again, new_party_keys=await relay.new_party_keys(again))
    code, text = await status_of(replacement.start_repair(again.repair_request("signer")))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and f"this node holds a share of key {key.key_id}" in text


class WrongKeyFor:
    """The repaired party's node, to which the relay gives another key's public key (the helpers
    get the right one)."""

    def __init__(self, client: SignerClient, public_key: bytes) -> None:
        self.client, self.public_key = client, public_key

    def party(self, party_id: str) -> Any:
        party = self.client.party(party_id)
        start = party.start

        async def lying_start(spec: SessionSpec, initial: Any = ()) -> Any:
            return await start(dataclasses.replace(spec, source_public_key=self.public_key), initial)

        party.start = lying_start  # type: ignore[method-assign]
        return party

    async def identity_key(self) -> bytes:
        return await self.client.identity_key()


async def test_a_wrong_public_key_for_the_repaired_party_stores_nothing(start_node, nodes, local, connect) -> None:  # type: ignore[no-untyped-def]
    s_node, b_node = nodes
    s, b = connect(s_node), connect(b_node)
    relay = Relay({"client": local, "signer": s, "backup": b})
    key, other = await dkg(relay, FROST, PARTIES, 2), await dkg(relay, FROST, PARTIES, 2)
    fresh_node = start_node("repaired-wrongly", enclave_args=UNSAFE)
    fresh = connect(fresh_node)
    relay = Relay({"client": local, "signer": WrongKeyFor(fresh, other.public_key), "backup": b})
    outcomes = await relay.run(repair_spec(sid("wrong-key"), key, ("client", "backup"), "signer"))
    assert all(o.state == pb.SESSION_STATE_FAILED for o in outcomes.values()), outcomes
    assert key_rows(fresh_node) == 0
    code, _ = await status_of(fresh.get_key(key.key_id))
    assert code == grpc.StatusCode.NOT_FOUND
    assert repair_audit(b_node, key.key_id)[0][0] == "failed"
    await check_signs(Relay({"client": local, "signer": s}), key, ("client", "signer"), b"the key is untouched")


def repair_request(key: pb.DKGResult, **changes: object) -> pb.StartRepairRequest:
    request = pb.StartRepairRequest(
        session_id=sid("refused"),
        protocol=key.protocol,
        key_id=key.key_id,
        party_ids=key.party_ids,
        self_party_id="signer",
        threshold=key.threshold,
        helpers=HELPERS,
        repair_party_id="client",
        public_key=key.public_key,
        chain_code=key.chain_code,
        repair_party_key=b"\x04" + bytes(64),
    )
    for name, v in changes.items():
        if isinstance(v, tuple):
            request.ClearField(name)
            getattr(request, name).extend(v)
        else:
            setattr(request, name, v)
    return request


async def test_refused_repair_requests(nodes, local, connect) -> None:  # type: ignore[no-untyped-def]
    s_node, b_node = nodes
    s, b = connect(s_node), connect(b_node)
    relay = Relay({"client": local, "signer": s, "backup": b})
    key = await dkg(relay, FROST, PARTIES, 2)
    unknown = "cd" * 32
    INVALID, NOT_FOUND, FAILED = (
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    cases: list[tuple[pb.StartRepairRequest, grpc.StatusCode, str]] = [
        (repair_request(key, protocol=GG20), INVALID, "a repair is for FROST keys; recover a GG20 share by a reshare"),
        (repair_request(key, key_id=unknown), NOT_FOUND, f"key {unknown} is not known on this node, which is one"),
        (repair_request(key, key_id="CD" * 32), INVALID, "key_id must be 64 lowercase hex"),
        (repair_request(key, session_id="no spaces"), INVALID, "session_id must be"),
        (repair_request(key, helpers=("signer",)), INVALID, "helpers must list at least the key's threshold (2)"),
        (repair_request(key, helpers=("signer", "signer")), INVALID, "helpers must be distinct"),
        (repair_request(key, helpers=("signer", "dave")), INVALID, "helpers must be parties of party_ids"),
        (
            repair_request(key, helpers=("signer", "client")),
            INVALID,
            "repair_party_id cannot be one of helpers: its share is the one lost",
        ),
        (repair_request(key, repair_party_id="dave"), INVALID, "repair_party_id must be one of party_ids"),
        (repair_request(key, self_party_id="dave"), INVALID, "self_party_id must be repair_party_id or one of"),
        (repair_request(key, threshold=1), INVALID, "threshold (the key's) must be at least 2"),
        (repair_request(key, threshold=3, helpers=("signer", "backup")), INVALID, "helpers must list at least"),
        (
            repair_request(key, party_ids=("signer", "client", "backup")),
            INVALID,
            f"party_ids must be the full party set of key {key.key_id} in its order (client, signer, backup)",
        ),
        (
            repair_request(key, party_ids=("client", "signer", "backup", "dave")),
            INVALID,
            f"party_ids must be the full party set of key {key.key_id}",
        ),
        (repair_request(key, public_key=bytes(32)), INVALID, "public_key is not the public key of key"),
        (repair_request(key, chain_code=bytes(32)), INVALID, "chain_code is not the chain code of key"),
        (repair_request(key, chain_code=bytes(31)), INVALID, "chain_code must be 32 bytes or empty"),
        (repair_request(key, repair_party_key=bytes(33)), INVALID, "repair_party_key must be a P-256 public key"),
        (repair_request(key, protocol=pb.PROTOCOL_FROST_SECP256K1), INVALID, "protocol does not match key"),
        # this node, the signer, is the repaired party but still holds its share
        (
            repair_request(key, repair_party_id="signer", helpers=("client", "backup")),
            FAILED,
            f"this node holds a share of key {key.key_id} (as signer)",
        ),
    ]
    before = key_rows(s_node)
    for request, code, text in cases:
        got, message = await status_of(s.start_repair(request))
        assert (got, text in message) == (code, True), (request, got, message)
        assert key_rows(s_node) == before
        assert not s_node.raw_sql("SELECT 1 FROM session_ids WHERE session_id = ?", (request.session_id,))
        got, _ = await status_of(s.repair_status(request.session_id))
        assert got == NOT_FOUND
    # the repaired party must be told the key
    got, message = await status_of(
        b.start_repair(repair_request(key, key_id=unknown, self_party_id="client", public_key=b""))
    )
    assert got == INVALID and "so the request must give public_key" in message
    # a key retired on a node: it does not help, and its share is not brought back by a repair
    other = await dkg(relay, FROST, PARTIES, 2)
    refreshed = all_ok(await relay.run(SessionSpec("refresh", sid("refresh"), FROST, PARTIES, key_id=other.key_id)))[
        "client"
    ].dkg
    await s.retire_key(other.key_id)
    got, message = await status_of(s.start_repair(repair_request(other)))
    assert got == FAILED and f"key {other.key_id} is retired" in message
    retired_repair = repair_request(other, repair_party_id="signer", helpers=("client", "backup"))
    got, message = await status_of(s.start_repair(retired_repair))
    assert got == FAILED and "a repair does not bring a retired share back" in message
    # after the refusals the key is repaired and signs
    fresh = LocalNode(local.hmac, prime_source=prime_slice(0), config=UNSAFE_LOCAL)
    try:
        relay = Relay({"client": fresh, "signer": s, "backup": b})
        await repair(relay, repair_spec(sid("after"), key, HELPERS, "client"), key)
        await check_signs(relay, key, ("client", "signer"), b"after the refusals")
    finally:
        await fresh.close()
    await check_signs(relay, refreshed, ("signer", "backup"), b"the refreshed key is untouched")


async def test_repair_over_the_exchange_stream_is_counted(nodes, local, clients, ring: HmacKeyRing) -> None:  # type: ignore[no-untyped-def]
    s_node, b_node = nodes
    s, b = clients(s_node), clients(b_node)
    key = await dkg(Relay({"client": local, "signer": s, "backup": b}), FROST, PARTIES, 2)
    labels = {"protocol": "frost_ed25519", "kind": "repair", "state": "done"}
    before = value(scrape(METRICS_PORT), "mpc_signer_sessions_total", **labels)
    client = LocalNode(ring, prime_source=prime_slice(0), config=UNSAFE_LOCAL)
    try:
        relay = Relay({"client": client, "signer": s, "backup": b})
        await repair(relay, repair_spec(sid("stream"), key, HELPERS, "client"), key)
        await check_signs(relay, key, ("client", "backup"), b"over the stream")
    finally:
        await client.close()
    status = await s.repair_status(repair_audit(s_node, key.key_id)[0][2])
    assert status.state == pb.SESSION_STATE_DONE and status.result.key_id == key.key_id
    deadline = time.monotonic() + 10
    while value(scrape(METRICS_PORT), "mpc_signer_sessions_total", **labels) != before + 1:
        assert time.monotonic() < deadline, "the repair was never counted"
        await asyncio.sleep(0.1)


async def test_a_helper_without_a_policy_refuses(start_node, nodes, local, connect) -> None:  # type: ignore[no-untyped-def]
    """An enclave started without --allow-reshare-without-policy (the default) and without a policy
    helps no repair: FAILED_PRECONDITION at the start, nothing stored, the key untouched."""
    strict_node = start_node("strict-helper")
    strict, b = connect(strict_node), connect(nodes[1])
    relay = Relay({"client": local, "signer": strict, "backup": b})
    key = await dkg(relay, FROST, PARTIES, 2)
    spec = repair_spec(sid("strict"), key, ("signer", "backup"), "client")
    spec = dataclasses.replace(spec, new_party_keys=await relay.new_party_keys(spec))
    before = key_rows(strict_node)
    code, text = await status_of(strict.start_repair(spec.repair_request("signer")))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "--allow-reshare-without-policy" in text, text
    assert key_rows(strict_node) == before
    code, _ = await status_of(strict.repair_status(spec.session_id))
    assert code == grpc.StatusCode.NOT_FOUND
    await check_signs(relay, key, ("client", "signer"), b"the key still signs")


async def test_the_relay_gathers_the_repaired_partys_identity_key(nodes, connect, local) -> None:  # type: ignore[no-untyped-def]
    s, b = connect(nodes[0]), connect(nodes[1])
    relay: Relay = Relay({"client": local, "signer": s, "backup": b})
    nodes_by_party: dict[str, SignerClient | LocalNode] = {"client": local, "signer": s}
    key = pb.DKGResult(key_id="ab" * 32, protocol=FROST, party_ids=PARTIES, threshold=2, public_key=bytes(32))
    for repaired, node in nodes_by_party.items():
        helpers = tuple(p for p in PARTIES if p != repaired)
        spec = repair_spec("gather", key, helpers, repaired)
        assert await relay.new_party_keys(spec) == {repaired: await node.identity_key()}
