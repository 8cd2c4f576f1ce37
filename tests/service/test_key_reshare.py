"""StartReshare / GetReshareStatus through real processes: two signers over mTLS with the real
enclave, "signer" on SQLite and "backup" on PostgreSQL, and the caller's party in process.

The README's lifecycle (make, refresh, recover, with one public key); a dead signer node replaced
by a new one; the 2-of-3 recovery flow: the client loses its share; signer and backup deal the
key to {client', signer, backup}, where client' is a fresh local party new to the key. Every party
reports the same successor (new key id, same public key and chain code, the source as
predecessor), each node holds it ACTIVE, the new client signs with the signer (libsodium /
libsecp256k1, and for GG20 the same EVM address by eth_keys), the old key signs until it is
retired everywhere and is then refused with FAILED_PRECONDITION. A 2-of-2 key becomes 2-of-3
with a node new to the key; a dealer that leaves the set stores nothing and keeps its source key
ACTIVE. Refused requests carry precise statuses and leave the store and the session id as they
were."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable

import grpc
import pytest
from eth_keys import keys as eth_keys

from enclave.crypto.primes import FixtureSource
from enclave.engine import EngineConfig
from mpc.v1 import signer_pb2 as pb
from signer.auth.envelope import HmacKeyRing
from signer.client.client import SignerClient
from signer.client.local import LocalNode
from signer.client.relay import Relay
from signer.client.spec import SessionSpec, reshare_spec
from signer.ops.lifecycle_demo import check_successor_everywhere, retire_everywhere
from tests.conftest import free_port
from tests.ops.test_metrics_and_logs import scrape, value
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
from tests.service.fixture_enclave import prime_slice

PARTIES = ("client", "signer", "backup")
METRICS_PORT = free_port()


@pytest.fixture(scope="module")
def nodes(start_node: Callable[..., Node]) -> tuple[Node, Node]:
    metrics = {"metrics": {"listen": f"127.0.0.1:{METRICS_PORT}"}}
    # No policy service in these tests: the operator's explicit consent that the relay decides who
    # receives shares (README "Reshare (recovery)"); test_a_dealer_without_a_policy_refuses shows the default.
    unsafe = ["--allow-reshare-without-policy"]
    return (
        start_node("signer", store="sqlite", config=metrics, enclave_args=unsafe),
        start_node("backup", store="postgresql", enclave_args=unsafe),
    )


UNSAFE_LOCAL = EngineConfig(preparams_pool_size=1, allow_reshare_without_policy=True)


@pytest.fixture
async def local(ring: HmacKeyRing) -> AsyncIterator[LocalNode]:
    """The caller's local party, allowed to deal without a policy as the nodes are."""
    node = LocalNode(ring, prime_source=prime_slice(0), config=UNSAFE_LOCAL)
    yield node
    await node.close()


def fresh_primes() -> FixtureSource:
    """The local slice's primes, past the pairs the first client's node took: a new client never
    brings the lost client's Paillier key (as fresh primes from a real search never would)."""
    source = prime_slice(0)
    for _ in range(2):
        source(2048)
    return source


async def reshare(relay: Relay, spec: SessionSpec) -> pb.DKGResult:
    results = all_ok(await relay.run(spec))
    assert set(results) == set(spec.session_parties)
    first = next(iter(results.values())).dkg
    assert all(r.dkg == first for r in results.values()), "every party reports the same successor"
    assert first.predecessor_key_id == spec.key_id and first.key_id != spec.key_id
    assert list(first.party_ids) == list(spec.party_ids) and first.threshold == spec.threshold
    return first


async def check_signs(relay: Relay, key: pb.DKGResult, signers: tuple[str, ...], text: bytes) -> None:
    message = message_for(key.protocol, text)
    result = await sign(relay, key.protocol, signers, key.key_id, message)
    assert result.key_id == key.key_id
    check_signature(key.protocol, key.public_key, message, result)


def key_rows(node: Node) -> int:
    return int(node.raw_sql("SELECT count(*) FROM keys")[0][0])


