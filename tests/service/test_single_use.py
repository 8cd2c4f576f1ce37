"""Single use enforced by the enclave against its own host, through the real processes.

The attacker holds the signer host: its store (SQLite here), its process, the enclave's socket.
It keeps copies of sealed presignatures, lets them be used, restores old rows or a whole old copy
of the database, restarts the enclave process, and hands the blobs back, through the signer's
API and straight to the enclave's socket. Each time the enclave refuses with a precise error,
no signature share is made, and the honest client party keeps signing (every signature checked
with libsecp256k1 and by EVM address recovery).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2

from mpc.v1 import enclave_pb2 as epb
from signer.client.relay import Relay
from signer.client.spec import SessionSpec
from signer.link.client import EnclaveClient, EnclaveRequestError, parse_address
from tests.conftest import free_port, wait_for
from tests.service.conftest import GG20, KECCAK, Node, check_signature, dkg, keccak, message_for, presign, sid, sign
from tests.service.test_exchange import scrape

PARTIES = ("client", "signer-a")
BURNED = "mpc_signer_single_use_burned_total"


def burned(port: int, kind: str) -> float:
    return scrape(port).get((BURNED, (("item", kind),)), 0.0)


def presig_row(node: Node, pid: str) -> bytes:
    ((blob,),) = node.raw_sql("SELECT sealed FROM presignatures WHERE presig_id = ? AND state = 'available'", (pid,))
    assert isinstance(blob, bytes) and blob
    return blob


def revive(node: Node, pid: str, blob: bytes) -> None:
    """What an owner of the database can do: drop the guard trigger and make the used row new."""
    node.raw_sql("DROP TRIGGER IF EXISTS presignatures_single_use")
    node.raw_sql(
        "UPDATE presignatures SET state = 'available', consumed_at = NULL, consumed_by = NULL, sealed = ?"
        " WHERE presig_id = ?",
        (blob, pid),
    )


async def start_sign_on(connect: Callable[..., object], node: Node, key_id: str, text: bytes, pid: str) -> object:
    """StartSign with the presignature on signer-a alone (the refusal comes at the start)."""
    spec = SessionSpec(
        "sign",
        sid("replay"),
        GG20,
        PARTIES,
        key_id=key_id,
        message=text,  # type: ignore[arg-type]
        presignature_id=pid,
        message_hash=KECCAK,
    )
    return await connect(node).party("signer-a").start(spec)  # type: ignore[attr-defined]


async def straight_to_the_enclave(
    node: Node,
    key_id: str,
    blob: bytes,
    pid: str,
    text: bytes,
    rule: int = epb.MESSAGE_HASH_KECCAK256,
    path: tuple[int, ...] = (),
) -> EnclaveRequestError:
    """The host's own move: a SIGN start on the enclave's socket with the stored share and the
    kept presignature, bypassing the signer's checks. It must be refused."""
    ((share,),) = node.raw_sql("SELECT sealed_share FROM keys WHERE key_id = ?", (key_id,))
    client = EnclaveClient(parse_address(node.enclave.address), call_timeout=30.0)
    try:
        start = epb.SessionStart(
            session_id=sid("host-replay"),
            protocol=GG20,
            kind=epb.SESSION_KIND_SIGN,  # type: ignore[arg-type]
            party_ids=list(PARTIES),
            self_party_id="signer-a",
            key_id=key_id,
            message=text,
            presignature_id=pid,
            message_hash=rule,
            derivation_path=list(path),  # type: ignore[arg-type]
            sealed_blobs=[
                epb.SealedBlob(kind=epb.SEALED_BLOB_KIND_KEY_SHARE, id=key_id, data=share),
                epb.SealedBlob(kind=epb.SEALED_BLOB_KIND_PRESIGNATURE, id=pid, data=blob),
            ],
        )
        with pytest.raises(EnclaveRequestError) as err:
            await client.session_start(start)
        await client.ping()  # and the enclave keeps serving
        return err.value
    finally:
        await client.close()


