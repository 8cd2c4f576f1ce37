"""Preprocessed FROST nonces through the service: the caller's local party and a signer host in
front of a real enclave process, over mTLS with JWT and HMACs, SQLite.

StartPresign with count=5 makes a batch in one round; then each of the five signs with one
StartSign on the signer node (its answer carries its signature share, and the start that brings
the caller's share finishes DONE). Each signature is verified outside mpc-signer: PyNaCl for
Ed25519, coincurve with an RFC 9591 challenge for FROST(secp256k1), coincurve's BIP340 verifier
for Taproot. A used nonce is refused by the host's store and, when the owner of the database
revives its row, by the enclave; an enclave restart makes the rest of the batch unusable and the
host drops it.
"""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2

from mpc.v1 import signer_pb2 as pb
from signer.client.relay import Relay
from signer.client.spec import SessionSpec
from tests.conftest import free_port, wait_for
from tests.engine.test_frost_presign import check
from tests.service.conftest import all_ok, dkg, sid
from tests.service.test_single_use import burned, presig_row, revive

PARTIES = ("client", "signer-a")
ED, SECP, TR = pb.PROTOCOL_FROST_ED25519, pb.PROTOCOL_FROST_SECP256K1, pb.PROTOCOL_FROST_SECP256K1_TR


async def presign_batch(relay: Relay, protocol: int, key_id: str, count: int) -> list[str]:
    spec = SessionSpec("presign", sid("fpre"), protocol, PARTIES, key_id=key_id, count=count)  # type: ignore[arg-type]
    results = all_ok(await relay.run(spec))
    batches = {tuple(r.presign.presignature_ids) for r in results.values()}
    assert len(batches) == 1, "every party holds the same ids in the same order"
    ids = list(batches.pop())
    assert len(ids) == count == len(set(ids))
    assert all(r.presign.presignature_id == ids[0] for r in results.values())
    return ids


async def one_call_sign(
    local, client, protocol: int, key_id: str, message: bytes, pid: str, session_id: str = ""
) -> pb.SignResult:  # type: ignore[no-untyped-def]
    """The caller's party first, then exactly one call to the signer node, then the caller's
    party takes the node's share."""
    session_id = session_id or sid("fsign")
    spec = SessionSpec("sign", session_id, protocol, PARTIES, key_id=key_id, message=message, presignature_id=pid)  # type: ignore[arg-type]
    mine = local.party("client")
    share = await mine.start(spec)
    assert len(share) == 1 and share[0].round == 1
    response = await client.start_sign(spec.sign_request("signer-a", share))
    assert response.state == pb.SESSION_STATE_DONE, response.failure
    assert len(response.outgoing) == 1
    await mine.deliver(list(response.outgoing))
    assert mine.outcome.ok
    assert mine.outcome.result.sign.signature == response.result.signature
    assert response.result.presignature_id == pid
    return response.result  # type: ignore[no-any-return]


@pytest.mark.parametrize("protocol", [ED, SECP, TR], ids=["ed25519", "secp256k1", "secp256k1-tr"])
async def test_batch_of_five_then_one_call_per_signature(start_node, local, connect, protocol: int) -> None:  # type: ignore[no-untyped-def]
    node = start_node(f"signer-{protocol}")
    client = connect(node)
    relay = Relay({"client": local, "signer-a": client})
    key = await dkg(relay, protocol, PARTIES, 2)
    ids = await presign_batch(relay, protocol, key.key_id, 5)
    rows = node.raw_sql("SELECT presig_id, state FROM presignatures WHERE key_id = ? ORDER BY presig_id", (key.key_id,))
    assert rows == sorted((i, "available") for i in ids)
    kept = presig_row(node, ids[0])
    for k, pid in enumerate(ids):
        message = f"preprocessed signature {k}".encode()
        result = await one_call_sign(local, client, protocol, key.key_id, message, pid)
        check(protocol, key.public_key, message, result.signature)

    # reuse: the host's store refuses it before the enclave sees it
    spec = SessionSpec(
        "sign", sid("again"), protocol, PARTIES, key_id=key.key_id, message=b"again", presignature_id=ids[0]
    )  # type: ignore[arg-type]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await client.start_sign(spec.sign_request("signer-a"))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "not available" in (err.value.details() or "")
    # the owner of the database revives the row: the enclave refuses the nonce itself
    revive(node, ids[0], kept)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await client.start_sign(spec.sign_request("signer-a"))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "FROST nonce already used" in (err.value.details() or "")


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def test_one_transaction_claims_the_id_and_takes_the_nonce(store, start_node, local, connect) -> None:  # type: ignore[no-untyped-def]
    """The id claim and the nonce take are one transaction: a used id takes no nonce, an
    unavailable nonce claims no id, and neither refusal reaches the enclave."""
    node = start_node("signer-tx", store=store)
    client = connect(node)
    relay = Relay({"client": local, "signer-a": client})
    key = await dkg(relay, ED, PARTIES, 2)
    ids = await presign_batch(relay, ED, key.key_id, 3)
    used = sid("used")
    result = await one_call_sign(local, client, ED, key.key_id, b"first", ids[0], session_id=used)
    check(ED, key.public_key, b"first", result.signature)
    claimed = "SELECT kind FROM session_ids WHERE session_id = ?"

    def state(pid: str) -> tuple[str, str | None]:
        ((row),) = node.raw_sql("SELECT state, consumed_by FROM presignatures WHERE presig_id = ?", (pid,))
        return (row[0], row[1])

    assert node.raw_sql(claimed, (used,)) == [("sign",)]
    assert state(ids[0]) == ("consumed", used)

    # The host forgets its finished sessions (a restart of the signer alone; the enclave keeps
    # its boot, so the nonces stay usable): the store's record is what refuses the used id now.
    node.signer.stop()
    node.signer.start()
    node.signer.wait_health(health_pb2.HealthCheckResponse.SERVING, timeout=20)
    client = connect(node)

    def request(session_id: str, pid: str) -> pb.StartSignRequest:
        spec = SessionSpec("sign", session_id, ED, PARTIES, key_id=key.key_id, message=b"m", presignature_id=pid)  # type: ignore[arg-type]
        return spec.sign_request("signer-a")

    # the used id with a fresh nonce: refused, and the nonce stays available
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await client.start_sign(request(used, ids[1]))
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS and "already used" in (err.value.details() or "")
    assert state(ids[1]) == ("available", None)
    # a fresh id with the used nonce: refused, and the id stays free for a retry
    fresh = sid("fresh")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await client.start_sign(request(fresh, ids[0]))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "not available" in (err.value.details() or "")
    assert node.raw_sql(claimed, (fresh,)) == []
    result = await one_call_sign(local, client, ED, key.key_id, b"retry", ids[1], session_id=fresh)
    check(ED, key.public_key, b"retry", result.signature)
    assert node.raw_sql(claimed, (fresh,)) == [("sign",)]
    assert state(ids[1]) == ("consumed", fresh)
    assert "already used" not in node.enclave.log()  # neither refusal reached the enclave