def audit_of(node: Node, key_id: str) -> list[tuple[str, str]]:
    rows = node.raw_sql("SELECT result, reason FROM audit WHERE operation = 'reshare' AND key_id = ?", (key_id,))
    return [(str(r[0]), str(r[1])) for r in rows]


def evm_address(public_key: bytes) -> str:
    return eth_keys.PublicKey.from_compressed_bytes(public_key).to_checksum_address()  # type: ignore[no-any-return]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_recovery_of_a_lost_client_share(nodes, local, connect, ring: HmacKeyRing, protocol: int) -> None:  # type: ignore[no-untyped-def]
    s_node, b_node = nodes
    s, b = connect(s_node), connect(b_node)
    old = await dkg(Relay({"client": local, "signer": s, "backup": b}), protocol, PARTIES, 2)
    # the client's share is lost: its node takes no further part

    client = LocalNode(ring, prime_source=fresh_primes(), config=UNSAFE_LOCAL)
    try:
        relay = Relay({"client": client, "signer": s, "backup": b})
        began = time.perf_counter()
        new = await reshare(relay, reshare_spec(sid("recover"), old, PARTIES, 2, ("signer", "backup")))
        latency = time.perf_counter() - began
        assert (new.public_key, new.chain_code, new.protocol) == (old.public_key, old.chain_code, old.protocol)
        for c, party in ((s, "signer"), (b, "backup")):
            info = await c.get_key(new.key_id)
            assert (info.state, info.public_key, info.predecessor_key_id) == (
                pb.KEY_STATE_ACTIVE,
                old.public_key,
                old.key_id,
            )
            assert list(info.party_ids) == list(PARTIES) and info.self_party_id == party and info.threshold == 2
            assert (await c.validate_key(new.key_id)).validity == pb.KEY_VALIDITY_VALID
            assert (await c.get_key(old.key_id)).state == pb.KEY_STATE_ACTIVE
        assert client.keys[new.key_id].predecessor_key_id == old.key_id
        for node in nodes:
            assert audit_of(node, old.key_id) == [("ok", f"successor {new.key_id}")]

        # the new client signs with the signer, under the unchanged public key (and EVM address)
        await check_signs(relay, new, ("client", "signer"), b"the recovered client signs")
        await check_signs(relay, new, ("signer", "backup"), b"the nodes sign the successor")
        if protocol == GG20:
            assert evm_address(new.public_key) == evm_address(old.public_key)
        # the old key still signs with the two nodes until retired
        await check_signs(relay, old, ("signer", "backup"), b"the old key until retired")

        # the relay's rule, then retirement of the old key everywhere it is held
        for c in (s, b):
            assert (await c.get_key(new.key_id)).state == pb.KEY_STATE_ACTIVE
        for c in (s, b):
            assert (await c.retire_key(old.key_id)).state == pb.KEY_STATE_RETIRED
        request = pb.StartSignRequest(
            session_id=sid("late"),
            protocol=protocol,  # type: ignore[arg-type]
            key_id=old.key_id,
            message=message_for(protocol, b"late"),
            party_ids=("signer", "backup"),
            self_party_id="signer",
        )
        code, text = await status_of(s.start_sign(request))
        assert code == grpc.StatusCode.FAILED_PRECONDITION and f"key {old.key_id} is retired" in text
        await check_signs(relay, new, ("client", "signer"), b"the successor after retirement")
        print(f"reshare 2-of-3 recovery {'gg20' if protocol == GG20 else 'frost'}: {latency * 1000:.0f} ms")
    finally:
        await client.close()


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_2_of_2_becomes_2_of_3_with_a_node_new_to_the_key(nodes, local, connect, protocol: int) -> None:  # type: ignore[no-untyped-def]
    s_node, b_node = nodes
    s, b = connect(s_node), connect(b_node)
    relay = Relay({"client": local, "signer": s, "backup": b})
    old = await dkg(relay, protocol, ("client", "signer"), 2)
    code, _ = await status_of(b.get_key(old.key_id))
    assert code == grpc.StatusCode.NOT_FOUND

    spec = reshare_spec(sid("grow"), old, PARTIES, 2, ("client", "signer"))
    # the backup has no record of the key: without the source key described it is refused
    bare = spec.reshare_request("backup")
    bare.ClearField("source_public_key")
    bare.new_party_keys["backup"] = await b.identity_key()
    code, text = await status_of(b.start_reshare(bare))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "must give source_public_key" in text, text

    new = await reshare(relay, spec)
    info = await b.get_key(new.key_id)
    assert info.state == pb.KEY_STATE_ACTIVE and info.public_key == old.public_key and info.self_party_id == "backup"
    assert info.predecessor_key_id == old.key_id and list(info.party_ids) == list(PARTIES)
    await check_signs(relay, new, ("client", "backup"), b"the new node signs with the client")
    await check_signs(relay, new, ("signer", "backup"), b"and with the signer")
    await check_signs(relay, old, ("client", "signer"), b"the 2-of-2 key until retired")
    # the backup never held the old key; the signer retires it once the successor is everywhere
    assert (await s.retire_key(old.key_id)).state == pb.KEY_STATE_RETIRED
    local.retire_key(old.key_id)
    await check_signs(relay, new, ("client", "signer"), b"after the old key is gone")