async def test_presignature_kept_across_an_enclave_restart_is_refused(start_node, local, connect) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    node = start_node(
        "signer-a",
        config={
            "metrics": {"listen": f"127.0.0.1:{port}"},
            "enclave": {"preparams_sync_seconds": 0.3},
        },
    )
    relay = Relay({"client": local, "signer-a": connect(node)})
    key = await dkg(relay, GG20, PARTIES, 2)
    used = await presign(relay, PARTIES, key.key_id)
    spare = await presign(relay, PARTIES, key.key_id)  # never used: burned by the restart
    kept = presig_row(node, used)  # the host keeps a copy
    first = b"the one signature this presignature may make"
    check_signature(
        GG20,
        key.public_key,
        keccak(first),
        await sign(relay, GG20, PARTIES, key.key_id, first, used, message_hash=KECCAK),
    )

    node.enclave.kill()  # the host restarts the enclave process
    node.enclave.start()
    node.signer.wait_health(health_pb2.HealthCheckResponse.SERVING, timeout=20)
    # The host notices the new boot and drops the presignature it can no longer use (counted).
    wait_for(lambda: burned(port, "presignature") == 1, 20, "the spare presignature burned")
    assert node.raw_sql("SELECT state, consumed_by FROM presignatures WHERE presig_id = ?", (spare,)) == [
        ("consumed", "enclave-restart")
    ]

    second = b"a second message for the same nonce"
    refused = await straight_to_the_enclave(node, key.key_id, kept, used, second)
    assert refused.code == epb.ERROR_CODE_SEALED_IN_EARLIER_BOOT
    assert "sealed in an earlier enclave boot" in refused.message

    # Through the API, after restoring the row in the database: refused by the enclave, audited.
    revive(node, used, kept)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await start_sign_on(connect, node, key.key_id, second, used)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "sealed in an earlier enclave boot" in (err.value.details() or "")
    assert burned(port, "presignature") == 2

    def audited() -> list[tuple[str, str]]:
        sql = "SELECT result, reason FROM audit WHERE key_id = ? AND operation = 'sign' ORDER BY id"
        return [(r[0], r[1]) for r in node.raw_sql(sql, (key.key_id,))]

    wait_for(lambda: len(audited()) == 2, 5, "audit records")
    (ok, _), (failed, reason) = audited()
    assert (ok, failed) == ("ok", "failed") and "earlier enclave boot" in reason  # one signature, one refusal

    # The honest client is unharmed: a fresh presignature of this boot signs.
    assert local.engine.running() == 0
    fresh = await presign(relay, PARTIES, key.key_id)
    third = b"after the restart, with a new presignature"
    check_signature(
        GG20,
        key.public_key,
        keccak(third),
        await sign(relay, GG20, PARTIES, key.key_id, third, fresh, message_hash=KECCAK),
    )


async def test_replay_and_an_old_database_copy_are_refused_in_one_boot(  # type: ignore[no-untyped-def]
    start_node, local, connect
) -> None:
    node = start_node("signer-a")
    relay = Relay({"client": local, "signer-a": connect(node)})
    key = await dkg(relay, GG20, PARTIES, 2)
    pid = await presign(relay, PARTIES, key.key_id)
    kept = presig_row(node, pid)
    db = Path(node.store_url.removeprefix("sqlite:"))
    backup = db.with_name("backup.db")
    with sqlite3.connect(db) as src, sqlite3.connect(backup) as dst:
        src.backup(dst)  # an online copy, as a backup job makes it
    message = b"signed once"
    check_signature(
        GG20,
        key.public_key,
        keccak(message),
        await sign(relay, GG20, PARTIES, key.key_id, message, pid, message_hash=KECCAK),
    )

    second = b"signed twice?"
    refused = await straight_to_the_enclave(node, key.key_id, kept, pid, second)
    assert (refused.code, refused.message) == (epb.ERROR_CODE_FAILED_PRECONDITION, "presignature already used")

    # The whole database restored from the copy made before the signature: the presignature is
    # "available" again as far as the host knows; the enclave still refuses it.
    node.signer.stop()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    backup.chmod(0o600)  # the store refuses a database file other local users can read
    backup.rename(db)
    node.signer.start()
    node.signer.wait_health(health_pb2.HealthCheckResponse.SERVING, timeout=20)
    assert presig_row(node, pid) == kept
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await start_sign_on(connect, node, key.key_id, second, pid)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "presignature already used" in (err.value.details() or "")

    # The honest client is unharmed: interactive signing and a new presignature both sign.
    relay = Relay({"client": local, "signer-a": connect(node)})
    other = message_for(GG20, b"interactive, after the refusals")
    check_signature(GG20, key.public_key, other, await sign(relay, GG20, PARTIES, key.key_id, other))
    fresh = await presign(relay, PARTIES, key.key_id)
    check_signature(
        GG20,
        key.public_key,
        keccak(second),
        await sign(relay, GG20, PARTIES, key.key_id, second, fresh, message_hash=KECCAK),
    )