async def test_enclave_restart_makes_the_batch_unusable(start_node, local, connect) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    node = start_node(
        "signer-restart",
        config={"metrics": {"listen": f"127.0.0.1:{port}"}, "enclave": {"preparams_sync_seconds": 0.3}},
    )
    client = connect(node)
    relay = Relay({"client": local, "signer-a": client})
    key = await dkg(relay, ED, PARTIES, 2)
    ids = await presign_batch(relay, ED, key.key_id, 4)
    result = await one_call_sign(local, client, ED, key.key_id, b"before the restart", ids[0])
    check(ED, key.public_key, b"before the restart", result.signature)
    kept = presig_row(node, ids[1])

    node.enclave.kill()
    node.enclave.start()
    node.signer.wait_health(health_pb2.HealthCheckResponse.SERVING, timeout=20)
    # the host sees the new boot and drops the three nonces it can no longer use
    wait_for(lambda: burned(port, "presignature") == 3, 20, "the unused nonces burned")
    states = dict(node.raw_sql("SELECT presig_id, consumed_by FROM presignatures WHERE key_id = ?", (key.key_id,)))
    assert {states[i] for i in ids[1:]} == {"enclave-restart"} and states[ids[0]] != "enclave-restart"

    spec = SessionSpec("sign", sid("late"), ED, PARTIES, key_id=key.key_id, message=b"late", presignature_id=ids[1])  # type: ignore[arg-type]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await client.start_sign(spec.sign_request("signer-a"))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "not available" in (err.value.details() or "")
    revive(node, ids[1], kept)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await client.start_sign(spec.sign_request("signer-a"))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "sealed in an earlier enclave boot" in (err.value.details() or "")

    # a fresh batch of this boot signs
    fresh = await presign_batch(relay, ED, key.key_id, 1)
    result = await one_call_sign(local, client, ED, key.key_id, b"after the restart", fresh[0])
    check(ED, key.public_key, b"after the restart", result.signature)


async def test_presign_requests_checked(start_node, local, connect) -> None:  # type: ignore[no-untyped-def]
    node = start_node("signer-checks")
    client = connect(node)
    relay = Relay({"client": local, "signer-a": client})
    key = await dkg(relay, ED, PARTIES, 2)
    for count, path, needle in ((101, (), "count"), (2, (1,), "derivation_path")):
        spec = SessionSpec("presign", sid("bad"), ED, PARTIES, key_id=key.key_id, count=count, derivation_path=path)  # type: ignore[arg-type]
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await client.start_presign(spec.presign_request("signer-a"))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and needle in (err.value.details() or "")
    ids = await presign_batch(relay, ED, key.key_id, 1)
    spec = SessionSpec(
        "sign", sid("path"), ED, PARTIES, key_id=key.key_id, message=b"m", presignature_id=ids[0], derivation_path=(3,)
    )  # type: ignore[arg-type]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await client.start_sign(spec.sign_request("signer-a"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