async def test_a_dealer_that_leaves_stores_nothing_and_keeps_its_source_key(nodes, local, connect) -> None:  # type: ignore[no-untyped-def]
    s_node, b_node = nodes
    s, b = connect(s_node), connect(b_node)
    relay = Relay({"client": local, "signer": s, "backup": b})
    old = await dkg(relay, FROST, PARTIES, 2)
    before = key_rows(b_node)
    # 2-of-3 to 2-of-2 {client, signer}: the backup deals and leaves
    new = await reshare(relay, reshare_spec(sid("shrink"), old, ("client", "signer"), 2, ("signer", "backup")))
    assert key_rows(b_node) == before, "the leaving dealer records nothing of the successor"
    code, _ = await status_of(b.get_key(new.key_id))
    assert code == grpc.StatusCode.NOT_FOUND
    assert (await b.get_key(old.key_id)).state == pb.KEY_STATE_ACTIVE
    assert audit_of(b_node, old.key_id) == [
        ("ok", f"successor {new.key_id} (this node leaves the key: no share stored)")
    ]
    await check_signs(relay, new, ("client", "signer"), b"the shrunk key")
    await check_signs(relay, old, ("client", "backup"), b"the source key until retired")
    # the leaving dealer may retire the source key (no successor recorded here); the signer,
    # which holds the successor, too
    assert (await b.retire_key(old.key_id)).state == pb.KEY_STATE_RETIRED
    assert (await s.retire_key(old.key_id)).state == pb.KEY_STATE_RETIRED
    await check_signs(relay, new, ("signer", "client"), b"after retirement")


async def test_retirement_is_refused_while_a_reshare_of_the_key_runs(nodes, local, connect) -> None:  # type: ignore[no-untyped-def]
    s_node, b_node = nodes
    s, b = connect(s_node), connect(b_node)
    relay = Relay({"client": local, "signer": s, "backup": b})
    key = await dkg(relay, FROST, PARTIES, 2)
    spec = reshare_spec(sid("held"), key, PARTIES, 2, ("signer", "backup"))
    spec = dataclasses.replace(spec, new_party_keys=await relay.new_party_keys(spec))
    started = await s.start_reshare(spec.reshare_request("signer"))
    assert started.state == pb.SESSION_STATE_RUNNING and len(started.outgoing) > 0
    assert (await s.reshare_status(spec.session_id)).state == pb.SESSION_STATE_RUNNING
    assert await s.start_reshare(spec.reshare_request("signer")) == started  # idempotent
    code, text = await status_of(s.retire_key(key.key_id))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and spec.session_id in text
    assert (await s.get_key(key.key_id)).state == pb.KEY_STATE_ACTIVE


def reshare_request(key: pb.DKGResult, **changes: object) -> pb.StartReshareRequest:
    fields: dict[str, object] = dict(
        session_id=sid("bad"),
        protocol=key.protocol,
        key_id=key.key_id,
        party_ids=PARTIES,
        self_party_id="signer",
        threshold=2,
        source_signers=("signer", "backup"),
        new_party_keys={"client": b"\x04" + bytes(64)},
    )
    fields.update(changes)
    return pb.StartReshareRequest(**fields)  # type: ignore[arg-type]


async def test_refused_reshare_requests(nodes, local, connect) -> None:  # type: ignore[no-untyped-def]
    s_node, b_node = nodes
    s, b = connect(s_node), connect(b_node)
    relay = Relay({"client": local, "signer": s, "backup": b})
    key = await dkg(relay, FROST, PARTIES, 2)
    unknown = "cd" * 32
    INVALID, NOT_FOUND = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND
    ident = {"client": b"\x04" + bytes(64)}
    cases: list[tuple[pb.StartReshareRequest, grpc.StatusCode, str]] = [
        (reshare_request(key, key_id=unknown), NOT_FOUND, f"key {unknown} is not known on this node, which is one"),
        (reshare_request(key, key_id="CD" * 32), INVALID, "key_id must be 64 lowercase hex"),
        (reshare_request(key, session_id="no spaces"), INVALID, "session_id must be"),
        (reshare_request(key, protocol=GG20), INVALID, "protocol does not match key"),
        (reshare_request(key, threshold=1), INVALID, "threshold (the new key's) must be at least 2"),
        (reshare_request(key, threshold=4), INVALID, "threshold (the new key's) must be at least 2"),
        (reshare_request(key, source_signers=("signer",)), INVALID, "source_signers must list 2.."),
        (
            reshare_request(key, source_signers=("signer", "backup", "dave"), new_party_keys=ident),
            INVALID,
            "source_signers must be parties of the source key",
        ),
        (
            reshare_request(key, source_party_ids=("signer", "client", "backup")),
            INVALID,
            f"source_party_ids must be the full party set of key {key.key_id} in its order (client, signer, backup)",
        ),
        (reshare_request(key, source_threshold=3), INVALID, "source_signers must list at least source_threshold (3)"),
        (
            reshare_request(key, source_threshold=3, source_signers=PARTIES, new_party_keys={}),
            INVALID,
            "source_threshold must be the key's (2) or 0",
        ),
        (reshare_request(key, source_threshold=1), INVALID, "source_threshold must be 0"),
        (reshare_request(key, source_public_key=bytes(32)), INVALID, "source_public_key is not the public key"),
        (reshare_request(key, source_chain_code=bytes(31)), INVALID, "source_chain_code must be 32 bytes"),
        (reshare_request(key, self_party_id="dave"), INVALID, "self_party_id must be one of party_ids or source"),
        (reshare_request(key, new_party_keys={}), INVALID, "new_party_keys must give the identity key of client"),
        (
            reshare_request(key, new_party_keys={**ident, "signer": b"\x04" + bytes(64)}),
            INVALID,
            "new_party_keys lists signer: only parties of party_ids that are not source_signers",
        ),
        (reshare_request(key, new_party_keys={"client": bytes(33)}), INVALID, "new_party_keys[client] must be"),
        (reshare_request(key, party_ids=("client", "signer", "signer")), INVALID, "party_ids must be distinct"),
    ]
    before = key_rows(s_node)
    for request, code, text in cases:
        got, message = await status_of(s.start_reshare(request))
        assert (got, text in message) == (code, True), (request, got, message)
        assert key_rows(s_node) == before
        assert not s_node.raw_sql("SELECT 1 FROM session_ids WHERE session_id = ?", (request.session_id,))
    # a node with no record of the key cannot deal it
    got, message = await status_of(b.start_reshare(reshare_request(key, key_id=unknown, self_party_id="backup")))
    assert got == NOT_FOUND and "a dealer needs its share of the source key" in message
    # a retired key cannot be reshared
    other = await dkg(relay, FROST, PARTIES, 2)
    refreshed = all_ok(await relay.run(SessionSpec("refresh", sid("refresh"), FROST, PARTIES, key_id=other.key_id)))[
        "client"
    ].dkg
    await s.retire_key(other.key_id)
    got, message = await status_of(s.start_reshare(reshare_request(other)))
    assert got == grpc.StatusCode.FAILED_PRECONDITION and f"key {other.key_id} is retired" in message
    # after the refusals the key reshares and signs
    new = await reshare(relay, reshare_spec(sid("after"), key, PARTIES, 2, ("signer", "backup")))
    await check_signs(relay, new, ("client", "signer"), b"after the refusals")
    await check_signs(relay, refreshed, ("client", "backup"), b"the refreshed key is untouched")


async def test_reshare_over_the_exchange_stream_is_counted(nodes, local, clients) -> None:  # type: ignore[no-untyped-def]
    s_node, b_node = nodes
    s, b = clients(s_node), clients(b_node)
    relay = Relay({"client": local, "signer": s, "backup": b})
    key = await dkg(relay, FROST, PARTIES, 2)
    labels = {"protocol": "frost_ed25519", "kind": "reshare", "state": "done"}
    before = value(scrape(METRICS_PORT), "mpc_signer_sessions_total", **labels)
    new = await reshare(relay, reshare_spec(sid("stream"), key, PARTIES, 2, ("client", "backup")))
    await check_signs(relay, new, ("signer", "backup"), b"over the stream")
    status = await s.reshare_status(audit_session(s_node, key.key_id))
    assert status.state == pb.SESSION_STATE_DONE and status.result == new
    code, text = await status_of(s.reshare_status("no-such-session"))
    assert code == grpc.StatusCode.NOT_FOUND and "unknown session" in text
    deadline = time.monotonic() + 10
    while value(scrape(METRICS_PORT), "mpc_signer_sessions_total", **labels) != before + 1:
        assert time.monotonic() < deadline, "the reshare was never counted"
        await asyncio.sleep(0.1)


def audit_session(node: Node, key_id: str) -> str:
    rows = node.raw_sql("SELECT session_id FROM audit WHERE operation = 'reshare' AND key_id = ?", (key_id,))
    return str(rows[0][0])


async def test_identity_key_is_the_enclaves(nodes, connect) -> None:  # type: ignore[no-untyped-def]
    client: SignerClient = connect(nodes[0])
    key = await client.identity_key()
    assert len(key) == 65 and key[0] == 4 and key == (await client.ping()).enclave_public_key


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_the_readme_lifecycle_keeps_one_public_key(
    nodes, local, connect, ring: HmacKeyRing, protocol: int
) -> None:  # type: ignore[no-untyped-def]
    """README "Reshare (recovery)", as a new user runs it: make a 2-of-3 key, sign, refresh, sign,
    lose the client's share, recover it by a reshare, sign; retiring each old key on the way."""
    s_node, b_node = nodes
    s, b = connect(s_node), connect(b_node)
    parties: dict[str, SignerClient | LocalNode] = {"client": local, "signer": s, "backup": b}
    key = await dkg(Relay(parties), protocol, PARTIES, 2)
    await check_signs(Relay(parties), key, ("client", "signer"), b"made")

    outcome = all_ok(await Relay(parties).run(SessionSpec("refresh", sid("rf"), protocol, PARTIES, key_id=key.key_id)))
    refreshed = outcome["signer"].dkg
    assert refreshed.public_key == key.public_key and refreshed.predecessor_key_id == key.key_id
    await check_successor_everywhere(parties, refreshed)
    await retire_everywhere(parties, key.key_id)
    await check_signs(Relay(parties), refreshed, ("client", "signer"), b"refreshed")

    client = LocalNode(ring, prime_source=fresh_primes(), config=UNSAFE_LOCAL)  # the lost share's owner
    try:
        parties["client"] = client
        relay = Relay(parties)
        recovered = await reshare(relay, reshare_spec(sid("rc"), refreshed, PARTIES, 2, ("signer", "backup")))
        await check_successor_everywhere(parties, recovered)
        await retire_everywhere(parties, refreshed.key_id)
        await check_signs(relay, recovered, ("client", "signer"), b"recovered")
        assert recovered.public_key == refreshed.public_key == key.public_key
        assert recovered.chain_code == key.chain_code
        if protocol == GG20:
            assert evm_address(recovered.public_key) == evm_address(key.public_key)
        for c in (s, b):
            assert [(await c.get_key(k)).state for k in (key.key_id, refreshed.key_id, recovered.key_id)] == [
                pb.KEY_STATE_RETIRED,
                pb.KEY_STATE_RETIRED,
                pb.KEY_STATE_ACTIVE,
            ]
    finally:
        await client.close()


async def test_a_dead_signer_node_is_replaced(start_node, nodes, local, connect) -> None:  # type: ignore[no-untyped-def]
    """The signer node of a 2-of-3 key is lost with its store; a new node with an empty store
    takes its party id: the client and the backup deal it a share of the same key. FROST only: the
    fixture primes have three disjoint slices, all in use, and a third enclave would bring a used
    Paillier modulus (GG20's node new to the key is test_2_of_2_becomes_2_of_3_...)."""
    protocol = FROST
    s_node, b_node = nodes
    s, b = connect(s_node), connect(b_node)
    old = await dkg(Relay({"client": local, "signer": s, "backup": b}), protocol, PARTIES, 2)
    replacement_node = start_node(f"replacement-{protocol}", enclave_args=["--allow-reshare-without-policy"])
    replacement = connect(replacement_node)
    code, _ = await status_of(replacement.get_key(old.key_id))
    assert code == grpc.StatusCode.NOT_FOUND
    parties: dict[str, SignerClient | LocalNode] = {"client": local, "signer": replacement, "backup": b}
    relay = Relay(parties)
    new = await reshare(relay, reshare_spec(sid("replace"), old, PARTIES, 2, ("client", "backup")))
    assert new.public_key == old.public_key
    info = await replacement.get_key(new.key_id)
    assert (info.state, info.self_party_id, info.predecessor_key_id) == (pb.KEY_STATE_ACTIVE, "signer", old.key_id)
    assert (await replacement.validate_key(new.key_id)).validity == pb.KEY_VALIDITY_VALID
    await check_signs(relay, new, ("client", "signer"), b"the replacement signs with the client")
    await check_signs(relay, new, ("signer", "backup"), b"and with the backup")
    # the old signer's share alone is below the threshold once client and backup retire theirs
    await retire_everywhere({"client": local, "backup": b}, old.key_id)
    assert (await s.get_key(old.key_id)).state == pb.KEY_STATE_ACTIVE  # the lost node is never asked


async def test_a_dealer_without_a_policy_refuses(start_node, nodes, local, connect) -> None:  # type: ignore[no-untyped-def]
    """An enclave started without --allow-reshare-without-policy (the default) and without a policy
    deals nothing: FAILED_PRECONDITION at the start, the session never runs, the key is untouched."""
    strict_node = start_node("strict")
    strict, b = connect(strict_node), connect(nodes[1])
    relay = Relay({"client": local, "signer": strict, "backup": b})
    key = await dkg(relay, FROST, PARTIES, 2)
    spec = reshare_spec(sid("strict"), key, PARTIES, 2, ("signer", "backup"))
    spec = dataclasses.replace(spec, new_party_keys=await relay.new_party_keys(spec))
    before = key_rows(strict_node)
    code, text = await status_of(strict.start_reshare(spec.reshare_request("signer")))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "needs a policy configured" in text, text
    assert "--allow-reshare-without-policy" in text
    assert key_rows(strict_node) == before
    code, _ = await status_of(strict.reshare_status(spec.session_id))
    assert code == grpc.StatusCode.NOT_FOUND
    assert (await strict.get_key(key.key_id)).state == pb.KEY_STATE_ACTIVE
    await check_signs(relay, key, ("client", "signer"), b"the key still signs")
